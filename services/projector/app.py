"""The projector's one wiring point: `muster run projector` calls run(settings)."""

from __future__ import annotations

import asyncio
import signal

import asyncpg

from services.projector import schema
from services.projector.service import TRANSIENT, Projector
from services.shared.logging import configure_logging, get_logger
from services.shared.metrics import serve_metrics
from services.shared.runtime import keep_memory_trimmed, tune_gc
from services.shared.settings import Settings

log = get_logger("muster.projector")


async def migrate(settings: Settings) -> list[str]:
    """Apply the pending migrations to the database of `settings`."""
    conn = await asyncpg.connect(settings.database_url.get_secret_value(), timeout=10)
    try:
        return await schema.migrate(conn)
    finally:
        await conn.close()


async def migrate_when_up(settings: Settings) -> list[str]:
    """`migrate`, retried while the database is unavailable (found by `muster chaos`: a projector
    restarted just before PostgreSQL went down died in its start-up migration, for good)."""
    attempt = 0
    while True:
        try:
            return await migrate(settings)
        except TRANSIENT as exc:
            log.warning("database unavailable, retrying", what="migrate", error_class=type(exc).__name__,
                        attempt=attempt)
            await asyncio.sleep(min(settings.projector_retry_max_seconds, 0.1 * 2**attempt))
            attempt += 1


async def serve(settings: Settings, projector: Projector | None = None) -> None:
    """Migrate (unless MUSTER_PROJECTOR_MIGRATE_ON_START is false: production runs the migrations
    as a job and gives the projector no owner URL), then project until SIGTERM or SIGINT; the
    batch in hand is finished first."""
    if settings.projector_migrate_on_start:
        applied = await migrate_when_up(settings)
        if applied:
            log.info("migrations applied", migrations=applied)
    projector = projector or Projector(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, projector.stop)
    await projector.run()


def run(settings: Settings) -> None:
    settings = settings.as_principal("projector")  # its own Kafka principal (topics.yaml), never the admin
    configure_logging(settings.log_level, settings.log_format)
    tune_gc()
    keep_memory_trimmed()
    projector = Projector(settings)
    if settings.projector_metrics_port:
        serve_metrics(settings.projector_metrics_port, ready=projector.ready)
    asyncio.run(serve(settings, projector))

