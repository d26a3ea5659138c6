"""Writes the plain Kubernetes manifests of deploy/k8s: `python deploy/k8s/build.py`.

Generated so the six Deployments stay alike (probes, resources, security, configuration);
the YAML files are what you apply (`kubectl apply -k deploy/k8s`) and review.
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
NAMESPACE = "muster"
IMAGE = "ghcr.io/example/muster:0.1.0"  # your registry's build of the root Dockerfile
LABELS = {"app.kubernetes.io/part-of": "muster"}

# name: (port setting, port, replicas, requests, limits, HTTP API?)
SERVICES = {
    "intake": ("MUSTER_INTAKE_PORT", 8000, 2, ("250m", "256Mi"), ("1", "512Mi"), True),
    "query": ("MUSTER_QUERY_PORT", 8001, 2, ("250m", "256Mi"), ("1", "512Mi"), True),
    "escalation": ("MUSTER_ESCALATION_METRICS_PORT", 9101, 1, ("250m", "384Mi"), ("1", "768Mi"), False),
    "tension": ("MUSTER_TENSION_METRICS_PORT", 9102, 1, ("250m", "384Mi"), ("1", "768Mi"), False),
    "casework": ("MUSTER_CASEWORK_METRICS_PORT", 9104, 1, ("250m", "256Mi"), ("1", "512Mi"), False),
    "projector": ("MUSTER_PROJECTOR_METRICS_PORT", 9103, 1, ("250m", "256Mi"), ("1", "512Mi"), False),
}

CONFIG = {
    "MUSTER_KAFKA_BOOTSTRAP": "kafka-0.kafka:9093,kafka-1.kafka:9093,kafka-2.kafka:9093",
    "MUSTER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "MUSTER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "MUSTER_KAFKA_SSL_CAFILE": "/etc/muster/kafka-ca/ca.crt",
    "MUSTER_TOPICS_PROFILE": "production",
    "MUSTER_LOG_FORMAT": "json",
    "MUSTER_LOG_LEVEL": "INFO",
    "MUSTER_INTAKE_HOST": "0.0.0.0",
    "MUSTER_QUERY_HOST": "0.0.0.0",
}
# One credential per role (docs/security.md): each workload runs as its own Kafka principal
# (topics.yaml) and its own PostgreSQL role, and its Secret `muster-<name>` holds only those.
# name: (Kafka principal or None, secret keys). Create the Secrets from your secret store;
# secret.example.yaml shows their shape.
ROLES = {
    "intake": ("intake", ["MUSTER_KAFKA_SASL_PASSWORD", "MUSTER_INTAKE_DATABASE_URL", "MUSTER_JWT_SECRET",
                         "MUSTER_INTAKE_ID_KEY"]),
    "query": (None, ["MUSTER_QUERY_DATABASE_URL", "MUSTER_JWT_SECRET"]),
    "escalation": ("escalation", ["MUSTER_KAFKA_SASL_PASSWORD"]),
    "tension": ("tension", ["MUSTER_KAFKA_SASL_PASSWORD"]),
    "casework": ("casework", ["MUSTER_KAFKA_SASL_PASSWORD"]),
    "projector": ("projector", ["MUSTER_KAFKA_SASL_PASSWORD", "MUSTER_PROJECTOR_DATABASE_URL"]),
    "topics": ("admin", ["MUSTER_KAFKA_SASL_PASSWORD"]),     # the one super user: topics and ACLs
    "migrate": (None, ["MUSTER_DATABASE_URL"]),              # the store's owner: migrations only
    "people-retention": (None, ["MUSTER_DATABASE_URL"]),     # erases the data keys that fall due
}
# The projector does not migrate in production: the migrate Job does, with the owner's URL.
SERVICE_ENV = {"projector": {"MUSTER_PROJECTOR_MIGRATE_ON_START": "false"}}

SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def _meta(name: str, component: str | None = None) -> dict:
    labels = {**LABELS, "app.kubernetes.io/name": component or name}
    return {"name": name, "namespace": NAMESPACE, "labels": labels}


def _container(name: str, args: list[str], env: dict[str, str]) -> dict:
    principal, _keys = ROLES[name]
    env = {**({"MUSTER_KAFKA_SASL_USERNAME": principal} if principal else {}), **SERVICE_ENV.get(name, {}), **env}
    return {
        "name": name,
        "image": IMAGE,
        "args": args,
        "envFrom": [{"configMapRef": {"name": "muster-config"}}, {"secretRef": {"name": f"muster-{name}"}}],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "securityContext": SECURITY,
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/muster"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "kafka-ca", "mountPath": "/etc/muster/kafka-ca", "readOnly": True},
        ],
    }


def _volumes() -> list[dict]:
    return [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}},
            {"name": "kafka-ca", "secret": {"secretName": "kafka-ca", "optional": True}}]


def deployment(name: str) -> list[dict]:
    port_var, port, replicas, requests, limits, http = SERVICES[name]
    container = _container(name, ["run", name], {port_var: str(port)})
    probe = {"httpGet": {"path": "/healthz", "port": "http" if http else "metrics"}}
    container.update({
        "ports": [{"name": "http" if http else "metrics", "containerPort": port}],
        "livenessProbe": {**probe, "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 6},
        "readinessProbe": {"httpGet": {**probe["httpGet"], "path": "/readyz"}, "periodSeconds": 5, "failureThreshold": 3},
        "resources": {"requests": {"cpu": requests[0], "memory": requests[1]},
                      "limits": {"cpu": limits[0], "memory": limits[1]}},
    })
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "muster"}
    docs = [{
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector, "annotations": {
                    "prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {"fsGroup": 10001},
                    "containers": [container],
                    "volumes": _volumes(),
                },
            },
        },
    }]
    if http:
        docs.append({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(name),
            "spec": {"selector": selector, "ports": [{"name": "http", "port": port, "targetPort": "http"}]},
        })
    return docs


def job(name: str, args: list[str]) -> dict:
    container = _container(name, args, {})
    container["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(f"muster-{name}", name),
        "spec": {
            "backoffLimit": 6,
            "template": {
                "metadata": {"labels": {**LABELS, "app.kubernetes.io/name": name}},
                "spec": {"restartPolicy": "OnFailure", "securityContext": {"fsGroup": 10001},
                         "containers": [container], "volumes": _volumes()},
            },
        },
    }


def cron_job(name: str, args: list[str], schedule: str) -> dict:
    """A Job on a schedule (Europe/London, so "03:30" stays 03:30 across the clock change); one run
    at a time, and a missed run is made up once when the cluster comes back."""
    once = job(name, args)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": once["metadata"],
        "spec": {"schedule": schedule, "timeZone": "Europe/London", "concurrencyPolicy": "Forbid",
                 "startingDeadlineSeconds": 6 * 3600, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                 "jobTemplate": {"spec": once["spec"]}},
    }


def files() -> dict[str, list[dict]]:
    return {
        "namespace.yaml": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": LABELS}}],
        "configmap.yaml": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("muster-config", "config"),
                            "data": CONFIG}],
        "secret.example.yaml": [{"apiVersion": "v1", "kind": "Secret", "metadata": _meta(f"muster-{name}", "secrets"),
                                 "type": "Opaque", "stringData": {k: "REPLACE-ME" for k in keys}}
                                for name, (_principal, keys) in ROLES.items()],
        "jobs.yaml": [job("topics", ["topics", "apply"]), job("migrate", ["db", "migrate"]),
                      # the retention schedule of docs/security.md, daily (`muster people retention`)
                      cron_job("people-retention", ["people", "retention"], "30 3 * * *")],
        **{f"{name}.yaml": deployment(name) for name in SERVICES},
        "kustomization.yaml": [{
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": NAMESPACE,
            # The Secrets are not here: create muster-<workload> from your secret store first.
            "resources": ["namespace.yaml", "configmap.yaml", "jobs.yaml", *(f"{n}.yaml" for n in SERVICES)],
        }],
    }


HEADER = "# Generated by deploy/k8s/build.py; edit that and run it. See docs/ops.md.\n"


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:  # plain YAML, no &anchors
        return True


def render(docs: list[dict]) -> str:
    return HEADER + "---\n".join(yaml.dump(d, Dumper=_NoAliases, sort_keys=False) for d in docs)


if __name__ == "__main__":
    for name, docs in files().items():
        (HERE / name).write_text(render(docs))
        print(f"wrote deploy/k8s/{name}")
