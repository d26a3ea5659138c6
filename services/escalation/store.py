"""The escalation processor's two adapters, as the incident agent uses them:

- `StateStore`: the incident states the batch writes, kept in memory and on their compacted
  changelog (what a restarted worker recovers them from). The real one is `ChangelogTable`,
  over the faust table `incident-state`; tests/fakes.py has a fake, and one contract suite
  runs against both (tests/contract/state_store.py).
- the sender is services.shared.stage.Sink (the processor runtime's FaustSink): every
  output (agency topics, control notices, corroboration candidates) and the changelog
  records go through it (its contract: tests/contract/sink.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol

from services.shared.stage import Sink


class StateStore(Protocol):
    def get(self, key: bytes) -> bytes | None:
        """The stored state of one incident (its JSON), None if none."""

    def items(self) -> Iterable[tuple[bytes, bytes]]: ...

    def __len__(self) -> int: ...

    async def write(self, states: Iterable[tuple[bytes, bytes]], partition: int) -> None:
        """Keep each (key, state) and send it to the changelog's `partition`; returns once the
        broker acknowledged every record (raises if one was not)."""

    async def remove(self, key: bytes, partition: int) -> None:
        """Drop one incident, with a tombstone on the changelog (acknowledged)."""


class ChangelogTable:
    """StateStore over a faust table with raw keys and values (`memory://`). The store is
    written directly and the changelog records sent in one go (what `table[key] = value`
    does, without faust's per-key send machinery, which cost a third of the worker's time);
    faust recovers the table from this changelog as from its own writes. (A persistent store
    would also need faust's persisted-offset callback.)"""

    def __init__(self, table: Any, sink: Sink) -> None:
        self.table, self.sink = table, sink
        self.changelog = table.changelog_topic.get_topic_name()

    def get(self, key: bytes) -> bytes | None:
        return self.table.get(key)

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        return self.table.items()

    def __len__(self) -> int:
        return len(self.table.data)

    async def write(self, states: Iterable[tuple[bytes, bytes]], partition: int) -> None:
        acks = []
        for key, value in states:
            self.table.data[key] = value
            acks.append(await self.sink.send(self.changelog, key, value, partition=partition))
        if acks:
            await asyncio.gather(*acks)

    async def remove(self, key: bytes, partition: int) -> None:
        self.table.data.pop(key, None)
        await (await self.sink.send(self.changelog, key, None, partition=partition))
