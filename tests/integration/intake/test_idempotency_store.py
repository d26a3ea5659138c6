"""The real idempotency store (PostgreSQL) passes the store's contract, as the fake does."""

import asyncio

import asyncpg
import pytest

from services.intake.registry import IncidentRecord
from services.intake.repository import IdempotencyStore, Written
from tests.contract.idempotency_store import CalendarContract, IdempotencyStoreContract, IncidentClaimContract, RegistryContract, accepted
from tests.integration.intake.conftest import intake_dsn

pytestmark = pytest.mark.postgres


class TestPostgresIdempotencyStore(IdempotencyStoreContract, RegistryContract, IncidentClaimContract, CalendarContract):
    @pytest.fixture(autouse=True)
    async def _database(self, test_settings, database):
        self.dsn = intake_dsn(test_settings)
        self.stores: list[IdempotencyStore] = []
        yield
        for store in self.stores:
            await store.stop()

    async def make_store(self) -> IdempotencyStore:
        store = IdempotencyStore(self.dsn, timeout_s=5.0)
        await store.start()
        self.stores.append(store)
        return store


def _report() -> Written:
    one = accepted(event_type="IncidentReported")
    return Written(one, report=IncidentRecord(one.incident_id, "op-17", "council", "control_room", "op-17", (),
                                              "live", "OFFICIAL"))


async def test_a_single_record_the_database_lost_is_named_by_confirm_and_the_rest_once_durable(test_settings, database):
    """`record` commits without waiting for the WAL flush; a restart before the flush loses the commit
    (here: its rows deleted behind the store's back, as that restart leaves them). `confirm` names it,
    and returns only once the WAL is flushed past the records it found."""
    dsn = intake_dsn(test_settings)
    store = IdempotencyStore(dsn, timeout_s=5.0)
    await store.start()
    conn = await asyncpg.connect(dsn)
    try:
        kept, lost = _report(), _report()
        await asyncio.gather(store.record(kept), store.record(lost))
        committed = await conn.fetchval("select pg_current_wal_insert_lsn()")  # past both commits
        await conn.execute("delete from intake.accepted_events where event_id = $1", lost.accepted.event_id)
        await conn.execute("delete from intake.incidents where incident_id = $1", lost.report.incident_id)
        assert await store.confirm([kept, lost]) == [lost]
        assert await conn.fetchval("select pg_current_wal_flush_lsn()") >= committed
        assert await store.incident(kept.report.incident_id) == kept.report
        await store.record_many([lost])  # written again, durable before it returns
        assert await store.confirm([kept, lost]) == []
        assert await store.incident(lost.report.incident_id) == lost.report
    finally:
        await conn.close()
        await store.stop()
