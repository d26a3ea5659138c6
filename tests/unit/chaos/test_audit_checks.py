"""The auditor's checks find what they are for (and pass a clean history)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.chaos.audit import checks
from services.chaos.audit.contract import Contract
from services.chaos.audit.sources import Rec
from services.shared import events as ev
from services.shared.codec import editions, encode
from services.shared.settings import REPO_ROOT
from tests.factories import fact, reported

pytestmark = pytest.mark.unit
CONTRACT = Contract(REPO_ROOT / "topics.yaml", REPO_ROOT / "schemas")
T0 = datetime(2026, 12, 1, 21, 0, tzinfo=timezone.utc)


def _wire(event) -> dict:
    return json.loads(encode(event).value)


def report(incident: str, severity: int = 4, at: datetime = T0) -> dict:
    return _wire(reported(incident_id=uuid.UUID(incident), occurred_at=at, recorded_at=at, category="other",
                          severity=severity))


def status(incident: str, value: str, at: datetime) -> dict:
    return _wire(fact(ev.IncidentStatusChanged, uuid.UUID(incident), at, status=value))


def log_of(*events: dict, escalations: list[tuple[dict, float]] = ()) -> checks.Log:
    recs = [Rec("incidents.events.v1", 0, n, None, json.dumps(e).encode(), T0.timestamp()) for n, e in enumerate(events)]
    esc = [Rec("escalations.all.v1", 0, n, None, json.dumps(e).encode(), ts) for n, (e, ts) in enumerate(escalations)]
    return checks.Log.read(CONTRACT, {"incidents": recs, "escalations.all": esc})


def test_the_contract_accepts_a_valid_fact_and_refuses_poison():
    assert CONTRACT.decode(json.dumps(report(str(uuid.uuid4()))).encode()) is not None
    assert CONTRACT.decode(b"\xff\x00") is None
    assert CONTRACT.decode(json.dumps({**report(str(uuid.uuid4())), "severity": "catastrophic"}).encode()) is None


def test_an_acknowledged_write_twice_on_the_topic_and_a_refused_one_present_are_violations():
    incident = str(uuid.uuid4())
    a, b = report(incident), report(str(uuid.uuid4()))
    log = log_of(a, a, b)
    ledger = [{"kind": "ack", "event_id": a["event_id"], "event_type": "IncidentReported", "partition": 0, "offset": 0,
               "t": T0.timestamp()},
              {"kind": "refused", "event_id": b["event_id"], "status": 422}]
    store = {"incident_events": [{"event_id": a["event_id"]}]}
    c = checks.acknowledged_writes(log, ledger, store)
    assert c.count == 2 and "2 times" in c.violations[0] and "refused" in c.violations[1]
    clean = checks.acknowledged_writes(log_of(a), ledger[:1], store)
    assert clean.ok, clean.violations


def test_the_store_must_equal_the_fold_status_never_moving_back():
    incident = str(uuid.uuid4())
    log = log_of(report(incident), status(incident, "resolved", T0 + timedelta(seconds=5)),
                 status(incident, "dispatched", T0 + timedelta(seconds=9)))
    folded = checks.fold(log)[incident]
    assert folded["status"] == "resolved" and folded["version"] == 3
    row = {"incident_id": incident, **{f: folded[f] for f in checks.FOLDED}}
    assert checks.store_is_the_fold(log, {"incidents": [row]}).ok
    assert not checks.store_is_the_fold(log, {"incidents": [{**row, "status": "dispatched"}]}).ok


def test_http_outcomes_flag_a_500_a_bare_503_and_a_hang():
    base = {"kind": "request", "path": "/v1/events:batch", "began": T0.timestamp(), "seconds": 0.1, "error": None}
    ok = [{**base, "status": 200}, {**base, "status": 503, "retry_after": "3"}]
    assert checks.http_outcomes(ok, 12).ok
    bad = [{**base, "status": 500}, {**base, "status": 503, "retry_after": None},
           {**base, "status": None, "error": "timeout", "seconds": 12.0}]
    assert checks.http_outcomes(bad, 12).count == 3


def test_a_deadline_that_fell_due_must_be_escalated_in_time():
    incident = str(uuid.uuid4())
    log = log_of(report(incident))
    due = T0 + timedelta(seconds=20)
    raise_ = {"event_type": "EscalationRaised", "event_id": str(uuid.uuid4()), "incident_id": incident, "level": 1,
              "rule_id": "acknowledgement-deadline", "occurred_at": due.isoformat()}
    until = (T0 + timedelta(seconds=30)).timestamp()
    missing = checks.deadlines(log, CONTRACT, {4: 20.0}, 3, lambda d: 5.0, until)
    assert missing.count == 1 and "never escalated" in missing.violations[0]

    def with_raise(published: float) -> checks.Check:
        lg = log_of(report(incident))
        lg.escalations["escalations.all"] = [(Rec("escalations.all.v1", 0, 0, None, b"", published), raise_)]
        return checks.deadlines(lg, CONTRACT, {4: 20.0}, 3, lambda d: 5.0, until)

    assert with_raise(due.timestamp() + 1).ok
    late = with_raise(due.timestamp() + 9)
    assert late.count == 1 and "after it fell due" in late.violations[0]


def test_an_older_version_copy_of_a_fact_is_not_a_second_copy():
    incident = uuid.uuid4()
    dispatched = fact(ev.ResponderDispatched, incident, T0, agency="fire", callsign="F21")
    records = [Rec("incidents.events.v1", 0, n, r.key, r.value, T0.timestamp(), tuple(r.headers))
               for n, r in enumerate(editions(dispatched))]
    assert len(records) == 2  # v2 and, while the transition lasts, the v1 copy
    log = checks.Log.read(CONTRACT, {"incidents": records})
    assert [e["event_id"] for _, e in log.facts] == [str(dispatched.event_id)]
    assert log.superseded == len(records) - 1 and not log.poison


def test_a_report_that_reached_the_log_after_its_deadline_may_escalate_on_arrival():
    incident = str(uuid.uuid4())
    due = T0 + timedelta(seconds=20)
    arrived = due.timestamp() + 15  # intake was down: the report reached the log 15 s after its deadline
    log = log_of(report(incident))
    (rec, event), = log.facts
    log.facts = [(Rec(rec.topic, rec.partition, rec.offset, rec.key, rec.value, arrived), event)]
    raise_ = {"event_type": "EscalationRaised", "event_id": str(uuid.uuid4()), "incident_id": incident, "level": 1,
              "rule_id": "acknowledgement-deadline", "occurred_at": due.isoformat()}
    log.escalations["escalations.all"] = [(Rec("escalations.all.v1", 0, 0, None, b"", arrived + 2), raise_)]
    assert checks.deadlines(log, CONTRACT, {4: 20.0}, 3, lambda d: 5.0, arrived + 4).ok  # before the second deadline


def test_a_rebuild_that_differs_names_the_row_and_the_column() -> None:
    row = {"incident_id": uuid.UUID(int=1), "version": 3, "agencies_required": ["fire", "police"]}
    live = {"incidents": [row, {**row, "incident_id": uuid.UUID(int=2)}]}
    rebuilt = {"incidents": [{**row, "agencies_required": ["police", "fire"]}, {**row, "incident_id": uuid.UUID(int=3)}]}
    check = checks.rebuild_equals_live(live, rebuilt)
    assert check.count == 3
    assert any("agencies_required: live ['fire', 'police'], rebuilt ['police', 'fire']" in v
               and str(uuid.UUID(int=1)) in v for v in check.violations)
    assert any(str(uuid.UUID(int=2)) in v and "not in the rebuild" in v for v in check.violations)
    assert any(str(uuid.UUID(int=3)) in v and "not live" in v for v in check.violations)
    assert checks.rebuild_equals_live(live, {"incidents": list(reversed(live["incidents"]))}).ok


# --- tension alerts equal an offline replay -----------------------------------------------------


def _tension_alerts(mode: str = "live") -> list:
    """Real alerts of a Bonfire Night without its planned event (the rules' own), as published."""
    from services.tension.config import load_config
    from services.tension.rules import replay, to_event
    from tests.tension_history import BY_WARD_PARTITIONS, bonfire_night, by_ward_partition

    history, _ = bonfire_night(0)
    if mode != "live":
        history = [type(e).model_validate({**e.model_dump(), "mode": mode, "exercise": "drill"}) for e in history]
    config = load_config()
    per_partition = by_ward_partition(sorted(history, key=lambda e: e.occurred_at), config=config, mode=mode)
    return [to_event(c, c.ward, mode) for c in replay(per_partition, config, BY_WARD_PARTITIONS, mode=mode)]


def _on_topic(topic: str, alerts) -> list[Rec]:
    """The records a worker writes: each alert in every edition (the older version's copy too)."""
    out = []
    for alert in alerts:
        for r in editions(alert):
            out.append(Rec(topic, 0, len(out), r.key, r.value, T0.timestamp(), tuple(r.headers)))
    return out


def _lines(alerts) -> list[bytes]:
    return [encode(a).value for a in alerts]


def test_tension_alerts_equal_to_their_replay_pass_also_when_published_again_after_a_restart():
    alerts, drill = _tension_alerts(), _tension_alerts("exercise")
    assert alerts and drill
    records = {"tension.alerts": _on_topic("tension.alerts.v1", alerts + alerts[:2]),
               "tension.alerts.exercise": _on_topic("tension.alerts.exercise.v1", drill)}
    c = checks.tension_replayed(CONTRACT, records, _lines(alerts + drill))
    assert c.ok, c.violations
    assert c.stats["published_again_same_id"] == 2
    assert c.stats["replayed"] == {"tension.alerts": len(alerts), "tension.alerts.exercise": len(drill)}


def test_an_alert_an_hour_off_its_replay_a_missing_one_and_an_extra_one_are_violations():
    alerts = _tension_alerts()
    off = alerts[0].model_copy(update={"window_end": alerts[0].window_end + timedelta(hours=1)})
    extra = alerts[1].model_copy(update={"event_id": uuid.uuid4()})
    records = {"tension.alerts": _on_topic("tension.alerts.v1", [off, *alerts[2:], extra])}
    c = checks.tension_replayed(CONTRACT, records, _lines(alerts))
    assert c.count == 3, c.violations
    differs, = [v for v in c.violations if "differs" in v]
    assert "window_end" in differs and str(off.event_id) in differs
    assert any("not on the topic" in v and str(alerts[1].event_id) in v for v in c.violations)
    assert any("does not raise it" in v and str(extra.event_id) in v for v in c.violations)


def test_an_exercise_alert_on_the_live_topic_or_a_replay_that_failed_is_a_violation():
    drill = _tension_alerts("exercise")
    c = checks.tension_replayed(CONTRACT, {"tension.alerts": _on_topic("tension.alerts.v1", drill[:1])}, _lines(drill))
    assert any("tension.alerts.v1" in v and "does not raise it" in v for v in c.violations)
    assert any("tension.alerts.exercise.v1" in v and "not on the topic" in v for v in c.violations)
    failed = checks.tension_replayed(CONTRACT, {}, "muster tension replay exited with 1: no broker")
    assert failed.count == 1 and "no broker" in failed.violations[0]
    garbage = checks.tension_replayed(CONTRACT, {}, [b'{"event": "log line"}'])
    assert garbage.count == 1 and "replay line 1" in garbage.violations[0]
