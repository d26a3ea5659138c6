"""The tension processor's state: faust tables whose changelogs bring it back after a crash.

`wards`: ward code -> WardState. `clocks`: by-ward partition -> ClockState. Both live on
the partition of the by-ward topic that owns the ward, so one worker owns a ward. State is
written once per batch (not per report); the batch's offsets are acknowledged after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import faust

from services.tension.state import ClockState, WardState


class PinnedTable(faust.Table):
    """A table whose changelog partition the writer names: a batch spans partitions, so the
    "current event" faust would use is not the right one."""

    def put(self, key: str, value: bytes, partition: int) -> None:
        self._pins = getattr(self, "_pins", {})
        self._pins[key] = partition
        self[key] = value

    def partition_for_key(self, key):  # noqa: ANN001, ANN201 - faust's signature
        pinned = getattr(self, "_pins", {}).get(key)
        return pinned if pinned is not None else super().partition_for_key(key)


@dataclass
class TensionTables:
    wards: PinnedTable
    clocks: PinnedTable
    # ward -> (the value object last written or read, its decoded state): a hit only while the
    # table still holds that very object, so a recovery from the changelog always re-reads.
    _decoded: dict = field(default_factory=dict)

    def clock(self, partition: int) -> ClockState:
        raw = self.clocks.get(str(partition))
        return ClockState.loads(raw) if raw is not None else ClockState()

    def ward_states(self, codes) -> dict[str, WardState]:  # noqa: ANN001 - any iterable of codes
        out = {}
        for code in codes:
            raw = self.wards.get(code)
            if raw is None:
                continue
            cached = self._decoded.get(code)
            out[code] = cached[1] if cached is not None and cached[0] is raw else WardState.loads(raw)
        return out

    def save(self, partition: int, clock: ClockState, wards: dict[str, WardState]) -> None:
        self.clocks.put(str(partition), clock.dumps(), partition)
        for code, state in wards.items():
            blob = state.dumps()
            self.wards.put(code, blob, partition)
            self._decoded[code] = (blob, state)

    def all_wards(self) -> dict[str, WardState]:
        return {code: WardState.loads(raw) for code, raw in self.wards.items()}


def make_tables(app: faust.App, partitions: int) -> TensionTables:
    def table(name: str, help: str) -> PinnedTable:
        return app.tables.add(
            PinnedTable(
                app, name=name, beacon=app.tables.beacon, partitions=partitions, help=help,
                key_type=str, value_type=bytes,  # json keys, raw values (orjson from state.py)
            )
        )

    return TensionTables(
        wards=table("wards", "Ward code -> the ward's buckets, baseline and level."),
        clocks=table("clocks", "By-ward partition -> event-time clock of every incidents partition."),
    )
