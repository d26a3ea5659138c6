"""The casework processor on the real broker: a borough's complaints and reports become the
alerts the pure rules expect, a replay publishes the same, clocks warn, poison is dead-lettered."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from services.casework import rules
from services.casework.app import build
from services.casework.config import DEFAULT_CONFIG_FILE, load_config
from services.casework.inputs import inputs_of
from services.shared import events as ev
from services.shared.topics import TopicCatalog
from tests.integration.tension_support import fresh_topics, produce, read_all
from tests.support import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

NOW = datetime.now(timezone.utc).replace(microsecond=0)
START = NOW - timedelta(days=120)
WARD = "E05009317"


def src(agency: ev.Agency) -> ev.Source:
    return ev.Source(kind=ev.SourceKind.CONTROL_ROOM, id=f"op-{agency.value}", agency=agency)


def history(key: str, uprn: str, cuckooed: str) -> list[ev.Event]:
    """A resident's three complaints (one made to three agencies), a problem property reported
    by two agencies with a closure notice (48 hours) served 43 hours ago, and a cuckooed flat."""
    out: list[ev.Event] = []
    loc = ev.Location(ward_code=WARD)
    for n, day in enumerate((0, 45, 90)):
        incident = uuid.uuid4()
        at = START + timedelta(days=day)
        out.append(ev.IncidentReported(
            incident_id=incident, occurred_at=at - timedelta(hours=5), recorded_at=at, source=src(ev.Agency.COUNCIL),
            category=ev.Category.ANTISOCIAL_BEHAVIOUR, severity=2, location=loc, description="Shouting", complainant_key=key,
        ))
        if n == 1:
            for agency in (ev.Agency.POLICE, ev.Agency.HOUSING):
                out.append(ev.ComplaintRecorded(
                    incident_id=incident, occurred_at=at + timedelta(hours=3), recorded_at=at + timedelta(hours=3),
                    source=src(agency), complainant_key=key, behaviour_at=at - timedelta(hours=5),
                    category=ev.Category.ANTISOCIAL_BEHAVIOUR, agency=agency,
                ))
    for n, agency in enumerate((ev.Agency.COUNCIL, ev.Agency.POLICE, ev.Agency.COUNCIL)):
        at = NOW - timedelta(days=20 - n)
        out.append(ev.IncidentReported(
            incident_id=uuid.uuid4(), occurred_at=at, recorded_at=at, source=src(agency), category=ev.Category.DRUGS,
            severity=2, location=loc, description="Dealing", uprn=uprn,
        ))
    out.append(ev.ClosureNoticeIssued(
        incident_id=uuid.uuid4(), occurred_at=NOW - timedelta(hours=43), recorded_at=NOW - timedelta(hours=43),
        source=src(ev.Agency.COUNCIL), uprn=uprn, agency=ev.Agency.COUNCIL, duration_hours=48,
    ))
    out.append(ev.IncidentReported(
        incident_id=uuid.uuid4(), occurred_at=NOW - timedelta(days=30), recorded_at=NOW - timedelta(days=30),
        source=src(ev.Agency.POLICE), category=ev.Category.CRIMINAL_EXPLOITATION, severity=3, location=loc,
        description="Occupant exploited", uprn=cuckooed,
    ))
    for n in range(3):
        at = NOW - timedelta(days=10 - n)
        out.append(ev.IncidentReported(
            incident_id=uuid.uuid4(), occurred_at=at, recorded_at=at, source=src(ev.Agency.COUNCIL),
            category=ev.Category.NOISE, severity=1, location=loc, description="Music", uprn=cuckooed,
        ))
    return out


def expected(events, config) -> dict[uuid.UUID, ev.Event]:
    """What the pure rules raise, case by case in log order (each case sees its facts in order)."""
    kinds = dict(premises_categories=config.premises.categories, safeguarding_categories=config.safeguarding.categories,
                 asb_categories=config.asb_case_review.categories)
    states, out = {}, {}
    for event in events:
        for item in inputs_of(event, **kinds):
            states[item.key], produced = rules.apply(states.get(item.key), item, config)
            out.update({e.event_id: e for e in produced if not isinstance(e, ev.CaseworkCaseChanged)})
    return out


def config_file(tmp_path):
    path = tmp_path / "casework.yaml"
    text = DEFAULT_CONFIG_FILE.read_text().replace("tick: 30s", "tick: 1s")
    path.write_text(text)
    return path


def gist(e: ev.Event) -> tuple:
    """What an alert decides (its reports may list what had arrived when it fired)."""
    return (e.event_type, e.case_id, getattr(e, "rule_id", None), getattr(e, "route", None),
            getattr(e, "threshold", None))


async def alerts(settings, catalog) -> list[ev.Event]:
    return await read_all(settings, catalog.name("casework.alerts"))


async def test_a_borough_history_raises_the_expected_alerts_warns_on_clocks_and_a_replay_raises_the_same(
    test_settings, tmp_path, unique,
):
    settings = (await fresh_topics(test_settings, unique)).model_copy(
        update={"home": tmp_path, "casework_config_file": config_file(tmp_path)})
    catalog = TopicCatalog.from_settings(settings)
    key, uprn, cuckooed = uuid.uuid4().hex, str(uuid.uuid4().int % 10**12), str(uuid.uuid4().int % 10**11)
    events = history(key, uprn, cuckooed)
    want = expected(sorted(events, key=lambda e: e.recorded_at), load_config())
    by_type = defaultdict(list)
    for e in want.values():
        by_type[e.event_type].append(e)
    assert len(by_type["AsbCaseReviewThresholdMet"]) == 1
    assert {e.route for e in by_type["PremisesThresholdReached"]} == {ev.CaseRoute.ENFORCEMENT, ev.CaseRoute.SAFEGUARDING}

    worker = build(settings)
    await worker.app.start()
    try:
        await produce(settings, catalog.name("incidents"), sorted(events, key=lambda e: e.recorded_at))

        async def all_in() -> bool:
            seen = await alerts(settings, catalog)
            warned = {e.clock.name for e in seen if isinstance(e, ev.CaseClockWarning)}
            return set(want) <= {e.event_id for e in seen} and {"notice_expires", "court_deadline"} <= warned

        await wait_until(all_in, timeout=120, what="every alert and the closure clock warnings")
    finally:
        await worker.app.stop()
    published = await alerts(settings, catalog)
    raised = {e.event_id: e for e in published if not isinstance(e, ev.CaseClockWarning)}
    assert {i: gist(e) for i, e in raised.items()} == {i: gist(e) for i, e in want.items()}
    met = by_type["AsbCaseReviewThresholdMet"][0]
    assert len(met.complaints) == 3 and {c.agency for c in met.complaints} == {ev.Agency.COUNCIL}
    cases = {e.case_id: e for e in await read_all(settings, catalog.name("casework.cases"))}
    assert cases[ev.case_id_of("asb", key)].counted == 3
    assert cases[ev.case_id_of("premises", cuckooed)].status == "with_safeguarding"

    replay = build(settings.model_copy(update={"casework_app_id": settings.casework_app_id + "-replay"}))
    await replay.app.start()
    try:
        await wait_until(lambda: _twice(settings, catalog, len(raised)), timeout=120, what="the replayed alerts")
    finally:
        await replay.app.stop()
    again = [e for e in await alerts(settings, catalog) if not isinstance(e, ev.CaseClockWarning)]
    assert all(e == raised[e.event_id] for e in again)  # same ids, same content


async def _twice(settings, catalog, n: int) -> bool:
    return len([e for e in await alerts(settings, catalog) if not isinstance(e, ev.CaseClockWarning)]) >= 2 * n


async def test_a_poison_record_is_dead_lettered_and_casework_keeps_flowing(test_settings, tmp_path, unique):
    settings = (await fresh_topics(test_settings, unique)).model_copy(update={"home": tmp_path})
    catalog = TopicCatalog.from_settings(settings)
    key = uuid.uuid4().hex
    events = history(key, "1", "2")[:5]  # the three complaints
    worker = build(settings)
    await worker.app.start()
    try:
        await produce(settings, catalog.name("incidents"),
                      raw=[(b"k", b"{not json"), (b"k", b'{"event_type": "ComplaintRecorded"}')])
        await produce(settings, catalog.name("incidents"), events)

        async def met() -> bool:
            return any(isinstance(e, ev.AsbCaseReviewThresholdMet) for e in await alerts(settings, catalog))

        await wait_until(met, timeout=120, what="the threshold after the poison")
    finally:
        await worker.app.stop()
    letters = await read_all(settings, catalog.name("deadletter"), parse=ev.DeadLetter.model_validate_json)
    mine = [d for d in letters if d.service == "casework"]
    assert len(mine) == 2 and all(d.error for d in mine)
