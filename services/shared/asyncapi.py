"""`asyncapi.yaml` (AsyncAPI 3.0), generated from topics.yaml and the event models.

One channel per topic of topics.yaml that carries contract events, with its Kafka binding;
one message per event type and schema_version, whose payload is the schema file in
`schemas/` and whose headers, key and correlation id are spelled out; one operation per
role and topic (`producers` send, `readers` receive). Written by `muster contract export`,
checked for drift by a test, validated by the AsyncAPI CLI in `make test`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import yaml

from services.shared import events as ev
from services.shared.schemas import (
    EXTERNAL_PRODUCERS,
    RELEASED_DIR,
    HEADERS_FILE,
    consumer_filename,
    contract_models,
    externally_produced,
    input_filename,
    key_filename,
)
from services.shared.settings import REPO_ROOT
from services.shared.topics import TopicSpec, TopicsFile, load_topics_file

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING = "0.5.0"
CONTRACT_TITLE = "Muster event contract"

# Who a partner is: the role names of topics.yaml that are agencies outside Muster's services.
MUSTER_SERVICES = frozenset({"intake", "escalation", "tension", "casework", "projector", "control_room"})


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-")


def message_id(event_type: str, version: int, *, input_form: bool = False) -> str:
    return f"{event_type}.v{version}" + (".input" if input_form else "")


def describe(levels: dict[int, tuple[str, list[str]]], release: str) -> str:
    """The contract's description: what every partner needs before the channels."""
    level_rows = "\n".join(f"| {n} | {name} | {', '.join(agencies)} |" for n, (name, agencies) in sorted(levels.items()))
    return f"""Every fact Muster publishes on Kafka, for partner systems in any language. Release {release}.
The evolution policy is docs/contract.md; the partner's guide, with a runnable consumer, is docs/partners.md.

## Records
- **Value**: one JSON object (UTF-8), the message's payload schema. Every field is always present; a
  field that may be null says so. Ignore fields you do not know: a field may be added within a schema_version.
- **Key**: UTF-8 text, the field the channel's binding names (`incident_id` as a canonical lower-case UUID,
  or `ward_code`). Every record about one incident has the same key, so it is on one partition, in order.
- **Headers** (UTF-8 text, schema `{HEADERS_FILE}`): `event_type` and `schema_version` name the payload's
  schema file (`schemas/<event_type>.v<schema_version>.json`, listed in `schemas/index.json`); `mode` and
  `classification` repeat the envelope so a record can be routed or skipped before its value is parsed.
- **Identity**: `event_id`. The same event_id twice is the same event (a replay, a restart, or the same
  fact in two schema versions during a transition): de-duplicate by it.

## Mode
`live` is a real incident. `exercise` is a planned multi-agency exercise: its escalations reach only the
`escalations.exercise.*` topics, which the partners taking part read. `test` is a technical test of the
plumbing (a smoke test, a new partner's connection test): its escalations reach only the `escalations.test.*`
topics, which no partner reads. Neither ever reaches a live responder topic; tension alerts computed from
exercise and test incidents go to `tension.alerts.exercise`. The incidents topic carries all three (`mode` on
each record).

## Classification
`OFFICIAL` or `OFFICIAL-SENSITIVE` (the UK government security classification). It is never lowered:
domestic abuse, safeguarding, radicalisation and exploitation categories are `OFFICIAL-SENSITIVE` at least.
A partner handles an `OFFICIAL-SENSITIVE` record under its own OFFICIAL-SENSITIVE handling rules.

## Escalation levels (default rules file)
| level | name | agencies that receive it |
| --- | --- | --- |
{level_rows}

Rules may add agencies to a level (the incident's `agencies_required`, a rule's own list): an agency's
topic carries exactly the escalations addressed to it (`agencies` in the payload). A stand-down goes to
every agency that received a raise of that incident.

## Tension levels
{', '.join(f'`{lv.value}`' for lv in ev.TensionLevel)}, lowest first, per ward (`ward_code`).

## Topic names
A deployment may put a prefix before every address below (for example `test-run-1.`); the operator tells
a partner its prefix. The `.v1` at the end of an address is the version of the topic (its key,
partitioning and meaning), not of the events on it: events carry their own `schema_version`.
"""


