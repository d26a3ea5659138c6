"""The tension processor's state: faust tables whose changelogs bring it back after a crash.

`wards`: ward code -> WardState. `clocks`: by-ward partition -> ClockState. Both live on
the partition of the by-ward topic that owns the ward, so one worker owns a ward. State is
written once per batch (not per report), and only the wards whose state changed in it
(`changed_blobs`): a ward the batch left as it was is not written to the table or its changelog
again. The batch's offsets are acknowledged after it.
Exercise and test facts have their own state under keys prefixed with their mode
(`exercise:E05009336`, `exercise:0`), so they never mix with live state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import faust

from services.shared.tables import PinnedTable
from services.tension.state import LIVE, ClockState, WardState


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
        """The partition's clock, and each ward whose state the batch changed (one table write and
        one changelog record each); an unchanged ward keeps its value and its decoded state."""
        self.clocks.put(_key(mode, str(partition)), clock.dumps(), partition)
        last = {code: self.wards.get(_key(mode, code)) for code in wards}
        changed = changed_blobs(wards, last)
        for code, state in wards.items():
            key = _key(mode, code)
            blob = changed.get(code)
            if blob is not None:
                self.wards.put(key, blob, partition)
                self._decoded[key] = (blob, state)
            elif last[code] is not None:
                self._decoded[key] = (last[code], state)


def changed_blobs(wards: dict[str, WardState], last: dict[str, bytes | None]) -> dict[str, bytes]:
    """Ward code -> its serialised state, for the wards whose state differs from `last` (the value
    last written, None when never written)."""
    out = {}
    for code, state in wards.items():
        blob = state.dumps()
        if blob != last.get(code):
            out[code] = blob
    return out


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
