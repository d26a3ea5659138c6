"""Coalesce concurrent single-item calls into one bulk call (group commit).

Concurrent requests each await `submit(item)`; one drain task hands every item queued so
far to the bulk function, so a thousand requests a second cost a few dozen round trips.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    def __init__(self, bulk: Callable[[list[T]], Awaitable[Sequence[R]]], max_size: int = 1000) -> None:
        self._bulk = bulk
        self._max_size = max_size
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max_size], self._pending[self._max_size :]
            try:
                results = await self._bulk([item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every waiter gets the failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
