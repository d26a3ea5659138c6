"""topics.yaml, loaded and validated: the one place topic names come from.

Code asks for a topic by its id (`catalog.name("incidents")`); it never spells a name.
A topic with an `app` is internal to that processor's faust app: its name is
`<prefix><app id>-<name>` (`TopicCatalog.from_settings` knows the app ids).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.shared import yamlfile


class TopicsFileError(yamlfile.ConfigFileError):
    """topics.yaml is missing or invalid; the message names the topic and the field."""


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    replication_factor: int = Field(ge=1)
    configs: dict[str, str] = {}


class PrincipalSpec(BaseModel):
    """A Kafka principal (SASL user) that topics' producers and readers name."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    description: str
    super_user: bool = False
    group_prefix: str | None = Field(None, pattern=r"^[a-zA-Z0-9._-]{1,200}$")
    internal_topics_prefix: str | None = Field(None, pattern=r"^[a-zA-Z0-9._-]{1,200}$")


# In `readers`: the partner principal of the topic's own agency (`muster partners add <agency>`).
PARTNER = "partner"
# In the contract (schemas/, asyncapi.yaml): producers outside Muster, who write through intake.
PARTNER_SYSTEMS = "partner systems"


class TopicSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    name: str = Field(pattern=r"^[a-zA-Z0-9._-]{1,200}$")
    description: str
    partitions: int = Field(ge=1, le=1000)
    key: str
    cleanup_policy: Literal["delete", "compact", "compact,delete"]
    retention_ms: int = Field(ge=-1)
    mode: Literal["live", "exercise", "test", "any"]
    agency: str | None = None
    event_types: tuple[str, ...]
    producers: tuple[str, ...]
    readers: tuple[str, ...]
    # Partner systems send these facts in the input form, through intake (never straight to the topic).
    partner_input: bool = False
    configs: dict[str, str] = {}
    app: Literal["escalation", "tension"] | None = Field(
        None, description="The processor whose faust app owns this internal topic; named <app id>-<name>.")
    co_partitioned_with: str | None = Field(
        None, description="Id of a topic whose partition numbers mean the same: the counts must be equal.")

    @property
    def internal(self) -> bool:
        """Internal to one processor: no partner reads it, no contract event is on it."""
        return self.app is not None


    @property
    def contract_producers(self) -> tuple[str, ...]:
        """Who writes the topic's events, as the contract names them: the principals, and the
        partner systems whose input intake checks and publishes."""
        return (*self.producers, PARTNER_SYSTEMS) if self.partner_input else self.producers

    @property
    def contract_readers(self) -> tuple[str, ...]:
        """Who reads the topic, as the contract names them: `partner` is the topic's agency."""
        return tuple(self.agency if who == PARTNER and self.agency else who for who in self.readers)


APPS = ("escalation", "tension")


class TopicsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: Literal[1]
    profiles: dict[str, Profile]
    principals: dict[str, PrincipalSpec]
    topics: tuple[TopicSpec, ...]

    @model_validator(mode="after")
    def _principals_declared(self) -> "TopicsFile":
        for t in self.topics:
            for field in ("producers", "readers"):
                for who in getattr(t, field):
                    if who == PARTNER and field == "readers":
                        if not t.agency:
                            raise ValueError(f"topic {t.id!r} field readers: 'partner' needs the topic's agency")
                    elif who not in self.principals:
                        raise ValueError(
                            f"topic {t.id!r} field {field}: {who!r} is not a principal of topics.yaml "
                            f"(have {', '.join(sorted(self.principals))})"
                        )
                    elif self.principals[who].super_user:
                        raise ValueError(f"topic {t.id!r} field {field}: the super user {who!r} needs no grant")
        return self

    @model_validator(mode="after")
    def _unique(self) -> "TopicsFile":
        for attr, value_of in (("id", lambda t: t.id), ("name", lambda t: (t.app, t.name))):
            seen: set = set()
            for t in self.topics:
                value = value_of(t)
                if value in seen:
                    raise ValueError(f"topic {attr} {getattr(t, attr)!r} is declared twice")
                seen.add(value)
        return self

    @model_validator(mode="after")
    def _co_partitioned(self) -> "TopicsFile":
        by_id = {t.id: t for t in self.topics}
        for t in self.topics:
            if t.co_partitioned_with is None:
                continue
            other = by_id.get(t.co_partitioned_with)
            if other is None:
                raise ValueError(f"topic {t.id!r} field co_partitioned_with: no topic with id {t.co_partitioned_with!r}")
            if other.partitions != t.partitions:
                raise ValueError(f"topic {t.id!r} field partitions: {t.partitions}, but it is co-partitioned with "
                                 f"{other.id!r}, which has {other.partitions}")
        return self


