"""Each principal's credentials do exactly what topics.yaml says, on a real secured broker of the
module's own (`muster dev up` with MUSTER_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT):
intake cannot read dead letters or write escalations, a partner reads only its agency's topics,
a client without credentials is refused."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.errors import (
    ClusterAuthorizationFailedError, GroupAuthorizationFailedError, KafkaConnectionError, KafkaError, TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from services.dev import LocalKafka
from services.shared.kafka import apply_topics, make_admin, make_consumer, make_producer
from services.shared.kafka_security import SecurityAdmin
from services.shared.topics import TopicCatalog
from tests.support import free_kafka_and_pg_ports

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REFUSED = (TopicAuthorizationFailedError, GroupAuthorizationFailedError, ClusterAuthorizationFailedError)


@pytest.fixture(scope="module")
async def secured(tmp_path_factory, test_settings):
    """A secured local broker of this module's own (SASL/SCRAM, StandardAuthorizer, deny by default),
    as `muster dev up` starts it, with this run's topics and the ACLs of topics.yaml applied."""
    kafka_port, _ = free_kafka_and_pg_ports()
    settings = test_settings.model_copy(update={
        "home": tmp_path_factory.mktemp("secured") / "home", "kafka_bootstrap": f"127.0.0.1:{kafka_port}",
        "kafka_heap": "256m", "kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_principal": "admin",
    })
    broker = LocalKafka(settings)
    await asyncio.to_thread(broker.up)
    try:
        catalog = TopicCatalog.from_settings(settings)
        admin = make_admin(settings)
        await admin.start()
        try:
            await apply_topics(admin, catalog)
        finally:
            await admin.close()
        security = SecurityAdmin(settings)
        assert security.apply(catalog), "a fresh broker has ACLs to add"
        yield settings, catalog, security
    finally:
        await asyncio.to_thread(broker.down)


def as_(settings, principal):
    return settings.as_principal(principal)


async def produce(settings, topic: str) -> None:
    producer = make_producer(settings, request_timeout_ms=5000, metadata_max_age_ms=5000)
    try:
        await producer.start()
        await asyncio.wait_for(producer.send_and_wait(topic, b"{}", key=b"k"), 15)
    finally:
        await producer.stop()


async def consume(settings, topic: str, group: str | None) -> None:
    """Fetch once from the topic's start; raises if the broker refuses the topic or the group."""
    consumer = make_consumer(settings, topic, group_id=group, request_timeout_ms=5000)
    try:
        await consumer.start()
        deadline = asyncio.get_running_loop().time() + 30
        while not consumer.assignment():  # assigned: allowed; refused: the broker's error is raised here
            await asyncio.wait_for(consumer.getmany(timeout_ms=500), 15)
            assert asyncio.get_running_loop().time() < deadline, f"{topic}: neither assigned nor refused in 30s"
        await asyncio.wait_for(consumer.getmany(timeout_ms=500), 15)
        if group:
            await asyncio.wait_for(consumer.commit(), 15)
    finally:
        await consumer.stop()


async def test_intake_writes_incident_facts_only(secured):
    settings, catalog, _ = secured
    intake = as_(settings, "intake")
    await produce(intake, catalog.name("incidents"))
    with pytest.raises(REFUSED):
        await produce(intake, catalog.name("escalations.fire"))
    with pytest.raises(REFUSED):
        await consume(intake, catalog.name("deadletter"), None)
    # its own log, read back without a group (a retry after a crash finds its earlier copy there)
    await consume(intake, catalog.name("incidents"), None)
    with pytest.raises(REFUSED):
        await consume(intake, catalog.name("incidents"), f"{catalog.prefix}muster-intake.t")


async def test_only_operations_reads_dead_letters(secured):
    settings, catalog, _ = secured
    await consume(as_(settings, "operations"), catalog.name("deadletter"), f"{catalog.prefix}muster-operations.t")
    for principal in ("projector", "escalation", "tension", "simulator"):
        with pytest.raises(REFUSED):
            await consume(as_(settings, principal), catalog.name("deadletter"), None)


async def test_the_projector_reads_but_never_writes_facts(secured):
    settings, catalog, _ = secured
    projector = as_(settings, "projector")
    await consume(projector, catalog.name("escalations.all"), f"{catalog.prefix}muster-projector-t")
    with pytest.raises(REFUSED):
        await produce(projector, catalog.name("incidents"))
    with pytest.raises(REFUSED):
        await consume(projector, catalog.name("escalations.all"), "someone-elses-group")


async def test_a_partner_reads_only_its_agencys_topics_with_its_own_groups(secured):
    settings, catalog, admin = secured
    user, password = admin.add_partner(catalog, "fire", exercise=False)
    fire = settings.model_copy(update={"kafka_sasl_username": user, "kafka_sasl_password": SecretStr(password)})
    group = f"{catalog.prefix}partner-fire.dispatch"
    await consume(fire, catalog.name("escalations.fire"), group)
    for other in ("escalations.police", "escalations.all", "escalations.exercise.fire", "incidents", "deadletter"):
        with pytest.raises(REFUSED):
            await consume(fire, catalog.name(other), None)
    with pytest.raises(REFUSED):
        await consume(fire, catalog.name("escalations.fire"), f"{catalog.prefix}partner-police.x")
    with pytest.raises(REFUSED):
        await produce(fire, catalog.name("escalations.fire"))
    assert admin.drift(catalog).empty()

    admin.remove_partner(catalog, "fire")
    with pytest.raises(KafkaError):
        await consume(fire, catalog.name("escalations.fire"), group)


async def test_a_client_without_credentials_is_refused(secured):
    settings, catalog, _ = secured
    anonymous = settings.model_copy(update={"kafka_security_protocol": "PLAINTEXT", "kafka_sasl_mechanism": None})
    with pytest.raises((KafkaConnectionError, KafkaError, asyncio.TimeoutError)):
        await produce(anonymous, catalog.name("incidents"))
    wrong = settings.model_copy(update={"kafka_sasl_username": "intake",
                                        "kafka_sasl_password": SecretStr(uuid.uuid4().hex)})
    with pytest.raises((KafkaConnectionError, KafkaError)):
        await produce(wrong, catalog.name("incidents"))


async def test_a_grant_outside_topics_yaml_is_drift_and_apply_removes_it(secured):
    settings, catalog, admin = secured
    from services.shared.acl import LITERAL, TOPIC, Binding

    stray = Binding("intake", TOPIC, LITERAL, catalog.name("deadletter"), "read")
    admin.create([stray])
    assert stray in admin.drift(catalog).extra
    assert any("acl removed" in line and "deadletter" in line for line in admin.apply(catalog))
    assert admin.drift(catalog).empty()
    with pytest.raises(REFUSED):
        await consume(as_(settings, "intake"), catalog.name("deadletter"), None)
