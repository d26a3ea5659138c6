"""`muster run projector` start-up: the migration is the projector's only when its settings say so
(production runs `muster db migrate` as a job and gives the projector no owner URL)."""

from __future__ import annotations

import asyncio
import signal

import pytest
from pydantic import SecretStr

from services.projector import app
from services.shared.settings import Settings
from tests.support import free_port


class Projector:
    """What serve() asks of the projector: run it, stop it."""

    def __init__(self) -> None:
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1

    def stop(self) -> None:
        pass


@pytest.fixture
def no_owner(tmp_path) -> Settings:
    """Settings whose owner URL leads nowhere (nothing listens on the port)."""
    return Settings(home=tmp_path, database_url=SecretStr(f"postgresql://postgres@127.0.0.1:{free_port()}/muster"))


def _give_the_signals_back() -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # serve() took them for the projector
        loop.remove_signal_handler(sig)
    signal.signal(signal.SIGINT, signal.default_int_handler)


async def test_a_projector_told_not_to_migrate_never_touches_the_owner_url(no_owner):
    projector = Projector()
    settings = no_owner.model_copy(update={"projector_migrate_on_start": False})
    try:
        await asyncio.wait_for(app.serve(settings, projector), 5)
    finally:
        _give_the_signals_back()
    assert projector.runs == 1


async def test_by_default_it_migrates_first_and_waits_for_the_database(no_owner):
    projector = Projector()
    task = asyncio.create_task(app.serve(no_owner, projector))
    try:
        done, _ = await asyncio.wait({task}, timeout=1.5)
        assert not done and projector.runs == 0  # still waiting for the owner's database
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        _give_the_signals_back()
