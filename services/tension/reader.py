"""Read every TensionLevelChanged on an alerts topic (for the weekly return)."""

from __future__ import annotations

from services.shared.events import TensionLevelChanged
from services.shared.kafka import read_events
from services.shared.settings import Settings


async def read_alerts(settings: Settings, topic: str) -> list[TensionLevelChanged]:
    alerts: dict[str, TensionLevelChanged] = {}
    for event in await read_events(settings, [topic]):
        if isinstance(event, TensionLevelChanged):
            alerts[str(event.event_id)] = event  # a replayed alert has the same id
    return list(alerts.values())
