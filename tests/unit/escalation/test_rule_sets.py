"""Regression (issue 17, the soaks of 2026-12-03): the escalation worker's RSS stepped by 30-50 MB
at each rejoin of its group and kept it. Each escalated state pins the rule set in force, and its
changelog record carries it whole; read back after the rebalance, every state got a rule set of
its own (about 30 KB of objects each, 1,500 states), where before they had all held the worker's
one instance. States read back now share one instance of each rule set."""

from __future__ import annotations

import pytest

from services.escalation.state import RuleSets
from tests.unit.escalation.helpers import DEFAULT_RULES, ruleset
from tests.unit.escalation.test_worker import PARTITION, facts_of, fire, worker  # noqa: F401 - the fixture

pytestmark = pytest.mark.unit


async def test_states_read_back_after_a_rebalance_share_the_worker_s_rule_set(worker):  # noqa: F811
    for _ in range(3):
        await worker.process(facts_of(fire()), PARTITION)
    assert len(worker.store) == 3
    await worker.on_rebalance()
    worker._rebuild()  # every state parsed again from its record, as after a rejoin or a restart
    pinned = [s.rule_set for s in worker.cache.values()]
    assert len(pinned) == 3 and all(rules is worker.rules for rules in pinned)


def test_equal_rule_sets_are_one_instance_and_different_ones_stay_apart():
    sets = RuleSets(DEFAULT_RULES)
    copy = DEFAULT_RULES.model_validate_json(DEFAULT_RULES.model_dump_json())
    assert copy is not DEFAULT_RULES and sets.shared(copy) is DEFAULT_RULES
    first, other = ruleset(), ruleset(acknowledgement={"deadline_seconds": {4: 90}, "climb_limit": 3})
    assert first.version == other.version and first != other
    assert sets.shared(first) is first and sets.shared(other) is other  # same version, other content
    assert sets.shared(ruleset()) is first


def test_a_state_without_a_rule_set_and_the_bound_on_what_is_kept():
    sets = RuleSets(limit=1)
    kept, extra = ruleset(), ruleset(version="t2")
    assert sets.shared(kept) is kept
    assert sets.shared(extra) is extra and sets.shared(ruleset(version="t2")) is not extra  # over the bound: not kept
    assert sets.shared(ruleset()) is kept
