"""What the tension stages share: the wiring app.py builds, and dead-lettering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from services.shared.deadletter import send_dead_letter
from services.shared.logging import get_logger
from services.shared.settings import Settings
from services.tension import metrics
from services.tension.config import TensionConfig
from services.tension.tables import TensionTables

SERVICE = "tension"
log = get_logger("muster.tension")


@dataclass
class Wiring:
    app: faust.App
    settings: Settings
    config: TensionConfig
    incidents_topic: str
    calendar_topic: str
    rekey_group: str
    by_ward: Any  # faust TopicT
    alerts: Any
    exercise_alerts: Any  # exercise and test alerts: never the live topic
    deadletter_topic: str
    tables: TensionTables
    ward_names: dict[str, str]
    declared_sources: int
    declared_calendar: int = 1


class FaustSender:
    """send_dead_letter's Sender over faust's producer."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None) -> Any:
        return await self.app.producer.send_and_wait(topic, key, value, None, None, headers)


async def dead_letter(w: Wiring, topic_id: str, message: Any, error: BaseException | str) -> None:
    """A faust message or an aiokafka record nobody can read, to the dead-letter topic."""
    await send_dead_letter(
        FaustSender(w.app), w.deadletter_topic, service=SERVICE, source_topic=message.topic,
        partition=message.partition, offset=message.offset, error=error, key=message.key,
        value=message.value, headers=message.headers,
    )
    metrics.DEAD_LETTERS.labels(topic_id).inc()
    log.warning("dead_letter", topic=message.topic, partition=message.partition, offset=message.offset,
                reason=str(error)[:300])