def _first_paragraph(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def document(topics: TopicsFile, levels: dict[int, tuple[str, list[str]]], release: str) -> dict:
    """The AsyncAPI document as plain data (sorted, deterministic)."""
    models = contract_models()
    versions: dict[str, list[int]] = {}
    for name, version, _ in models:
        versions.setdefault(name, []).append(version)
    external = externally_produced(topics)
    summaries = {name: _first_paragraph(model.__doc__) or name for name, _, model in models}

    messages: dict[str, dict] = {}
    for name, version, model in models:
        carrier = next((t for t in topics.topics if name in t.event_types), None)
        if carrier is None:
            continue
        messages[message_id(name, version)] = _message(name, version, model, carrier, summaries[name], input_form=False)
        if name in external:
            messages[message_id(name, version, input_form=True)] = _message(
                name, version, model, carrier, summaries[name], input_form=True
            )

    channels: dict[str, dict] = {}
    operations: dict[str, dict] = {}
    for spec in topics.topics:
        carried = [(n, v) for n in spec.event_types for v in versions.get(n, ())]
        if not carried:
            continue  # an internal topic: no contract events on it
        channel_id = _slug(spec.id)
        ids = [message_id(n, v) for n, v in carried]
        if EXTERNAL_PRODUCERS & set(spec.contract_producers):
            ids += [message_id(n, v, input_form=True) for n, v in carried if n in external]
        channels[channel_id] = _channel(spec, ids)
        for role in spec.contract_producers:
            forms = [i for i in ids if i.endswith(".input") == (role in EXTERNAL_PRODUCERS)]
            operations[f"{_slug(role)}.send.{channel_id}"] = _operation("send", role, spec, channel_id, forms)
        for role in spec.contract_readers:
            operations[f"{_slug(role)}.receive.{channel_id}"] = _operation("receive", role, spec, channel_id, ids)

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": CONTRACT_TITLE,
            "version": release,
            "description": describe(levels, release),
            "license": {"name": "Contract of the Muster partnership"},
            "tags": [{"name": "live"}, {"name": "exercise"}, {"name": "any-mode"}],
        },
        "defaultContentType": "application/json",
        "servers": _servers(),
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "securitySchemes": {
                "sasl": {
                    "type": "scramSha512",
                    "description": "SASL/SCRAM-SHA-512 over TLS. Each partner agency has its own principal, "
                    "which may read only that agency's topics and use only its own consumer-group prefix.",
                }
            },
        },
    }


def _servers() -> dict:
    return {
        "local": {
            "host": "127.0.0.1:9092",
            "protocol": "kafka",
            "description": "`muster dev up` on a developer's machine: one broker, SASL/SCRAM-SHA-512 on "
            "loopback without TLS (a user per principal of topics.yaml, ACLs, no anonymous access).",
        },
        "production": {
            "host": "{bootstrap}",
            "protocol": "kafka-secure",
            "description": "The partnership's cluster: TLS, SASL authentication, one principal per partner; "
            "replication factor 3, min.insync.replicas 2.",
            "variables": {"bootstrap": {"description": "Bootstrap servers (host:port), given to each partner."}},
            "security": [{"$ref": "#/components/securitySchemes/sasl"}],
        },
    }


def _mode_tag(spec: TopicSpec) -> str:
    return "any-mode" if spec.mode == "any" else spec.mode


def _channel(spec: TopicSpec, message_ids: Iterable[str]) -> dict:
    description = spec.description
    if spec.agency:
        description += f" Agency: {spec.agency}; mode: {spec.mode}."
    channel = {
        "address": spec.name,
        "title": spec.name,
        "description": description + f" Key: `{spec.key}`. Partitions: {spec.partitions}.",
        "messages": {mid: {"$ref": f"#/components/messages/{mid}"} for mid in message_ids},
        "tags": [{"name": _mode_tag(spec)}] + ([{"name": f"agency:{spec.agency}"}] if spec.agency else []),
        "bindings": {
            "kafka": {
                "topic": spec.name,
                "partitions": spec.partitions,
                "topicConfiguration": {
                    "cleanup.policy": spec.cleanup_policy.split(","),
                    "retention.ms": spec.retention_ms,
                },
                "bindingVersion": KAFKA_BINDING,
            }
        },
        "x-muster-topic-id": spec.id,
        "x-muster-mode": spec.mode,
        "x-muster-key": spec.key,
    }
    if spec.agency:
        channel["x-muster-agency"] = spec.agency
    return channel


