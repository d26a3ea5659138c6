import uuid

from services.escalation import batch, corroboration as corr
from services.escalation.state import apply_notice, fold, replayed
from services.shared import events as ev
from tests.unit.escalation.helpers import DEFAULT_RULES, POPLAR, T0, fact, poplar_fire, reported, timedelta

NOW = T0 + timedelta(seconds=10)


def _fact(f, offset, partition=0):
    report = f if isinstance(f, ev.IncidentReported) else None
    return batch.Input(str(f.incident_id), lambda s, f=f: fold(s, f, partition, offset), offset, report)


def _run(inputs, known=None, partition=0):
    known = known or {}
    loads = []

    def load(incident):
        loads.append(incident)
        return known.get(incident)

    out = batch.process(inputs, load, DEFAULT_RULES, partition=partition, sender="s@example", now=NOW)
    return out, loads


def _verdict(incident_id, kind="lead"):
    notice = corr.Notice(kind=kind, incident_id=incident_id, at=T0)
    return batch.Input(str(incident_id), lambda s: apply_notice(s, notice))


def test_a_report_and_its_resolution_in_one_batch_raise_then_stand_down_with_one_final_state():
    fire = poplar_fire(location=ev.Location(ward_code=POPLAR, address="Chrisp Street Market"))  # nothing to correlate on
    resolved = fact(ev.IncidentStatusChanged, fire.incident_id, T0 + timedelta(seconds=1), status="resolved")
    out, loads = _run([_fact(fire, 10), _fact(resolved, 11)])
    assert [d.event.event_type for d in out.produced if d.agency is None] == ["EscalationRaised", "EscalationStoodDown"]
    assert loads == [str(fire.incident_id)]  # looked up once
    final = out.states[str(fire.incident_id)]
    assert final.stood_down and final.offset == 11 and set(final.raised) == {3}


def test_a_report_correlation_covers_waits_for_its_verdict_then_escalates_as_a_lead():
    fire = poplar_fire()
    out, _ = _run([_fact(fire, 10)])
    assert out.produced == [] and out.nominated == [fire]
    assert out.states[str(fire.incident_id)].awaiting_correlation
    after, _ = _run([_verdict(fire.incident_id)], known=out.states)
    assert [d.event.level for d in after.produced if d.agency is None] == [3]


def test_a_report_linked_as_a_duplicate_never_escalates_on_its_own():
    fire = poplar_fire()
    out, _ = _run([_fact(fire, 10)])
    linked = corr.Notice(kind="linked", incident_id=fire.incident_id, lead=uuid.uuid4(), at=T0)
    after, _ = _run([batch.Input(str(fire.incident_id), lambda s: apply_notice(s, linked))], known=out.states)
    assert after.produced == [] and after.states[str(fire.incident_id)].linked_to == linked.lead


def test_an_operator_link_cancels_the_duplicates_alert_as_a_duplicate_and_tells_the_lead():
    fire, lead = poplar_fire(), uuid.uuid4()
    out, _ = _run([_fact(fire, 10)])
    out2, _ = _run([_verdict(fire.incident_id)], known=out.states)
    link = fact(ev.IncidentLinked, fire.incident_id, T0 + timedelta(minutes=5), lead_incident_id=lead)
    out3, _ = _run([_fact(link, 11)], known={**out.states, **out2.states})
    (stood,) = [d.event for d in out3.produced if d.agency is None]
    assert stood.event_type == "EscalationStoodDown" and stood.duplicate_of == lead
    assert "<msgType>Cancel</msgType>" in stood.cap_xml and str(lead) in stood.cap_xml
    (notice,) = out3.notices
    assert notice.kind == "correlated" and notice.incident_id == lead
    assert notice.related[0].incident_id == fire.incident_id and notice.related[0].rule_id == "operator-link"


def test_facts_already_in_the_state_are_replays_and_produce_nothing():
    fire = poplar_fire()
    first, _ = _run([_fact(fire, 10)])
    known = first.states
    again, _ = _run([_fact(fire, 10)], known=known)
    assert again.replays == 1 and again.produced == [] and again.states == {}


def test_a_fact_from_another_partition_is_not_taken_for_a_replay():
    s = fold(None, poplar_fire(), 0, 10)
    assert replayed(s, 0, 10) and replayed(s, 0, 3)
    assert not replayed(s, 0, 11) and not replayed(s, 1, 3) and not replayed(None, 0, 3)


def test_every_changed_incident_is_written_once_and_unchanged_ones_not_at_all():
    a, b = reported(), reported()
    notes = [fact(ev.NoteAdded, a.incident_id, T0, text=f"n{i}") for i in range(3)]
    out, _ = _run([_fact(a, 1), _fact(b, 2), *[_fact(n, 3 + i) for i, n in enumerate(notes)]])
    assert set(out.states) == {str(a.incident_id), str(b.incident_id)}
    assert out.states[str(a.incident_id)].offset == 5
    quiet = batch.Input(str(a.incident_id), lambda s: s)  # a deadline tick that changes nothing
    again, _ = _run([quiet], known=out.states)
    assert again.states == {} and again.produced == []


