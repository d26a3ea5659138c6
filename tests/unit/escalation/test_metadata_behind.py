"""A table whose changelog the worker's group metadata does not know yet (a topic created just
before the worker joined: a chaos run's first seconds) makes faust refuse every write to it
(PartitionsMismatch, "has 0 partitions") until the metadata is refreshed, by default five
minutes later. The worker refreshes it and tries the record again: a corroboration candidate
dead-lettered then left its report without a verdict, never escalated, for good."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from faust.exceptions import PartitionsMismatch

from services.escalation import agents
from services.escalation.app import build
from services.shared.settings import Settings
from tests.fakes import FakeStateStore, RecordingSink

pytestmark = pytest.mark.unit


@dataclass
class Msg:
    topic: str = "muster-escalation-corroboration-candidates"
    partition: int = 1
    offset: int = 1
    key: bytes = b"live:fire"
    value: bytes = b"{}"
    headers: tuple = ()


class Metadata:
    """The worker's view of the changelog: unknown until refreshed."""

    def __init__(self, known: bool) -> None:
        self.known, self.refreshes = known, 0

    def unknown(self, _app, _topic) -> bool:
        return not self.known

    async def refresh(self, _app) -> None:
        self.refreshes += 1
        self.known = True


@pytest.fixture
def worker(tmp_path, monkeypatch):
    escalation = build(Settings(home=tmp_path))
    escalation.sink, escalation.store = RecordingSink(), FakeStateStore()
    monkeypatch.setattr(agents, "RETRIES", (0.0, 0.0, 0.0))
    monkeypatch.setattr(agents, "METADATA_WAIT", 0.0)
    return escalation


def handler(metadata: Metadata, done: list):
    async def handle(msg) -> None:
        if not metadata.known:
            raise PartitionsMismatch("... has 0 partitions")
        done.append(msg.offset)
    return handle


def install(monkeypatch, metadata: Metadata) -> None:
    monkeypatch.setattr(agents, "changelog_unknown", metadata.unknown)
    monkeypatch.setattr(agents, "refresh_metadata", metadata.refresh)


async def test_a_record_met_by_a_changelog_the_worker_does_not_know_yet_is_processed_not_dead_lettered(
        worker, monkeypatch):
    metadata, done = Metadata(known=False), []
    install(monkeypatch, metadata)
    await worker._guarded(Msg(), handler(metadata, done), "escalation.candidates")
    assert done == [1] and metadata.refreshes == 1
    assert worker.sink.dead == []


async def test_a_real_partition_mismatch_is_still_retried_then_dead_lettered(worker, monkeypatch):
    metadata = Metadata(known=True)
    install(monkeypatch, metadata)

    async def mismatched(_msg) -> None:
        raise PartitionsMismatch("... has 6 partitions, but the changelog topic ... has 3 partitions")
    await worker._guarded(Msg(), mismatched, "escalation.candidates")
    assert len(worker.sink.dead) == 1 and metadata.refreshes == 0
