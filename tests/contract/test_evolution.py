"""Every schema keeps the consumers of the last released one working (docs/contract.md), and a
change that would break one fails the check with the field named."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from services.shared.compat import check, check_directory
from services.shared.schemas import RELEASED_DIR, SCHEMAS_DIR


def _load(name: str) -> dict:
    return json.loads((SCHEMAS_DIR / name).read_text())


def test_every_schema_is_compatible_with_the_last_release():
    breaks = check_directory(RELEASED_DIR, SCHEMAS_DIR)
    assert not breaks, "\n".join(map(str, breaks))


def test_every_schema_produced_now_was_released_or_is_new():
    assert (RELEASED_DIR / "RELEASE").read_text().strip()
    assert {p.name for p in RELEASED_DIR.glob("*.json")} <= {p.name for p in SCHEMAS_DIR.glob("*.json")}


@pytest.fixture
def scratch(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the released and the current schemas, to break on purpose."""
    released, current = tmp_path / "released", tmp_path / "current"
    shutil.copytree(RELEASED_DIR, released)
    current.mkdir()
    for path in SCHEMAS_DIR.glob("*.json"):
        shutil.copyfile(path, current / path.name)
    return released, current


def _edit(directory: Path, name: str, change) -> None:  # a function of the document
    path = directory / name
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_removing_a_field_from_a_copy_fails_the_check_naming_the_field(scratch):
    released, current = scratch

    def drop_level(doc):
        del doc["properties"]["level"]
        doc["required"].remove("level")

    _edit(current, "EscalationRaised.v1.json", drop_level)
    breaks = [str(b) for b in check_directory(released, current)]
    assert breaks == ["EscalationRaised.v1.json: field `level`: removed; consumers of the released schema read it"]


def test_a_breaking_change_in_a_nested_field_names_its_path(scratch):
    released, current = scratch
    _edit(current, "EscalationRaised.v1.json", lambda d: d["$defs"]["Casualties"]["properties"]["serious"].update(maximum=10**9))
    breaks = [str(b) for b in check_directory(released, current)]
    assert any("`methane.number_of_casualties.serious`: maximum 10000 -> 1000000000" in b for b in breaks), breaks


def test_a_released_schema_no_longer_produced_fails_the_check(scratch):
    released, current = scratch
    (current / "TensionLevelChanged.v1.json").unlink()
    [problem] = check_directory(released, current)
    assert problem.schema == "TensionLevelChanged.v1.json" and "no longer produced" in problem.problem


def test_adding_a_field_or_a_new_schema_version_passes(scratch):
    released, current = scratch

    def add_field(doc):
        doc["properties"]["expected_at"] = {"type": "string", "format": "date-time"}
        doc["required"].append("expected_at")

    _edit(current, "EscalationRaised.v1.json", add_field)
    shutil.copyfile(current / "EscalationRaised.v1.json", current / "EscalationRaised.v9.json")
    assert check_directory(released, current) == []


# --- the rules, one per kind of change -----------------------------------------------------

CONSUMER = "EscalationRaised.v1.json"
INPUT = "IncidentReported.v1.input.json"


def _breaks(name: str, change) -> list[str]:
    released = _load(name)
    current = copy.deepcopy(released)
    change(current)
    return [str(b) for b in check(name, released, current)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["required"].remove("rule_id"), "field `rule_id`: no longer always present"),
        (lambda d: d["properties"].update(level={"anyOf": [d["properties"]["level"], {"type": "null"}]}),
         "field `level`: may now be null"),
        (lambda d: d["$defs"]["Agency"]["enum"].append("coastguard"),
         "field `agencies[]`: may now be 'coastguard', a value the released schema does not list"),
        (lambda d: d["properties"]["level"].update(maximum=4), "field `level`: maximum 3 -> 4: looser"),
        (lambda d: d["properties"]["ward_code"].update(pattern="^E0"), "field `ward_code`: pattern"),
        (lambda d: d["properties"]["severity"].update(type="string"), "field `severity`: may now be string"),
        (lambda d: d["properties"]["cap_xml"]["anyOf"][0].pop("maxLength"), "field `cap_xml`: maxLength 200000 -> 'none'"),
    ],
    ids=["optional", "nullable", "enum-value", "bound", "pattern", "type", "unbounded"],
)
def test_a_consumer_form_change_that_breaks_a_reader_is_named(change, expected):
    breaks = _breaks(CONSUMER, change)
    assert breaks and any(expected in b for b in breaks), breaks


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["properties"]["level"].update(maximum=2),
        lambda d: d["properties"].update(cap_xml=d["properties"]["cap_xml"]["anyOf"][0]),
        lambda d: d["$defs"]["Agency"]["enum"].remove("voluntary"),
        lambda d: d["properties"].update(new_field={"type": "string"}),
    ],
    ids=["tighter-bound", "no-longer-null", "fewer-values", "new-field"],
)
def test_a_consumer_form_change_every_reader_survives_passes(change):
    assert _breaks(CONSUMER, change) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["required"].append("casualties"), "field `casualties`: now required"),
        (lambda d: d["properties"]["severity"].update(maximum=4), "field `severity`: maximum 5 -> 4: stricter"),
        (lambda d: d["properties"].pop("police_grading"), "field `police_grading`: removed; producers"),
        (lambda d: (d["properties"].update(uprn={"type": "string"}), d["required"].append("uprn")),
         "field `uprn`: is new and required"),
    ],
    ids=["now-required", "stricter", "removed", "new-required"],
)
def test_an_input_form_change_that_rejects_a_released_producer_is_named(change, expected):
    breaks = _breaks(INPUT, change)
    assert breaks and any(expected in b for b in breaks), breaks


def test_an_input_form_may_accept_more():
    def accept_more(d):
        d["required"].remove("description")
        d["properties"]["uprn"] = {"type": "string"}

    assert _breaks(INPUT, accept_more) == []


def test_muster_contract_check_passes_on_the_repository_and_fails_naming_the_field(monkeypatch, scratch):
    from typer.testing import CliRunner

    from services import cli
    from services.shared import schemas

    runner = CliRunner()
    ok = runner.invoke(cli.app, ["contract", "check"])
    assert ok.exit_code == 0 and "compatible" in ok.output
    released, current = scratch
    _edit(current, "TensionLevelChanged.v1.json", lambda d: d["required"].remove("score"))
    monkeypatch.setattr(schemas, "RELEASED_DIR", released)
    monkeypatch.setattr(schemas, "SCHEMAS_DIR", current)
    failed = runner.invoke(cli.app, ["contract", "check"])
    assert failed.exit_code == 1
    assert "TensionLevelChanged.v1.json: field `score`: no longer always present" in failed.output
