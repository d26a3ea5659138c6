"""`muster db migrate` is idempotent and records what it applied."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.shared.settings import REPO_ROOT

pytestmark = [pytest.mark.postgres]


def _migrate(dsn: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUSTER_DATABASE_URL": dsn}
    return subprocess.run([sys.executable, "-m", "services.cli", "db", "migrate"], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)


async def test_migrate_applies_once_then_says_up_to_date(world):
    import asyncpg

    conn = await asyncpg.connect(world.dsn)
    try:
        await conn.execute("drop table incidents, incident_events, escalations, ward_tension, ward_tension_history,"
                           " tension_calendar, casework_cases, casework_alerts, projector_offsets, access_audit, schema_migrations")
    finally:
        await conn.close()
    first, second = _migrate(world.dsn), _migrate(world.dsn)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["applied 0001_status_store", "applied 0002_query_access",
                                     "applied 0003_timeline_write_path", "applied 0004_service_roles",
                                     "applied 0005_tension_calendar",
                                     "applied 0006_people_need_a_reason", "applied 0007_casework",
                                     "applied 0008_people_keys"]
    assert second.stdout.strip() == "db: up to date"
    versions = await world.fetch("select version, name from schema_migrations")
    assert sorted(tuple(r) for r in versions) == [(1, "0001_status_store"), (2, "0002_query_access"),
                                                            (3, "0003_timeline_write_path"), (4, "0004_service_roles"),
                                                            (5, "0005_tension_calendar"),
                                                            (6, "0006_people_need_a_reason"), (7, "0007_casework"),
                                                            (8, "0008_people_keys")]
