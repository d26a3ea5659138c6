"""Consumer lag of a faust processor, per consumer group, topic and partition.

faust's Monitor hears every committed offset and every partition's end offset (high
watermark) of the partitions this worker consumes; LagMonitor turns the two into the gauge
muster_<service>_consumer_lag_records{group, topic, partition} (records not yet committed).
Each worker reports only its own partitions, so the group's lag is the sum (or the max per
partition) over its workers.
"""

from __future__ import annotations

from faust.sensors.monitor import Monitor
from prometheus_client import REGISTRY, CollectorRegistry, Gauge


def consumer_lag_gauge(service: str, registry: CollectorRegistry = REGISTRY) -> Gauge:
    return Gauge(
        f"muster_{service}_consumer_lag_records",
        "Records on the partition after the consumer group's committed offset (end offset minus committed).",
        ["group", "topic", "partition"],
        registry=registry,
    )


class LagMonitor(Monitor):
    """A faust Monitor that also keeps the consumer lag gauge up to date."""

    def __init__(self, gauge: Gauge, group: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gauge = gauge
        self.group = group

    def on_tp_commit(self, tp_offsets) -> None:
        super().on_tp_commit(tp_offsets)
        for tp in tp_offsets:
            self._update(tp)

    def track_tp_end_offset(self, tp, offset: int) -> None:
        super().track_tp_end_offset(tp, offset)
        self._update(tp)

    def on_rebalance_start(self, app):  # faust's signature
        """Partitions may move to another worker: forget them, the new owner reports them."""
        self.gauge.clear()
        self.tp_committed_offsets.clear()
        self.tp_end_offsets.clear()
        return super().on_rebalance_start(app)

    def _update(self, tp) -> None:
        committed = self.tp_committed_offsets.get(tp)
        end = self.tp_end_offsets.get(tp)
        if committed is None or end is None:
            return  # not a partition this group commits (a changelog read during recovery)
        self.gauge.labels(self.group, tp.topic, str(tp.partition)).set(max(0, end - committed))
