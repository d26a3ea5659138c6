"""The tension processor on the real broker: a four-week history, its replay, poison records."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.shared.events import DeadLetter, TensionLevelChanged
from services.shared.topics import TopicCatalog
from services.tension.app import build
from services.tension.reader import read_alerts
from tests.integration.tension_support import expected_alerts, fresh_topics, produce, read_all
from tests.support import wait_until
from tests.tension_history import BOW_EAST, START, WHITECHAPEL, background, burst, in_time_order

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

EVENING = START + timedelta(days=17, hours=18)


async def alerts_on(settings, catalog) -> list[TensionLevelChanged]:
    return await read_all(settings, catalog.name("tension.alerts"))


async def test_a_four_week_history_raises_the_expected_alerts_and_a_replay_raises_the_same(test_settings, tmp_path, unique):
    settings = await fresh_topics(test_settings, unique)
    settings = settings.model_copy(update={"home": tmp_path})
    catalog = TopicCatalog.from_settings(settings)
    history = in_time_order(background(), burst(WHITECHAPEL, EVENING))
    expected = {a.event_id: a for a in expected_alerts(history)}
    assert {a.ward_code for a in expected.values()} == {WHITECHAPEL} and len(expected) >= 2

    live = build(settings)
    await live.app.start()
    try:
        for week in range(4):  # living through it: the worker runs while the weeks arrive
            await produce(settings, catalog.name("incidents"),
                          [e for e in history if week * 7 <= (e.occurred_at - START).days < (week + 1) * 7])
        await wait_until(lambda: _count(settings, catalog, len(expected)), timeout=120, what="the live alerts")
    finally:
        await live.app.stop()
    published = await alerts_on(settings, catalog)
    assert {a.event_id: a for a in published} == expected
    first = published[0] if published[0].old_level.value == "normal" else None
    assert first is not None and "hate_incident" in {c.category for c in first.top_contributors}
    assert first.early  # fired as the reports arrived, not hours later

    replay = build(settings.model_copy(update={"tension_app_id": settings.tension_app_id + "-replay"}))
    await replay.app.start()
    try:
        await wait_until(lambda: _count(settings, catalog, 2 * len(expected)), timeout=120, what="the replayed alerts")
    finally:
        await replay.app.stop()
    again = await alerts_on(settings, catalog)
    assert len(again) == 2 * len(expected)
    assert all(alert == expected[alert.event_id] for alert in again)  # same ids, same content
    # the weekly return reads the topic once per alert id
    assert sorted(a.event_id for a in await read_alerts(settings, catalog.name("tension.alerts"))) == sorted(expected)


async def _count(settings, catalog, n: int) -> bool:
    return len(await alerts_on(settings, catalog)) >= n


async def test_a_poison_record_is_dead_lettered_and_the_partition_keeps_flowing(test_settings, tmp_path, unique):
    settings = (await fresh_topics(test_settings, unique)).model_copy(update={"home": tmp_path})
    catalog = TopicCatalog.from_settings(settings)
    evening = START + timedelta(days=2, hours=18)
    history = in_time_order(background(days=4), burst(WHITECHAPEL, evening))
    tension = build(settings)
    await tension.app.start()
    try:
        await produce(settings, catalog.name("incidents"), raw=[(b"k", b"{not json"), (b"k", b'{"event_type": "Nope"}')])
        await produce(settings, catalog.name("incidents"), history)
        await wait_until(lambda: _count(settings, catalog, 1), timeout=120, what="an alert after the poison")
    finally:
        await tension.app.stop()
    letters = await read_all(settings, catalog.name("deadletter"), parse=DeadLetter.model_validate_json)
    assert len(letters) == 2 and {d.service for d in letters} == {"tension"}
    assert {d.source_topic for d in letters} == {catalog.name("incidents")}
    assert all(d.error for d in letters)
    alerts = await alerts_on(settings, catalog)
    assert alerts[0].ward_code == WHITECHAPEL and alerts[0].top_contributors[0].category == "hate_incident"


async def test_an_exercise_is_scored_apart_and_alerts_only_on_the_exercise_topic(test_settings, tmp_path, unique):
    settings = (await fresh_topics(test_settings, unique)).model_copy(update={"home": tmp_path})
    catalog = TopicCatalog.from_settings(settings)
    evening = START + timedelta(days=2, hours=18)
    history = in_time_order(
        background(days=4), burst(BOW_EAST, evening + timedelta(days=1), seed=4),  # live: Bow East rises
        background(days=4, seed=9, mode="exercise"), burst(WHITECHAPEL, evening, mode="exercise"),  # the drill
    )
    live = {a.event_id: a for a in expected_alerts(history)}
    drill = {a.event_id: a for a in expected_alerts(history, mode="exercise")}
    assert {a.ward_code for a in live.values()} == {BOW_EAST} and {a.ward_code for a in drill.values()} == {WHITECHAPEL}

    tension = build(settings)
    await tension.app.start()
    try:
        await produce(settings, catalog.name("incidents"), history)

        async def both() -> bool:
            return (len(await alerts_on(settings, catalog)) >= len(live)
                    and len(await read_all(settings, catalog.name("tension.alerts.exercise"))) >= len(drill))

        await wait_until(both, timeout=120, what="the live and the exercise alerts")
    finally:
        await tension.app.stop()
    assert {a.event_id: a for a in await alerts_on(settings, catalog)} == live
    exercise = await read_all(settings, catalog.name("tension.alerts.exercise"))
    assert {a.event_id: a for a in exercise} == drill
    assert {a.mode.value for a in exercise} == {"exercise"} and not set(live) & set(drill)



async def test_a_repeated_report_and_a_fact_of_another_mode_are_ignored_and_dead_lettered(test_settings, tmp_path, unique):
    """services/shared/admission.py in the re-keying stage: the second report of an incident (here
    moved to another ward and category) and an exercise update of a live incident are dead-lettered
    with the reason and counted; after a restart the stage reads the first reports again from the
    topic (services/shared/first_reports.py), so a repeat then is refused too."""
    import uuid

    from services.shared import events as ev
    from services.tension import metrics
    from tests import factories as f

    settings = (await fresh_topics(test_settings, unique)).model_copy(update={"home": tmp_path})
    catalog = TopicCatalog.from_settings(settings)
    at = START + timedelta(days=1, hours=12)
    first = f.reported(occurred_at=at, category="hate_incident", location=ev.Location(ward_code=BOW_EAST))
    again = f.reported(incident_id=first.incident_id, occurred_at=at, category="violence",
                       location=ev.Location(ward_code=WHITECHAPEL))
    drill = f.fact(ev.IncidentUpdated, first.incident_id, at, category="violence", mode=ev.Mode.EXERCISE)
    ignored = lambda: (metrics.IGNORED.labels("repeated_report")._value.get(),  # noqa: E731
                       metrics.IGNORED.labels("mode_mismatch")._value.get())
    before = ignored()

    async def lettered(n: int) -> bool:
        return len(await read_all(settings, catalog.name("deadletter"), parse=DeadLetter.model_validate_json)) >= n

    tension = build(settings)
    await tension.app.start()
    try:
        await produce(settings, catalog.name("incidents"), [first, again, drill])
        await wait_until(lambda: lettered(2), timeout=120, what="two dead letters")
    finally:
        await tension.app.stop()
    restarted = build(settings)  # a fresh worker: what the first reports fixed comes from the topic again
    await restarted.app.start()
    try:
        await produce(settings, catalog.name("incidents"), [again.model_copy(update={"event_id": uuid.uuid4()})])
        await wait_until(lambda: lettered(3), timeout=120, what="the repeat after a restart dead-lettered")
    finally:
        await restarted.app.stop()
    letters = await read_all(settings, catalog.name("deadletter"), parse=DeadLetter.model_validate_json)
    reasons = sorted(d.error.split(":", 1)[0] for d in letters)
    assert reasons == ["mode_mismatch", "repeated_report", "repeated_report"]
    assert {d.service for d in letters} == {"tension"}
    after = ignored()
    assert after[0] - before[0] >= 2 and after[1] - before[1] >= 1
