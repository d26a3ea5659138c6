"""The published contract, as a partner reads it: topics.yaml, schemas/*.json, the status
store's documented columns. Nothing here comes from the services' code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, FormatChecker

# docs/projector.md: an incident's status never moves to a lower rank (resolved, unfounded and
# false_alarm share one; the later occurred_at wins between them).
STATUS_RANK = {"open": 0, "acknowledged": 1, "dispatched": 2, "on_scene": 3, "contained": 4,
               "resolved": 5, "unfounded": 5, "false_alarm": 5, "closed": 6}
TERMINAL = frozenset({"resolved", "closed", "unfounded", "false_alarm"})
# The facts that stop an acknowledgement deadline (docs/escalation.md).
ACKNOWLEDGING = frozenset({"IncidentAcknowledged", "ResponderDispatched", "ResponderArrived"})
DEADLINE_RULE = "acknowledgement-deadline"


@dataclass(frozen=True)
class TopicSpec:
    id: str
    name: str
    partitions: int
    mode: str
    agency: str | None
    event_types: tuple[str, ...]
    readers: tuple[str, ...]


class Contract:
    def __init__(self, topics_file: Path, schemas_dir: Path, prefix: str = "") -> None:
        raw = yaml.safe_load(topics_file.read_text())
        self.prefix = prefix
        self.topics = {
            t["id"]: TopicSpec(t["id"], prefix + t["name"], int(t["partitions"]), t.get("mode", "any"),
                               t.get("agency"), tuple(t.get("event_types", ())), tuple(t.get("readers", ())))
            for t in raw["topics"]
        }
        # schemas/index.json: a record of event_type T and schema_version N has index[T][N].schema.
        index = json.loads((schemas_dir / "index.json").read_text())["event_types"]
        self.validators: dict[tuple[str, int], Draft202012Validator] = {
            (event_type, int(version)): Draft202012Validator(json.loads((schemas_dir / entry["schema"]).read_text()),
                                                             format_checker=FormatChecker())
            for event_type, versions in index.items() for version, entry in versions.items()
        }

    def topic(self, topic_id: str) -> TopicSpec:
        return self.topics[topic_id]

    def escalation_topics(self, mode: str | None = None) -> list[TopicSpec]:
        return [t for t in self.topics.values() if "EscalationRaised" in t.event_types and (mode is None or t.mode == mode)]

    def live_topics(self) -> list[TopicSpec]:
        return [t for t in self.topics.values() if t.mode == "live"]

    def all_topic(self, mode: str) -> TopicSpec:
        """The every-agency escalation topic of `live` or `exercise`."""
        return next(t for t in self.escalation_topics(mode) if t.agency is None)

    def readers_of(self, topic_id: str) -> tuple[str, ...]:
        """The processors that read a topic (topics.yaml's readers that are Muster services)."""
        return tuple(r for r in self.topics[topic_id].readers if r in ("escalation", "tension", "projector"))

    def superseded(self, event_type: str, newer: str | None) -> bool:
        """A record marked `newer_schema_version: N` is an older copy of a fact also published in
        version N (docs/partners.md): a reader that knows version N skips it."""
        return newer is not None and newer.isdigit() and (event_type, int(newer)) in self.validators

    def decode(self, value: bytes | None) -> dict | None:
        """A record's event if it is valid JSON of a published schema, else None (poison)."""
        if value is None:
            return None
        try:
            event = json.loads(value)
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(event, dict):
            return None
        validator = self.validators.get((str(event.get("event_type")), event.get("schema_version", 1)))
        if validator is None or not validator.is_valid(event):
            return None
        return event
