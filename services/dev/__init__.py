"""Local infrastructure for development and tests: `muster dev up | down | status`."""

from __future__ import annotations

from services.dev.kafka import LocalKafka
from services.dev.postgres import LocalPostgres
from services.dev.procs import DevError
from services.shared.settings import Settings


def up(settings: Settings) -> list[str]:
    """Start (or reuse) both; check every prerequisite and port before starting either."""
    postgres, kafka = LocalPostgres(settings), LocalKafka(settings)
    kafka.preflight()
    postgres.preflight()
    return [postgres.up(), kafka.up()]


def down(settings: Settings) -> list[str]:
    return [LocalKafka(settings).down(), LocalPostgres(settings).down()]


def status(settings: Settings) -> list[str]:
    return [LocalKafka(settings).status(), LocalPostgres(settings).status()]


__all__ = ["DevError", "LocalKafka", "LocalPostgres", "down", "status", "up"]
