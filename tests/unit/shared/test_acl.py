"""ACLs generated from topics.yaml: producers write, readers read, nothing else (pure)."""

from __future__ import annotations

import pytest
import yaml

from services.shared.acl import (
    GROUP, LITERAL, PREFIXED, TOPIC, Binding, acl_drift, partner_bindings, service_bindings,
)
from services.shared.settings import REPO_ROOT
from services.shared.topics import TopicCatalog, TopicsFileError, load_topics_file

TOPICS = REPO_ROOT / "topics.yaml"


@pytest.fixture
def catalog() -> TopicCatalog:
    return TopicCatalog.load(TOPICS, prefix="p.")


def grants(bindings, principal, topic_name):
    return {b.operation for b in bindings if b.principal == principal and b.name == topic_name}


def test_producers_write_and_readers_read_what_topics_yaml_says(catalog):
    acls = service_bindings(catalog)
    # it reads its own log back without a group (a retry after a crash finds its earlier copy)
    assert grants(acls, "intake", catalog.name("incidents")) == {"write", "read", "describe"}
    assert grants(acls, "intake", catalog.name("deadletter")) == {"write", "describe"}
    assert grants(acls, "projector", catalog.name("incidents")) == {"read", "describe"}
    assert grants(acls, "escalation", catalog.name("escalations.fire")) == {"write", "describe"}
    assert grants(acls, "operations", catalog.name("deadletter")) == {"read", "describe"}


def test_only_operations_reads_dead_letters(catalog):
    readers = {b.principal for b in service_bindings(catalog)
               if b.name == catalog.name("deadletter") and b.operation == "read"}
    assert readers == {"operations"}


def test_no_service_is_granted_anything_on_a_topic_it_is_not_listed_for(catalog):
    acls = service_bindings(catalog)
    assert not grants(acls, "intake", catalog.name("escalations.all"))
    assert not grants(acls, "tension", catalog.name("escalations.all"))
    assert "admin" not in {b.principal for b in acls}


def test_faust_apps_get_their_own_groups_and_internal_topics(catalog):
    acls = service_bindings(catalog)
    assert Binding("escalation", GROUP, PREFIXED, "p.muster-escalation", "read") in acls
    assert Binding("tension", TOPIC, PREFIXED, "p.muster-tension-", "create") in acls
    assert not any(b.principal == "intake" and b.resource == GROUP for b in acls)


def test_a_partner_reads_only_its_agencys_topics(catalog):
    live = partner_bindings(catalog, "fire", exercise=False)
    assert {b.name for b in live if b.resource == TOPIC} == {catalog.name("escalations.fire")}
    assert {b.operation for b in live} == {"read", "describe"}
    drill = partner_bindings(catalog, "fire", exercise=True)
    assert {b.name for b in drill if b.resource == TOPIC} == {
        catalog.name("escalations.fire"), catalog.name("escalations.exercise.fire")}
    assert {(b.pattern, b.name) for b in live if b.resource == GROUP} == {(PREFIXED, "p.partner-fire.")}
    with pytest.raises(ValueError, match="agency 'nobody'"):
        partner_bindings(catalog, "nobody", exercise=False)


def test_drift_names_missing_and_extra_grants_including_a_wildcard(catalog):
    wanted = service_bindings(catalog)
    assert acl_drift(catalog, wanted).empty()
    one = sorted(wanted)[0]
    assert acl_drift(catalog, wanted - {one}).missing == [one]
    stray = Binding("intake", TOPIC, LITERAL, catalog.name("deadletter"), "read")
    wildcard = Binding("intake", TOPIC, LITERAL, "*", "read")
    broad = Binding("intake", TOPIC, PREFIXED, "p.", "read")
    other = Binding("intake", TOPIC, LITERAL, "someone-elses.topic", "read")
    drift = acl_drift(catalog, wanted | {stray, wildcard, broad, other})
    assert set(drift.extra) == {stray, wildcard, broad}
    partner = partner_bindings(catalog, "police", exercise=True)
    assert acl_drift(catalog, wanted | partner).empty()
    wrong = Binding("p.partner-police", TOPIC, LITERAL, catalog.name("escalations.fire"), "read")
    assert acl_drift(catalog, wanted | {wrong}).extra == [wrong]


def test_a_producer_that_is_not_a_principal_is_a_clear_error(tmp_path):
    raw = yaml.safe_load(TOPICS.read_text())
    raw["topics"][0]["producers"] = ["intake", "partner systems"]
    bad = tmp_path / "topics.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(TopicsFileError, match="'partner systems' is not a principal"):
        load_topics_file(bad)
