"""deploy/k8s agrees with the code: one Deployment per service with probes, resources and
configuration from the ConfigMap and Secret, the topic and migration Jobs, ports and variables
that the settings read; and the files are what deploy/k8s/build.py writes."""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from services.runner import SERVICES
from services.shared.settings import REPO_ROOT
from tests.unit.deploy.agreement import command_problem, port_of, unknown_variables

K8S = REPO_ROOT / "deploy" / "k8s"


def load(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def resources() -> list[dict]:
    kustomization = load("kustomization.yaml")[0]
    return [doc for name in kustomization["resources"] for doc in load(name)]


def of_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in resources() if d["kind"] == kind}


def container(workload: dict) -> dict:
    [c] = workload["spec"]["template"]["spec"]["containers"]
    return c


def environment(c: dict) -> dict[str, str]:
    """The container's variables: the ConfigMap's, the Secret's keys, then its own."""
    config = of_kind("ConfigMap")["muster-config"]["data"]
    secret = load("secret.example.yaml")[0]["stringData"]
    assert [list(s)[0] for s in c["envFrom"]] == ["configMapRef", "secretRef"]
    return {**config, **secret, **{e["name"]: e["value"] for e in c.get("env", [])}}


def test_the_manifests_are_what_build_py_writes():
    spec = importlib.util.spec_from_file_location("k8s_build", K8S / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for name, docs in build.files().items():
        assert (K8S / name).read_text() == build.render(docs), name


def test_there_is_one_deployment_per_service_and_a_job_for_topics_and_for_migrations():
    assert set(of_kind("Deployment")) == set(SERVICES)
    jobs = {name: container(job)["args"] for name, job in of_kind("Job").items()}
    assert jobs == {"muster-topics": ["topics", "apply"], "muster-migrate": ["db", "migrate"]}
    assert all(command_problem(args) is None for args in jobs.values())


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_deployment_runs_its_service_with_probes_on_healthz_and_readyz_of_its_port(name):
    c = container(of_kind("Deployment")[name])
    assert c["args"] == ["run", name] and command_problem(c["args"]) is None
    [port] = c["ports"]
    assert port["containerPort"] == port_of(name, environment(c))
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    annotations = of_kind("Deployment")[name]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port["containerPort"])


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_deployment_has_requests_and_limits_and_runs_as_non_root(name):
    c = container(of_kind("Deployment")[name])
    assert set(c["resources"]) == {"requests", "limits"}
    assert all(set(c["resources"][k]) == {"cpu", "memory"} for k in ("requests", "limits"))
    assert c["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_every_variable_a_workload_sees_is_a_settings_field(kind):
    for name, workload in of_kind(kind).items():
        assert unknown_variables(environment(container(workload))) == [], name


def test_secrets_come_from_the_secret_and_the_example_holds_no_real_value():
    config = of_kind("ConfigMap")["muster-config"]["data"]
    secret = load("secret.example.yaml")[0]
    assert not {"MUSTER_DATABASE_URL", "MUSTER_JWT_SECRET", "MUSTER_KAFKA_SASL_PASSWORD"} & set(config)
    assert set(secret["stringData"].values()) == {"REPLACE-ME"}
    assert "secret.example.yaml" not in load("kustomization.yaml")[0]["resources"]


def test_http_services_have_a_service_on_their_port():
    services = of_kind("Service")
    for name in ("intake", "query"):
        port = container(of_kind("Deployment")[name])["ports"][0]["containerPort"]
        assert services[name]["spec"]["ports"][0]["port"] == port


def test_the_people_retention_schedule_runs_daily_one_run_at_a_time_in_london_time():
    [cron] = of_kind("CronJob").values()
    spec = cron["spec"]
    job_spec = spec["jobTemplate"]["spec"]["template"]["spec"]
    [c] = job_spec["containers"]
    assert c["args"] == ["people", "retention"] and command_problem(c["args"]) is None
    assert (spec["schedule"].split()[2:], spec["timeZone"], spec["concurrencyPolicy"]) == (["*", "*", "*"], "Europe/London", "Forbid")
    assert unknown_variables(environment(c)) == []
    assert c["envFrom"][1]["secretRef"]["name"] == "muster-people-retention"
    secrets = {d["metadata"]["name"]: d["stringData"] for d in load("secret.example.yaml")}
    assert set(secrets["muster-people-retention"]) == {"MUSTER_DATABASE_URL"}
