"""What the stream processors' faust tables share."""

from __future__ import annotations

import faust


class PinnedTable(faust.Table):
    """A table whose changelog partition the writer names: a batch spans partitions, so the
    "current event" faust would use is not the right one."""

    def put(self, key: str, value: bytes, partition: int) -> None:
        self._pins = getattr(self, "_pins", {})
        self._pins[key] = partition
        self[key] = value

    def partition_for_key(self, key):
        pinned = getattr(self, "_pins", {}).get(key)
        return pinned if pinned is not None else super().partition_for_key(key)
