"""Each simulator scenario's whole message chain (events and CAP XML), checked in as golden
files, read back by an independent parser (lxml against the OASIS XSD) and checked by meaning.

Regenerate after a deliberate change with `MUSTER_REGENERATE_GOLDEN=1 .venv/bin/pytest
tests/unit/escalation/test_golden.py`, and read the diff: it is what responders will see.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import pytest
from lxml import etree

from services.escalation.cap import NS
from services.escalation.outputs import owners
from services.shared import events as ev
from services.simulator.generator import FeedConfig, generate
from services.simulator.scenarios import SCENARIOS
from tests.cap_schema import assert_valid_cap
from tests.escalation_chain import SENDER, run
from tests.unit.escalation.helpers import DEFAULT_RULES

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "golden" / "escalation"
START = datetime(2026, 11, 20, tzinfo=timezone.utc)
EXERCISE = "Operation Ember 2026"
CASES = {**{name: (name, ev.Mode.LIVE) for name in SCENARIOS}, "poplar-fire-exercise": ("poplar-fire", ev.Mode.EXERCISE)}
C = {"c": NS}


@lru_cache(maxsize=None)
def chain(case: str):
    scenario, mode = CASES[case]
    config = FeedConfig(start=START, hours=24, background=False, scenarios=((scenario, None),), mode=mode,
                        exercise=EXERCISE if mode is ev.Mode.EXERCISE else None)
    facts = list(generate(config))
    return facts, run(facts, DEFAULT_RULES)


def lines(case: str) -> list[str]:
    _, c = chain(case)
    return [json.dumps({"to": d.agency.value if d.agency else "all", "event": d.event.model_dump(mode="json")},
                       sort_keys=True) for d in c.deliveries]


def xml_files(case: str) -> dict[str, str]:
    _, c = chain(case)
    events = [d.event for d in c.deliveries if d.agency is None]
    return {f"{n:02d}-{e.event_type}-{str(e.incident_id)[:8]}.xml": e.cap_xml for n, e in enumerate(events, 1)}


@pytest.mark.parametrize("case", CASES)
def test_the_message_chain_is_the_golden_one(case):
    jsonl, folder = GOLDEN / f"{case}.jsonl", GOLDEN / case
    if os.environ.get("MUSTER_REGENERATE_GOLDEN"):
        folder.mkdir(parents=True, exist_ok=True)
        jsonl.write_text("\n".join(lines(case)) + "\n")
        for old in folder.glob("*.xml"):
            old.unlink()
        for name, xml in xml_files(case).items():
            (folder / name).write_text(xml + "\n")
    assert jsonl.read_text().splitlines() == lines(case)
    assert {p.name: p.read_text().rstrip("\n") for p in folder.glob("*.xml")} == xml_files(case)


@pytest.mark.parametrize("case", CASES)
def test_every_cap_message_validates_against_the_oasis_schema(case):
    _, c = chain(case)
    assert c.deliveries, "a scenario that escalates nothing checks nothing"
    for d in c.deliveries:
        assert_valid_cap(d.event.cap_xml)


def _doc(event) -> etree._Element:
    return etree.fromstring(event.cap_xml.encode())


@pytest.mark.parametrize("case", CASES)
def test_m_is_yes_exactly_when_someone_declared_before_the_message(case):
    facts, c = chain(case)
    for d in c.deliveries:
        e = d.event
        if isinstance(e, ev.EscalationStoodDown):
            continue
        declared = [f for f in facts if isinstance(f, ev.MajorIncidentDeclared) and f.incident_id == e.incident_id
                    and f.recorded_at <= e.recorded_at]
        assert e.methane.major_incident is bool(declared)
        assert [x.declared_by for x in e.methane.declarations] == [f.declared_by for f in declared]
        param = _doc(e).findtext("c:info/c:parameter[c:valueName='M-major-incident']/c:value", namespaces=C)
        assert param == ("yes" if declared else "no")
        if not declared and e.level == 3:
            assert e.methane.major_incident_statement.startswith("not declared; level 3 by rule ")


@pytest.mark.parametrize("case", CASES)
def test_each_message_references_every_earlier_message_of_its_chain_and_sent_never_goes_back(case):
    _, c = chain(case)
    sent: dict[str, list[tuple[str, str]]] = {}
    for e in (d.event for d in c.deliveries if d.agency is None):
        doc = _doc(e)
        ident, at = doc.findtext("c:identifier", namespaces=C), doc.findtext("c:sent", namespaces=C)
        assert at.endswith("-00:00") and ident == f"urn:uuid:{e.event_id}"
        earlier = sent.setdefault(str(e.incident_id), [])
        refs = (doc.findtext("c:references", namespaces=C) or "").split()
        assert refs == [f"{SENDER},{i},{s}" for i, s in earlier]
        assert all(s <= at for _, s in earlier)
        assert doc.findtext("c:msgType", namespaces=C) == ("Alert" if not earlier else
                                                           "Cancel" if isinstance(e, ev.EscalationStoodDown)
                                                           and e.final_status.value in ("unfounded", "false_alarm")
                                                           or getattr(e, "duplicate_of", None) else "Update")
        earlier.append((ident, at))


@pytest.mark.parametrize("case", CASES)
def test_one_alert_chain_per_emergency_duplicates_never_raise_their_own(case):
    facts, c = chain(case)
    linked = {f.incident_id: f.lead_incident_id for f in facts if isinstance(f, ev.IncidentLinked)}
    for e in (d.event for d in c.deliveries if d.agency is None):
        if e.incident_id in linked:  # a report the control room later linked as a duplicate
            assert isinstance(e, ev.EscalationStoodDown) and e.duplicate_of == linked[e.incident_id] or (
                isinstance(e, ev.EscalationRaised)), e
    raised = {e.incident_id for d in c.deliveries if isinstance(e := d.event, ev.EscalationRaised)}
    cancelled = {e.incident_id for d in c.deliveries if isinstance(e := d.event, ev.EscalationStoodDown)
                 and e.duplicate_of is not None}
    assert raised & set(linked) <= cancelled  # any that raised before the link was cancelled as a duplicate
    leads = set(linked.values())
    assert leads <= raised or not raised & leads, "the lead escalates for the whole group"


@pytest.mark.parametrize("case", CASES)
def test_each_recipient_gets_only_what_it_may_have_and_no_report_text_or_person_ever(case):
    facts, c = chain(case)
    free_text = {f.description for f in facts if isinstance(f, ev.IncidentReported)}
    free_text |= {f.text for f in facts if isinstance(f, ev.NoteAdded)}
    people = {p.description for f in facts if isinstance(f, ev.IncidentReported) for p in f.people if p.description}
    addresses = {f.incident_id: f.location.address for f in facts if isinstance(f, ev.IncidentReported)
                 and f.location.address}
    for d in c.deliveries:
        body = d.event.model_dump_json() + d.event.cap_xml
        assert not [t for t in (*free_text, *people) if t in body]
        state = c.states[str(d.event.incident_id)]
        if getattr(d.event, "detail", None) is ev.Detail.WARD:
            address = addresses.get(d.event.incident_id)
            assert address is None or address not in body
            assert "<circle>" not in d.event.cap_xml
        if state.classification is ev.Classification.OFFICIAL_SENSITIVE and d.agency not in owners(state):
            assert getattr(d.event, "detail", ev.Detail.WARD) is ev.Detail.WARD


def test_an_exercise_says_so_in_every_message_and_never_reaches_a_live_recipient():
    _, c = chain("poplar-fire-exercise")
    for d in c.deliveries:
        e, doc = d.event, _doc(d.event)
        assert e.mode is ev.Mode.EXERCISE and e.exercise == EXERCISE
        assert doc.findtext("c:status", namespaces=C) == "Exercise"
        assert f"EXERCISE {EXERCISE}" in doc.findtext("c:note", namespaces=C)
        headline = doc.findtext("c:info/c:headline", namespaces=C)
        assert headline is None or headline.startswith("EXERCISE: ")


def test_the_poplar_fire_chain_reads_as_a_commander_would_expect():
    facts, c = chain("poplar-fire")
    (lead,) = {f.incident_id for f in facts if isinstance(f, ev.IncidentReported) and f.source.kind is ev.SourceKind.FIRE}
    mine = [d.event for d in c.deliveries if d.agency is None and d.event.incident_id == lead]
    assert [e.event_type for e in mine][0] == "EscalationRaised" and mine[0].level == 3
    assert not mine[0].methane.major_incident and mine[0].methane.access == "not yet known"
    updates = [e for e in mine if isinstance(e, ev.EscalationUpdated)]
    assert {"related reports", "M", "N"} <= {x for u in updates for x in u.changed}
    assert len({r.incident_id for u in updates for r in u.related}) == 3  # the three echoes, with provenance
    last = mine[-1]
    assert isinstance(last, ev.EscalationStoodDown) and last.final_status is ev.IncidentStatus.RESOLVED
    assert _doc(last).findtext("c:info/c:responseType", namespaces=C) == "AllClear"


def test_the_knife_victims_alert_keeps_the_scene_apart_from_the_hospital():
    facts, c = chain("knife-hospital")
    (first,) = [d.event for d in c.deliveries if d.agency is None and isinstance(d.event, ev.EscalationRaised)
                and d.event.category is ev.Category.KNIFE_CRIME]
    assert first.ward_code == next(f for f in facts if isinstance(f, ev.IncidentReported)).location.ward_code
    assert "casualty presented at Whitechapel ward" in first.methane.exact_location
    assert first.methane.exact_location.startswith("Stepney Green ward")