def test_only_new_reports_that_correlation_covers_and_have_coordinates_are_nominated():
    fight = reported(category="violence", severity=3)
    no_coordinates = reported(category="violence", severity=3, location=ev.Location(ward_code=fight.location.ward_code))
    noise = reported(category="noise", severity=2)
    assert corr.wanted(fight, DEFAULT_RULES) and not corr.wanted(noise, DEFAULT_RULES)
    out, _ = _run([_fact(fight, 1), _fact(no_coordinates, 2), _fact(noise, 3)])
    assert out.nominated == [fight]


def test_a_change_that_returns_no_state_records_nothing():
    out, _ = _run([batch.Input(str(uuid.uuid4()), lambda s: None)])
    assert out.states == {} and out.produced == []


def test_a_report_correlation_covers_that_is_over_tells_its_window_once():
    fight = reported(category="violence", severity=3)
    resolved = fact(ev.IncidentStatusChanged, fight.incident_id, T0 + timedelta(seconds=1), status="resolved")
    closed = fact(ev.IncidentStatusChanged, fight.incident_id, T0 + timedelta(seconds=2), status="closed")
    out, _ = _run([_fact(fight, 1)], partition=3)
    assert out.closed == []
    over, _ = _run([_fact(resolved, 2)], known=out.states, partition=3)
    (notice,) = over.closed
    assert notice.closing and notice.closed and notice.incident_id == fight.incident_id
    assert (notice.category, notice.mode, notice.partition) == ("violence", "live", 3)
    again, _ = _run([_fact(closed, 3)], known=over.states, partition=3)  # already over: no second notice
    assert again.closed == []


def test_only_reports_a_window_can_hold_are_announced_over():
    noise = reported(category="noise", severity=2)
    no_coordinates = reported(category="violence", severity=3, location=ev.Location(ward_code=POPLAR))
    inputs = [_fact(noise, 1), _fact(no_coordinates, 2)]
    inputs += [_fact(fact(ev.IncidentStatusChanged, r.incident_id, T0 + timedelta(seconds=1), status="resolved"), 3 + i)
               for i, r in enumerate((noise, no_coordinates))]
    out, _ = _run(inputs)
    assert out.closed == []


def _notice(notice):
    return batch.Input(str(notice.incident_id), lambda s: apply_notice(s, notice), notice=notice)


def test_reports_linked_to_a_lead_already_over_are_told_to_escalate_on_their_own():
    lead = poplar_fire()
    out, _ = _run([_fact(lead, 1), _verdict(lead.incident_id)])
    resolved = fact(ev.IncidentStatusChanged, lead.incident_id, T0 + timedelta(seconds=1), status="resolved")
    over, _ = _run([_fact(resolved, 2)], known=out.states)
    echo = poplar_fire(source=ev.Source(kind="public", id="caller-3"))
    by_rule = ev.Related(incident_id=echo.incident_id, rule_id="same-fire-or-collapse", distance_m=40.0, interval_s=60)
    by_operator = ev.Related(incident_id=uuid.uuid4(), rule_id="operator-link")
    told, _ = _run([_notice(corr.Notice(kind="correlated", incident_id=lead.incident_id, related=(by_rule, by_operator),
                                        at=T0))], known=over.states)
    assert [(n.kind, n.incident_id, n.lead) for n in told.notices] == [("unlinked", echo.incident_id, lead.incident_id)]
    assert told.states == {}  # the finished lead is not revived
    # A lead long released (no state at all) answers the same.
    gone, _ = _run([_notice(corr.Notice(kind="correlated", incident_id=lead.incident_id, related=(by_rule,)))])
    assert [n.kind for n in gone.notices] == ["unlinked"]

    # The report, linked meanwhile, escalates on its own once told.
    linked, _ = _run([_fact(echo, 5), _notice(corr.Notice(kind="linked", incident_id=echo.incident_id,
                                                          lead=lead.incident_id, related=(by_rule,), at=T0))])
    assert not [d for d in linked.produced if d.agency is None]
    freed, _ = _run([_notice(corr.Notice(kind="unlinked", incident_id=echo.incident_id, lead=lead.incident_id))],
                    known=linked.states)
    state = freed.states[str(echo.incident_id)]
    assert state.linked_to is None and state.duplicate is None
    assert [d.event.event_type for d in freed.produced if d.agency is None] == ["EscalationRaised"]


def test_an_operators_link_is_never_undone_by_an_unlinked_notice():
    lead, echo = poplar_fire(), poplar_fire(location=ev.Location(ward_code=POPLAR, address="Across the market"))
    link = fact(ev.IncidentLinked, echo.incident_id, T0 + timedelta(seconds=1), lead_incident_id=lead.incident_id)
    out, _ = _run([_fact(echo, 1), _fact(link, 2)])
    again, _ = _run([_notice(corr.Notice(kind="unlinked", incident_id=echo.incident_id, lead=lead.incident_id))],
                    known=out.states)
    assert again.states == {} or again.states[str(echo.incident_id)].linked_to == lead.incident_id
