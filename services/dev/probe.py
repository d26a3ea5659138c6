"""Readiness probes that speak the real protocols (a metadata request, a SQL round trip)."""

from __future__ import annotations

import asyncio

from services.shared.settings import Settings


def kafka_metadata_ok(settings: Settings, timeout: float = 3.0) -> bool:
    async def probe() -> bool:
        from aiokafka import AIOKafkaClient

        client = AIOKafkaClient(**settings.kafka_client_options(), request_timeout_ms=int(timeout * 1000))
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
            metadata = await asyncio.wait_for(client.fetch_all_metadata(), timeout)
            return bool(metadata.brokers())
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False
        finally:
            await client.close()

    return asyncio.run(probe())


def postgres_ok(dsn: str, timeout: float = 3.0) -> bool:
    async def probe() -> bool:
        import asyncpg

        try:
            conn = await asyncpg.connect(dsn, timeout=timeout)
        except Exception:  # noqa: BLE001
            return False
        try:
            return await conn.fetchval("select 1") == 1
        finally:
            await conn.close()

    return asyncio.run(probe())
