"""Regression (issue 17, found by `muster chaos`): a projector started while PostgreSQL is down
(restarted just before the database crashed) died in its start-up migration and stayed dead.
It now waits for the database and then projects. The outage is a Toxiproxy proxy in front of
the real database, disabled, then enabled."""

from __future__ import annotations

import asyncio
import signal
from urllib.parse import urlsplit, urlunsplit

import pytest

from services.chaos.cluster import Ports, Toxiproxy, toxiproxy_binary
from services.projector.app import serve
from services.projector.service import Projector
from tests.support import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.slow]


async def test_a_projector_started_while_the_database_is_down_waits_for_it(world, tmp_path):
    ports = Ports()
    proxy_port, api_port = ports.one(), ports.one()
    toxiproxy = Toxiproxy(toxiproxy_binary(world.settings), api_port, tmp_path / "toxiproxy.log")
    toxiproxy.start()
    try:
        url = urlsplit(world.dsn)
        toxiproxy.proxy("db", proxy_port, url.port or 5432)
        toxiproxy.enable("db", False)  # the database is unreachable when the projector starts
        dsn = urlunsplit((url.scheme, f"{url.username}@127.0.0.1:{proxy_port}", url.path, url.query, url.fragment))
        settings = world.settings.model_copy(update={"database_url": type(world.settings.database_url)(dsn)})
        projector = Projector(settings)
        task = asyncio.create_task(serve(settings, projector))
        await asyncio.sleep(3)
        assert not task.done(), task.exception() if task.done() else None  # still trying, not dead
        toxiproxy.enable("db", True)
        await wait_until(lambda: projector.ready(), 60, interval=0.2, what="the projector to start projecting")
        projector.stop()
        await asyncio.wait_for(task, 30)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):  # serve() took them for the projector
            asyncio.get_running_loop().remove_signal_handler(sig)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        toxiproxy.stop()
