"""How long the escalation processor keeps an incident it is done with, and in what form (pure).

An incident is *finished* for escalation once it can never produce another output: its
status is terminal (resolved, closed, unfounded, false alarm) and its stand-down, if it
had anything to stand down, has been produced; or it is a stub that never had a report
(late facts or a corroboration notice for an incident already released, or facts whose
report never came). A finished incident is kept *compactly* (`compact`): what a late fact
or a replay still needs (its source partition and offset for replay detection, its mode,
status and the escalations raised, by id, so nothing is raised twice) and nothing else (no
rule set, location, casualties, hazards or group members). `closed_at` records when, by the
worker's clock, it became finished; `MUSTER_ESCALATION_CLOSED_RETENTION_SECONDS` later it is
*released*: deleted from the table with a tombstone on the changelog, so the compacted
changelog holds no more than the table and a restart rebuilds the same bounded state.

A late fact for a released incident makes a stub (no category, so it cannot escalate),
which is finished at once and released after the same time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.escalation.state import IncidentState

# What a finished incident keeps; every other field goes back to its default.
KEPT = frozenset({
    "incident_id", "partition", "offset", "mode", "classification", "category", "severity", "status",
    "status_at", "reported_at", "last_fact_at", "acknowledged", "linked_to", "raised", "stood_down", "closed_at",
})
_DROPPED = tuple(f for f in IncidentState.model_fields if f not in KEPT)
_DEFAULTS = {f: IncidentState.model_fields[f].get_default(call_default_factory=True) for f in _DROPPED}


def finished(s: IncidentState) -> bool:
    """Can never produce another output (see the module's docstring)."""
    if s.category is None:
        return s.next_deadline is None
    return s.status.terminal and (s.stood_down or not s.raised)


def settle(s: IncidentState, now: datetime, partition: int | None = None) -> IncidentState:
    """The state to store: a finished incident compacted, stamped with when it finished (once;
    a late fact never extends its retention); any other state as it is."""
    if not finished(s):
        return s if s.closed_at is None else s.model_copy(update={"closed_at": None})
    update: dict = {f: _DEFAULTS[f] for f in _DROPPED if getattr(s, f) != _DEFAULTS[f]}
    if s.closed_at is None:
        update["closed_at"] = now
    if s.partition is None and partition is not None:
        update["partition"] = partition
    return s.model_copy(update=update) if update else s


def release_at(s: IncidentState, keep: timedelta) -> datetime | None:
    """When this state is released from the table (None: it is kept)."""
    if s.closed_at is None or not finished(s):
        return None
    return s.closed_at + keep


def releasable(s: IncidentState | None, now: datetime, keep: timedelta) -> bool:
    at = None if s is None else release_at(s, keep)
    return at is not None and at <= now


def due_releases(expiry: dict[bytes, tuple[datetime, int]], sent: dict[bytes, float],
                 now: datetime) -> list[tuple[bytes, int]]:
    """(key, partition) of the incidents whose release notice is due and not already on its way.
    Each is sent once: re-sending every few seconds while the agent lags behind multiplied the
    notices by the lag (found by the soak: the worker's lag grew without end at 35 events/s)."""
    return [(k, p) for k, (at, p) in expiry.items() if at <= now and k not in sent]
