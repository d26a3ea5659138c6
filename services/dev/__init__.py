"""Local infrastructure for development and tests: `muster dev up | down | status`."""

from __future__ import annotations

import asyncio

from services.dev.kafka import SUPER_USER, LocalKafka
from services.dev.postgres import LocalPostgres
from services.dev.procs import DevError
from services.shared.settings import Settings


def up(settings: Settings, *, topics: bool = True) -> list[str]:
    """Start (or reuse) both; check every prerequisite and port before starting either. Then, unless
    `topics` is false (the tests' fixtures apply their own, under their prefix), the topics and ACLs of
    topics.yaml, so every service can start."""
    postgres, kafka = LocalPostgres(settings), LocalKafka(settings)
    kafka.preflight()
    postgres.preflight()
    lines = [postgres.up(), kafka.up()]
    if topics:
        lines += apply_topics_and_acls(settings)
    return lines


def as_admin(settings: Settings) -> Settings:
    """The settings of the administration tooling: the super user's local credentials, unless a SASL
    user name is configured (production: the administrator's own)."""
    return settings if settings.kafka_sasl_username else settings.model_copy(update={"kafka_principal": SUPER_USER})


def apply_topics_and_acls(settings: Settings) -> list[str]:
    """`muster topics apply` in two summary lines: topics, then ACLs (skipped on a PLAINTEXT broker)."""
    from services.shared.kafka import apply_topics, make_admin
    from services.shared.kafka_security import apply_acls
    from services.shared.topics import TopicCatalog

    settings = as_admin(settings)
    catalog = TopicCatalog.from_settings(settings)

    async def topics() -> list[str]:
        admin = make_admin(settings)
        await admin.start()
        try:
            return await apply_topics(admin, catalog)
        finally:
            await admin.close()

    changes = asyncio.run(topics())
    acls = apply_acls(settings, catalog)
    return [f"topics: {len(changes)} changes applied" if changes else "topics: up to date",
            acls[0] if acls and acls[0].startswith("acls: skipped") else
            f"acls: {len(acls)} changes applied" if acls else "acls: up to date"]


def down(settings: Settings) -> list[str]:
    return [LocalKafka(settings).down(), LocalPostgres(settings).down()]


def status(settings: Settings) -> list[str]:
    return [LocalKafka(settings).status(), LocalPostgres(settings).status()]


__all__ = ["DevError", "LocalKafka", "LocalPostgres", "apply_topics_and_acls", "as_admin", "down", "status", "up"]
