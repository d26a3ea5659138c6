"""The tension processor's state: faust tables whose changelogs bring it back after a crash.

`wards`: ward code -> WardState. `clocks`: by-ward partition -> ClockState. Both live on
the partition of the by-ward topic that owns the ward, so one worker owns a ward. State is
written once per batch (not per report); the batch's offsets are acknowledged after it.
Exercise and test facts have their own state under keys prefixed with their mode
(`exercise:E05009336`, `exercise:0`), so they never mix with live state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import faust

from services.tension.state import LIVE, ClockState, WardState


class PinnedTable(faust.Table):
    """A table whose changelog partition the writer names: a batch spans partitions, so the
    "current event" faust would use is not the right one."""

    def put(self, key: str, value: bytes, partition: int) -> None:
        self._pins = getattr(self, "_pins", {})
        self._pins[key] = partition
        self[key] = value

    def partition_for_key(self, key):  # faust's signature
        pinned = getattr(self, "_pins", {}).get(key)
        return pinned if pinned is not None else super().partition_for_key(key)


@dataclass
class TensionTables:
    wards: PinnedTable
    clocks: PinnedTable
    # ward -> (the value object last written or read, its decoded state): a hit only while the
    # table still holds that very object, so a recovery from the changelog always re-reads.
    _decoded: dict = field(default_factory=dict)

    def clock(self, partition: int, mode: str = LIVE) -> ClockState:
        raw = self.clocks.get(_key(mode, str(partition)))
        return ClockState.loads(raw) if raw is not None else ClockState()

    def has_clock(self, partition: int, mode: str) -> bool:
        return _key(mode, str(partition)) in self.clocks

    def ward_states(self, codes, mode: str = LIVE) -> dict[str, WardState]:  # any iterable of codes
        out = {}
        for code in codes:
            key = _key(mode, code)
            raw = self.wards.get(key)
            if raw is None:
                continue
            cached = self._decoded.get(key)
            out[code] = cached[1] if cached is not None and cached[0] is raw else WardState.loads(raw)
        return out

    def save(self, partition: int, clock: ClockState, wards: dict[str, WardState], mode: str = LIVE) -> None:
        self.clocks.put(_key(mode, str(partition)), clock.dumps(), partition)
        for code, state in wards.items():
            key, blob = _key(mode, code), state.dumps()
            self.wards.put(key, blob, partition)
            self._decoded[key] = (blob, state)


def _key(mode: str, key: str) -> str:
    return key if mode == LIVE else f"{mode}:{key}"


def make_tables(app: faust.App, partitions: int) -> TensionTables:
    def table(name: str, meaning: str) -> PinnedTable:
        return app.tables.add(
            PinnedTable(
                app, name=name, beacon=app.tables.beacon, partitions=partitions, help=meaning,
                key_type=str, value_type=bytes,  # json keys, raw values (orjson from state.py)
            )
        )

    return TensionTables(
        wards=table("wards", "Ward code -> the ward's buckets, baseline and level."),
        clocks=table("clocks", "By-ward partition -> event-time clock of every incidents partition."),
    )