class TopicCatalog:
    """The topics of one profile, with an optional name prefix (tests isolate runs with it)."""

    def __init__(self, spec: TopicsFile, profile: str, prefix: str = "", apps: Mapping[str, str] | None = None) -> None:
        if profile not in spec.profiles:
            raise TopicsFileError(f"topics.yaml: profile {profile!r} is not declared (have {sorted(spec.profiles)})")
        self.spec = spec
        self.profile_name = profile
        self.profile = spec.profiles[profile]
        self.prefix = prefix
        # app -> its faust app id, unprefixed (the settings' defaults unless told otherwise)
        self.apps = {app: f"muster-{app}" for app in APPS} | dict(apps or {})

    @classmethod
    def load(cls, path: Path, profile: str = "local", prefix: str = "",
             apps: Mapping[str, str] | None = None) -> "TopicCatalog":
        return cls(load_topics_file(path), profile, prefix, apps)

    @classmethod
    def from_settings(cls, settings) -> "TopicCatalog":  # Settings, kept import-light
        apps = {app: getattr(settings, f"{app}_app_id") for app in APPS}
        return cls.load(settings.topics_file, settings.topics_profile, settings.topic_prefix, apps)

    @cached_property
    def _by_id(self) -> dict[str, TopicSpec]:
        return {t.id: t for t in self.spec.topics}

    def __iter__(self):
        return iter(self.spec.topics)

    def spec_of(self, topic_id: str) -> TopicSpec:
        try:
            return self._by_id[topic_id]
        except KeyError:
            raise KeyError(f"no topic with id {topic_id!r} in topics.yaml") from None

    def name(self, topic_id: str) -> str:
        return self.name_of(self.spec_of(topic_id))

    def name_of(self, topic: TopicSpec) -> str:
        """The topic's full name on the cluster: prefixed, and under its app's id if internal."""
        if topic.app is not None:
            return f"{self.prefix}{self.apps[topic.app]}-{topic.name}"
        return self.prefix + topic.name

    def id_of(self, name: str) -> str:
        """The id of the topic with this full name; the name itself for a topic not declared."""
        for t in self.spec.topics:
            if self.name_of(t) == name:
                return t.id
        return name

    def names(self) -> list[str]:
        return [self.name_of(t) for t in self.spec.topics]

    def of_app(self, app: str) -> list[TopicSpec]:
        """The internal topics of one processor."""
        return [t for t in self.spec.topics if t.app == app]

    def carries(self) -> dict[str, frozenset[str]]:
        """Each (prefixed) topic name with the event types topics.yaml says it carries."""
        return {self.prefix + t.name: frozenset(t.event_types) for t in self.spec.topics}

    def escalation_topic(self, agency: str | None, *, exercise: bool = False, mode: str | None = None) -> str:
        """The escalation topic for an agency (None: the all-agencies topic) of a mode: `live`,
        `exercise` or `test` (test traffic has topics of its own, read by no partner).
        `exercise=True` is the older spelling of mode="exercise"."""
        mode = mode or ("exercise" if exercise else "live")
        for t in self.spec.topics:
            if t.id.startswith("escalations.") and t.mode == mode and t.agency == agency:
                return self.prefix + t.name
        raise KeyError(f"no {mode} escalation topic for agency {agency!r} in topics.yaml")

    def agencies(self) -> list[str]:
        return sorted({t.agency for t in self.spec.topics if t.agency})

    def replication_factor(self, topic: TopicSpec) -> int:
        return self.profile.replication_factor

    def configs(self, topic: TopicSpec) -> dict[str, str]:
        """The broker configs a topic must have: profile values, then the topic's own."""
        configs = {
            "cleanup.policy": topic.cleanup_policy,
            "retention.ms": str(topic.retention_ms),
            **self.profile.configs,
            **topic.configs,
        }
        return configs


def load_topics_file(path: Path) -> TopicsFile:
    return yamlfile.load(TopicsFile, path, what="topics file", setting="MUSTER_TOPICS_FILE", items={"topics": "topic"},
                         error=TopicsFileError)
