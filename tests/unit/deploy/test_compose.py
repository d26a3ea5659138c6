"""docker-compose.yml agrees with the code: service names, commands, ports and MUSTER_* variables.
Docker cannot run here; this keeps the file honest."""

from __future__ import annotations

import re

import pytest
import yaml

from services.runner import SERVICES
from services.shared.settings import REPO_ROOT
from tests.unit.deploy.agreement import PORT_FIELDS, command_problem, port_of, unknown_variables

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES_OF = COMPOSE["services"]
MUSTER_IMAGE = "muster:latest"


def muster_containers() -> dict[str, dict]:
    return {name: s for name, s in SERVICES_OF.items() if s.get("image") == MUSTER_IMAGE}


def test_every_muster_service_and_both_jobs_are_in_the_stack_beside_kafka_postgres_prometheus_and_grafana():
    assert set(SERVICES) | {"topics", "migrate"} == set(muster_containers())
    assert SERVICES_OF["kafka"]["image"] == "apache/kafka:4.0.0"
    assert SERVICES_OF["postgres"]["image"] == "postgres:18"
    assert {"prometheus", "grafana"} <= set(SERVICES_OF)


def test_kafka_runs_in_kraft_mode_with_a_single_combined_node():
    env = SERVICES_OF["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "zookeeper" not in str(COMPOSE).lower()
    assert len(env["CLUSTER_ID"]) == 22
    assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://kafka:{SERVICES_OF['intake']['environment']['MUSTER_KAFKA_BOOTSTRAP'].split(':')[1]}"


def test_every_muster_container_is_built_from_the_root_dockerfile():
    assert all(s["build"] in (".", {"context": "."}) for s in muster_containers().values())


@pytest.mark.parametrize("name", sorted(SERVICES) + ["topics", "migrate"])
def test_every_command_names_a_real_muster_command(name):
    assert command_problem(SERVICES_OF[name]["command"]) is None


def test_the_services_run_themselves_and_the_jobs_run_topics_apply_and_db_migrate():
    assert {n: SERVICES_OF[n]["command"] for n in SERVICES} == {n: ["run", n] for n in SERVICES}
    assert SERVICES_OF["topics"]["command"] == ["topics", "apply"]
    assert SERVICES_OF["migrate"]["command"] == ["db", "migrate"]


@pytest.mark.parametrize("name", sorted(SERVICES) + ["topics", "migrate"])
def test_every_muster_variable_is_a_settings_field(name):
    assert unknown_variables(SERVICES_OF[name]["environment"]) == []


@pytest.mark.parametrize("name", sorted(PORT_FIELDS))
def test_published_port_healthcheck_and_settings_port_agree(name):
    service = SERVICES_OF[name]
    port = port_of(name, service["environment"])
    assert service["ports"] == [f"{port}:{port}"]
    assert service["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/readyz"


def test_http_services_listen_on_every_interface_with_a_secret_from_the_environment():
    for name in ("intake", "query"):
        assert SERVICES_OF[name]["environment"][f"MUSTER_{name.upper()}_HOST"] == "0.0.0.0"
    env = SERVICES_OF["intake"]["environment"]
    assert re.fullmatch(r"\$\{MUSTER_JWT_SECRET:\?.+\}", env["MUSTER_JWT_SECRET"])
    assert "${INTAKE_DB_PASSWORD:?" in env["MUSTER_INTAKE_DATABASE_URL"]


def test_services_start_after_the_topic_and_migration_jobs_succeed():
    for name in SERVICES:
        depends = SERVICES_OF[name]["depends_on"]
        assert depends["topics"]["condition"] == "service_completed_successfully"
        assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_prometheus_scrapes_every_service_by_its_compose_name_and_port():
    config = yaml.safe_load((REPO_ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {c["job_name"]: c["static_configs"][0] for c in config["scrape_configs"] if c["job_name"].startswith("muster-")}
    expected = {f"muster-{n}": [f"{n}:{port_of(n, SERVICES_OF[n]['environment'])}"] for n in SERVICES}
    assert {job: t["targets"] for job, t in targets.items()} == expected
    assert all(t["labels"]["service"] == job.removeprefix("muster-") for job, t in targets.items())


def test_prometheus_and_grafana_mount_the_files_of_deploy():
    mounts = [v.split(":")[0] for s in ("prometheus", "grafana") for v in SERVICES_OF[s]["volumes"] if v.startswith("./")]
    assert mounts and all((REPO_ROOT / m).is_dir() for m in mounts)


DB_URL_OF = {"intake": "MUSTER_INTAKE_DATABASE_URL", "projector": "MUSTER_PROJECTOR_DATABASE_URL",
             "query": "MUSTER_QUERY_DATABASE_URL"}


def _user_of(url: str) -> str:
    return url.split("://", 1)[1].split(":", 1)[0].split("@", 1)[0]


@pytest.mark.parametrize("name", sorted(SERVICES) + ["topics", "migrate"])
def test_each_container_holds_only_its_own_roles_database_credential(name):
    env = SERVICES_OF[name]["environment"]
    urls = {k: v for k, v in env.items() if k.endswith("DATABASE_URL")}
    if name == "migrate":
        assert set(urls) == {"MUSTER_DATABASE_URL"}  # the owner's, for the migrations alone
    elif name in DB_URL_OF:
        assert set(urls) == {DB_URL_OF[name]}
        assert _user_of(urls[DB_URL_OF[name]]) == f"muster_{name}"
    else:
        assert urls == {}


def test_the_projector_leaves_the_migrations_to_the_job_and_the_roles_get_their_passwords_after_it():
    assert SERVICES_OF["projector"]["environment"]["MUSTER_PROJECTOR_MIGRATE_ON_START"] == "false"
    roles = SERVICES_OF["db-roles"]
    assert roles["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    script = roles["command"][-1]
    for role in DB_URL_OF:
        assert f"alter role muster_{role} password :'{role}'" in script
    assert all(SERVICES_OF[n]["depends_on"]["db-roles"]["condition"] == "service_completed_successfully"
               for n in SERVICES)
