import pytest
import yaml

from services.escalation.config import RulesFileError, load_rules, parse_rules
from tests.unit.escalation.helpers import DEFAULT_RULES, LEVELS


def _with_rule(rule: dict) -> dict:
    return {"version": "x", "levels": LEVELS, "rules": [rule]}


def test_the_shipped_rules_file_is_valid_and_covers_every_level():
    assert set(DEFAULT_RULES.levels) == {1, 2, 3}
    assert {r.level for r in DEFAULT_RULES.rules} == {1, 2, 3}
    assert DEFAULT_RULES.corroboration and DEFAULT_RULES.acknowledgement.deadline_seconds


def test_a_bad_field_is_reported_with_the_rule_id_and_the_field():
    bad = _with_rule({"id": "big-fire", "description": "d", "level": 3, "when": {"min_severity": 9}})
    with pytest.raises(RulesFileError, match=r"rule 'big-fire' field when\.min_severity: .*less than or equal to 5"):
        parse_rules(bad)


def test_an_unknown_category_names_the_rule_and_the_field():
    bad = _with_rule({"id": "odd", "description": "d", "level": 1, "when": {"categories": ["alien_landing"]}})
    with pytest.raises(RulesFileError, match=r"rule 'odd' field when\.categories\.0"):
        parse_rules(bad)


def test_a_rule_without_conditions_is_rejected():
    with pytest.raises(RulesFileError, match=r"rule 'always' field when: .*at least one condition"):
        parse_rules(_with_rule({"id": "always", "description": "d", "level": 1, "when": {}}))


def test_a_level_above_three_is_rejected():
    with pytest.raises(RulesFileError, match=r"rule 'l4' field level"):
        parse_rules(_with_rule({"id": "l4", "description": "d", "level": 4, "when": {"min_severity": 5}}))


def test_a_misspelt_condition_is_rejected_not_ignored():
    with pytest.raises(RulesFileError, match=r"rule 'typo' field when\.min_severty: Extra inputs"):
        parse_rules(_with_rule({"id": "typo", "description": "d", "level": 1, "when": {"min_severty": 4}}))


def test_duplicate_rule_ids_are_rejected():
    rule = {"id": "twice", "description": "d", "level": 1, "when": {"min_severity": 4}}
    with pytest.raises(RulesFileError, match="'twice' is used twice"):
        parse_rules({"version": "x", "levels": LEVELS, "rules": [rule, rule]})


def test_a_missing_level_is_rejected():
    with pytest.raises(RulesFileError, match=r"field levels: .*\[3\] are not defined"):
        parse_rules({"version": "x", "levels": {1: LEVELS[1], 2: LEVELS[2]}})


def test_a_corroboration_rule_needs_at_least_two_reports():
    bad = {"version": "x", "levels": LEVELS, "corroboration": [
        {"id": "one", "description": "d", "categories": ["violence"], "min_reports": 1, "radius_m": 200,
         "window_minutes": 5, "level": 2}]}
    with pytest.raises(RulesFileError, match=r"rule 'one' field min_reports"):
        parse_rules(bad)


def test_a_missing_file_says_which_setting_to_use(tmp_path):
    with pytest.raises(RulesFileError, match="MUSTER_ESCALATION_RULES_FILE"):
        load_rules(tmp_path / "nope.yaml")


def test_a_file_that_is_not_yaml_is_rejected(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("version: [unclosed")
    with pytest.raises(RulesFileError, match="not valid YAML"):
        load_rules(path)


def test_a_valid_file_loads(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(_with_rule({"id": "r", "description": "d", "level": 2, "when": {"min_severity": 3}})))
    assert load_rules(path).rules[0].id == "r"
