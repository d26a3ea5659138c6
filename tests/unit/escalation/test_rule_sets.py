"""Regressions (issue 17, the soaks of 2026-12-03): the escalation worker's RSS grew with the
states it held and stepped at each rejoin of its group.

- Each escalated state pins the rule set in force, and its record carried it whole (4 KB of a
  5.4 KB record, kept once per state by the table and written again with every change); read back
  after a rebalance, every state got a rule set of its own (~30 KB of objects each). A record now
  names its rule set; the rule set is a record of its own on each partition, and the states read
  back share one instance of it.
- The worker kept every state it had parsed (6.8 KB each) for as long as the table held it: the
  cache of parsed states is bounded (agents.STATE_CACHE), a miss reads the table.
"""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from services.escalation import agents
from services.escalation.app import build
from services.escalation.state import (
    RULE_SET_PREFIX, IncidentState, RuleSets, record, rule_set_key, rule_set_name,
)
from services.shared import events as ev
from services.shared.settings import Settings
from tests.fakes import FakeStateStore, RecordingSink
from tests.unit.escalation.helpers import DEFAULT_RULES, fact, ruleset
from tests.unit.escalation.test_worker import PARTITION, facts_of, fire, worker  # noqa: F401 - the fixture

pytestmark = pytest.mark.unit


def restarted(tmp_path, store: FakeStateStore, rules=DEFAULT_RULES):
    """A worker that recovered `store`'s changelog (and may run another rules file)."""
    again = build(Settings(home=tmp_path), rules)
    again.sink, again.store = RecordingSink(), FakeStateStore()
    again.store.data = {key: value for key, (value, _) in store.recovered().items()}
    return again


async def test_states_read_back_after_a_rebalance_share_the_worker_s_rule_set(worker):  # noqa: F811
    for _ in range(3):
        await worker.process(facts_of(fire()), PARTITION)
    assert worker._state_count() == 3
    await worker.on_rebalance()
    worker._rebuild()  # every state parsed again from its record, as after a rejoin or a restart
    pinned = [s.rule_set for s in worker.cache.values()]
    assert len(pinned) == 3 and all(rules is worker.rules for rules in pinned)


async def test_a_record_names_its_rule_set_and_the_rule_set_is_written_once_a_partition_before_it(worker):  # noqa: F811
    report = fire()
    await worker.process(facts_of(report), PARTITION)
    await worker.process(facts_of(fire()), PARTITION)
    await worker.process(facts_of(fire()), PARTITION + 1)
    name = rule_set_name(DEFAULT_RULES)
    keys = [key for key, _, _ in worker.store.changelog]
    rule_records = [(key, partition) for key, _, partition in worker.store.changelog if key.startswith(RULE_SET_PREFIX)]
    assert rule_records == [(rule_set_key(name, PARTITION), PARTITION), (rule_set_key(name, PARTITION + 1), PARTITION + 1)]
    assert keys.index(rule_set_key(name, PARTITION)) < keys.index(str(report.incident_id).encode())
    raw = worker.store.get(str(report.incident_id).encode())
    assert json.loads(raw)["rule_set"] == name and len(raw) < 1024  # 5.4 KB when it carried it
    assert worker.store.get(rule_set_key(name, PARTITION)) == DEFAULT_RULES.model_dump_json().encode()


async def test_a_worker_with_another_rules_file_reads_the_rule_set_each_state_pinned(worker, tmp_path):  # noqa: F811
    report = fire()
    await worker.process(facts_of(report), PARTITION)
    newer = DEFAULT_RULES.model_copy(update={"version": "2099.1"})
    for rebuild in (False, True):  # read on a fact's first load, and by the rebuild after recovery
        again = restarted(tmp_path, worker.store, newer)
        if rebuild:
            again._rebuild()
        state = again._load(str(report.incident_id))
        assert state.rule_set == DEFAULT_RULES and state.rule_set is not newer
        ack = fact(ev.IncidentAcknowledged, report.incident_id, report.occurred_at, acknowledged_by="op-1")
        await again.process([facts_of(ack, offset=8)[0]], PARTITION)
        assert again._load(str(report.incident_id)).acknowledged


def test_a_record_naming_a_rule_set_the_table_lacks_is_refused_naming_it_and_an_older_record_is_read():
    state = IncidentState.model_validate({"incident_id": "7d11c0cc-e619-4dc2-8e43-19c8c5093573"})
    raw = record(state.model_copy(update={"rule_set": ruleset(version="gone")}))
    with pytest.raises(ValidationError, match="gone@"):
        RuleSets(lookup=lambda name: None).parse(raw)
    with pytest.raises(ValidationError, match="RuleSets.parse"):
        IncidentState.model_validate_json(raw)
    # a record written before records named their rule set carries it whole: read as it is, shared
    old = json.dumps({**json.loads(record(state)), "rule_set": json.loads(DEFAULT_RULES.model_dump_json())})
    assert RuleSets(DEFAULT_RULES).parse(old).rule_set is DEFAULT_RULES


async def test_the_parsed_states_kept_are_bounded_and_a_state_past_the_bound_is_read_from_the_table(
        worker, monkeypatch):  # noqa: F811
    monkeypatch.setattr(agents, "STATE_CACHE", 4)
    reports = [fire() for _ in range(10)]
    for report in reports:
        await worker.process(facts_of(report), PARTITION)
    assert len(worker.cache) == 4 and worker._state_count() == 10
    first = reports[0]
    assert str(first.incident_id).encode() not in worker.cache
    ack = fact(ev.IncidentAcknowledged, first.incident_id, first.occurred_at, acknowledged_by="op-1")
    await worker.process([facts_of(ack, offset=8)[0]], PARTITION)
    state = worker._load(str(first.incident_id))
    assert state.acknowledged and state.max_level == 3 and len(worker.cache) == 4
    worker.cache.clear()
    sent, changelog = len(worker.sink.handed), len(worker.store.changelog)
    await worker.process(facts_of(first), PARTITION)  # its report replayed, read from the table: skipped
    assert (len(worker.sink.handed), len(worker.store.changelog)) == (sent, changelog)


def test_equal_rule_sets_are_one_instance_and_different_ones_stay_apart():
    sets = RuleSets(DEFAULT_RULES)
    copy = DEFAULT_RULES.model_validate_json(DEFAULT_RULES.model_dump_json())
    assert copy is not DEFAULT_RULES and sets.shared(copy) is DEFAULT_RULES
    first, other = ruleset(), ruleset(acknowledgement={"deadline_seconds": {4: 90}, "climb_limit": 3})
    assert first.version == other.version and first != other
    assert rule_set_name(first) != rule_set_name(other)  # same version, other content: another name
    assert sets.shared(first) is first and sets.shared(other) is other
    assert sets.shared(ruleset()) is first
    assert sets.named(rule_set_name(other)) is other


def test_a_state_without_a_rule_set_and_the_bound_on_what_is_kept():
    sets = RuleSets(limit=1)
    kept, extra = ruleset(), ruleset(version="t2")
    assert sets.shared(kept) is kept
    assert sets.shared(extra) is extra and sets.shared(ruleset(version="t2")) is not extra  # over the bound: not kept
    assert sets.shared(ruleset()) is kept
