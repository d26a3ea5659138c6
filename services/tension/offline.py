"""The offline replay: the alerts the tension workers raise for the log as it stands.

The incidents and calendar topics are read from the beginning to their end offsets of now,
each record routed exactly as the re-keying stage routes it (rekey.route: the same narrow
decode, the same admission of each incident's facts by its first report, the same source
numbering, the same by-ward partition), and the pure rules
(rules.replay) run over what every by-ward partition would receive, every source partition
then read to its end. No consumer group, no state, nothing written.

`muster tension replay` prints the result; the chaos auditor runs that command as a separate
process and compares it with the alerts topic (docs/chaos.md), and the integration tests
compare the live worker with it. The rules' alerts do not depend on how the source partitions
interleave (tests/unit/tension/test_counting.py), so the order the sources are merged in here
(by event time, each source in its own order) is only the natural one, not a requirement.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping

from services.shared.codec import encode
from services.shared.first_reports import FirstReports
from services.shared.events import TensionLevelChanged
from services.shared.kafka import read_log
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog
from services.shared.wards import load_wards
from services.tension.config import TensionConfig, load_config
from services.tension.rekey import route
from services.tension.rules import replay, to_event
from services.tension.state import LIVE, Indicator

EXERCISE_MODES = ("exercise", "test")  # scored apart, published on the exercise alerts topic


def replay_records(log: Mapping, *, incidents_topic: str, calendar_topic: str, config: TensionConfig,
                   partitions: int, ward_names: Mapping[str, str], modes: tuple[str, ...] = (LIVE,)
                   ) -> list[TensionLevelChanged]:
    """The alerts of `modes` for a log: TopicPartition -> its records in offset order (records
    with `.partition`, `.value`, `.headers`), of the incidents and the calendar topic."""
    incidents = 1 + max((tp.partition for tp in log if tp.topic == incidents_topic), default=-1)
    calendar = 1 + max((tp.partition for tp in log if tp.topic == calendar_topic), default=-1)
    sources = incidents + calendar
    per_source: dict[int, dict[int, list[Indicator]]] = defaultdict(dict)  # by-ward partition -> source -> rows
    dead: list = []  # what the workers dead-letter counts nowhere
    reports = FirstReports(_nothing_before)  # a repeated report, a fact of another mode: ignored, as live
    clocks: dict = {}  # each source partition's clock, from its start, as the re-keying stage keeps it
    for tp in sorted(log, key=lambda tp: (tp.topic != incidents_topic, tp.partition)):
        if tp.topic not in (incidents_topic, calendar_topic):
            continue
        is_calendar = tp.topic == calendar_topic
        routed = route(log[tp], sources, partitions, dead, config=config, offset=incidents if is_calendar else 0,
                       calendar=is_calendar, reports=None if is_calendar else reports, clocks=clocks)
        source = (incidents if is_calendar else 0) + tp.partition
        for target, rows in routed.items():
            per_source[target][source] = [Indicator.unpack(row) for row in rows]
    alerts: list[TensionLevelChanged] = []
    for mode in modes:
        per_partition = {
            target: list(heapq.merge(*([i for i in rows if i.mode == mode] for _, rows in sorted(by_source.items())),
                                     key=lambda i: i.at))
            for target, by_source in per_source.items()
        }
        alerts += [to_event(change, ward_names.get(change.ward, change.ward), mode)
                   for change in replay(per_partition, config, partitions, mode=mode)]
    return alerts


async def _nothing_before(until: Mapping[int, int]) -> dict[int, dict[bytes | str, str]]:
    return {p: {} for p in until}  # the whole log is read from its start: nothing earlier to find


async def replay_log(settings: Settings, *, modes: tuple[str, ...] = (LIVE,),
                     config: TensionConfig | None = None) -> list[TensionLevelChanged]:
    """The alerts the workers raise for `modes` (live: the live alerts topic; exercise and test:
    the exercise one) for the incidents and calendar topics as they stand now."""
    catalog = TopicCatalog.from_settings(settings)
    incidents, calendar = catalog.name("incidents"), catalog.name("tension.calendar")
    log = await read_log(settings, [incidents, calendar])
    return replay_records(
        log, incidents_topic=incidents, calendar_topic=calendar,
        config=config or load_config(settings.tension_config_file),
        partitions=catalog.spec_of("tension.by_ward").partitions,
        ward_names={code: ward.name for code, ward in load_wards(settings.wards_file).items()},
        modes=modes,
    )


def wire_lines(alerts: list[TensionLevelChanged]) -> list[str]:
    """One alert per line, exactly as its record's value on the alerts topic (codec.encode)."""
    return [encode(alert).value.decode() for alert in alerts]