def _operation(action: str, role: str, spec: TopicSpec, channel_id: str, message_ids: list[str]) -> dict:
    verb = "sends" if action == "send" else "receives"
    return {
        "action": action,
        "title": f"{role} {verb} {spec.name}",
        "summary": f"{role} {verb} " + ", ".join(sorted({m.split('.')[0] for m in message_ids}))
        + (" through intake's HTTP API, never straight to the topic." if role in EXTERNAL_PRODUCERS else "."),
        "channel": {"$ref": f"#/channels/{channel_id}"},
        "messages": [{"$ref": f"#/channels/{channel_id}/messages/{mid}"} for mid in message_ids],
        "tags": [{"name": _mode_tag(spec)}],
        "x-muster-role": role,
    }


def _message(name: str, version: int, model, carrier: TopicSpec, summary: str, *, input_form: bool) -> dict:
    is_event = issubclass(model, ev.Event)
    key_field = model.topic_key_field if is_event else None
    headers = {
        "type": "object",
        "required": ["event_type", "schema_version"] + (["mode", "classification"] if is_event else []),
        "properties": {
            "event_type": {"type": "string", "const": name},
            "schema_version": {"type": "string", "const": str(version)},
        },
    }
    if is_event:
        headers["properties"]["mode"] = {"type": "string", "enum": [m.value for m in ev.Mode],
                                         "description": "Equal to the payload's `mode`."}
        headers["properties"]["classification"] = {"type": "string", "enum": [c.value for c in ev.Classification],
                                                   "description": "Equal to the payload's `classification`."}
    superseded = model in getattr(ev, "STILL_PRODUCED", ())
    if superseded:
        newer = ev.EVENT_TYPES[name].model_fields["schema_version"].default
        headers["properties"]["newer_schema_version"] = {
            "type": "string", "const": str(newer),
            "description": f"On the copy of a version-{newer} record (same event_id, just before it) written for "
            f"consumers not yet reading version {newer}; absent on records from before the transition.",
        }
    payload = input_filename(name, version) if input_form else consumer_filename(name, version)
    description = (
        f"`{name}` schema_version {version}. Payload: `schemas/{payload}`"
        + (" (input form: what a partner system sends, through intake's API (docs/intake.md), which fills "
           "event_id, recorded_at, schema_version and source and publishes the full form)." if input_form
           else " (every field present).")
    )
    if superseded:
        description += (
            f" **Superseded by version {newer}**: produced beside it, with the same event_id, until "
            f"{model.transition_ends}; then no longer. Read version {newer} and skip records with the "
            "`newer_schema_version` header."
        )
    message = {
        "name": name,
        "title": f"{name} v{version}" + (" (input form)" if input_form else ""),
        "summary": summary,
        "description": description,
        "contentType": "application/json",
        "headers": headers,
        "payload": {"$ref": f"./schemas/{payload}"},
        "bindings": {"kafka": {"key": {"$ref": f"./schemas/{key_filename(carrier.key)}"}, "bindingVersion": KAFKA_BINDING}},
        "x-muster-schema-version": version,
    }
    correlation = key_field or "dead_letter_id"
    message["correlationId"] = {
        "description": f"`{correlation}`: every record with the same value belongs to one "
        + ("incident." if correlation == "incident_id" else "ward." if correlation == "ward_code" else "dead letter."),
        "location": f"$message.payload#/{correlation}",
    }
    return message


class _Dumper(yaml.SafeDumper):
    """Multi-line text as YAML literal blocks, so the descriptions read as written."""


_Dumper.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)
)


def render(doc: dict) -> str:
    header = "# Generated by `muster contract export` from topics.yaml and the event models: do not edit.\n"
    return header + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


ASYNCAPI_FILE = REPO_ROOT / "asyncapi.yaml"
RELEASE_FILE = RELEASED_DIR / "RELEASE"


def release_id() -> str:
    """The last released contract (schemas/released/RELEASE), "unreleased" before the first."""
    return RELEASE_FILE.read_text().strip() if RELEASE_FILE.exists() else "unreleased"


def expected(levels: dict[int, tuple[str, list[str]]], topics: TopicsFile | None = None) -> str:
    return render(document(topics or load_topics_file(REPO_ROOT / "topics.yaml"), levels, release_id()))


def export(levels: dict[int, tuple[str, list[str]]], path: Path = ASYNCAPI_FILE) -> Path:
    path.write_text(expected(levels))
    return path
