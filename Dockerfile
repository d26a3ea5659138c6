# One image for every Muster service: `muster run <service>` selects which.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN groupadd --system muster && useradd --system --gid muster --home-dir /app --shell /usr/sbin/nologin muster
WORKDIR /app
COPY --from=build /install /usr/local
COPY topics.yaml /app/topics.yaml
COPY schemas /app/schemas
ENV MUSTER_TOPICS_FILE=/app/topics.yaml \
    MUSTER_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
USER muster
ENTRYPOINT ["muster"]
CMD ["--help"]
