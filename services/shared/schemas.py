"""JSON Schema (draft 2020-12) of the published contract, generated from the models into `schemas/`.

Two forms of each event, named by file:

- `<Type>.v<N>.json`, the **consumer form**: exactly what a Muster producer writes. Every
  field is always present (the codec writes every field, defaults included), so every field
  is required; a field that may be null says so (`anyOf [..., {"type": "null"}]`). Unknown
  properties are not forbidden: a field may be added within a schema_version and a reader
  ignores what it does not know (docs/contract.md).
- `<Type>.v<N>.input.json`, the **input form**, only for the facts a partner system sends
  (topics.yaml's `partner_input` topics; partners send them through intake, which fills the
  rest): `event_type` is required; fields with a default may be left out (`event_id` comes
  from the Idempotency-Key or is new, `recorded_at` is always intake's, `schema_version` is
  the current one), and `source` (intake takes it from the caller's token). Unknown fields
  are rejected.

Beside them: `Headers.json` (the record headers), `Key.<field>.json` (each topic's key) and
`index.json`, which names the schema files of every event type and version and the topics
that carry it. `muster contract export` (or `muster schemas export`) writes them all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from services.shared import events as ev
from services.shared.settings import REPO_ROOT
from services.shared.topics import PARTNER_SYSTEMS, TopicsFile, load_topics_file

SCHEMAS_DIR = REPO_ROOT / "schemas"
RELEASED_DIR = SCHEMAS_DIR / "released"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
BASE_URI = "https://muster.example/schemas/"

# The input form: required though it has a default (it names the schema), and what intake fills.
INPUT_REQUIRED = ("event_type",)
INPUT_FILLED = ("source",)
# Producers outside Muster, as topics.yaml names them: they write the input form.
EXTERNAL_PRODUCERS = frozenset({PARTNER_SYSTEMS})


class ConsumerForm(GenerateJsonSchema):
    """Serialisation-mode schema with every field required: the codec writes every field."""

    def field_is_required(self, field, total: bool) -> bool:  # pydantic's core schema type
        return True if self.mode == "serialization" else super().field_is_required(field, total)


def contract_models() -> list[tuple[str, int, type[BaseModel]]]:
    """(event type, schema_version, model) of every version Muster produces now."""
    produced = [(name, _version(model), model) for name, model in {**ev.EVENT_TYPES, "DeadLetter": ev.DeadLetter}.items()]
    for model in getattr(ev, "STILL_PRODUCED", ()):  # older versions kept for a transition (docs/contract.md)
        produced.append((model.model_fields["event_type"].default, _version(model), model))
    return sorted(produced, key=lambda p: (p[0], p[1]))


def _version(model: type[BaseModel]) -> int:
    return int(model.model_fields["schema_version"].default)


def consumer_filename(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}.json"


def input_filename(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}.input.json"


def key_filename(key_field: str) -> str:
    return f"Key.{key_field}.json"


HEADERS_FILE = "Headers.json"
INDEX_FILE = "index.json"


def _document(filename: str, schema: dict, **extra: Any) -> dict:
    return {"$schema": DRAFT, "$id": BASE_URI + filename, **schema, **extra}


def consumer_schema(model: type[BaseModel]) -> dict:
    schema = model.model_json_schema(mode="serialization", schema_generator=ConsumerForm)
    return _open(schema)


def input_schema(model: type[BaseModel]) -> dict:
    schema = model.model_json_schema(mode="validation")
    required = (set(schema.get("required", [])) - set(INPUT_FILLED)) | {f for f in INPUT_REQUIRED if f in schema["properties"]}
    schema["required"] = sorted(required, key=list(schema["properties"]).index)
    return schema


def _open(schema: Any) -> Any:
    """The consumer form forbids no unknown property: a reader ignores what it does not know."""
    if isinstance(schema, dict):
        return {k: _open(v) for k, v in schema.items() if not (k == "additionalProperties" and v is False)}
    if isinstance(schema, list):
        return [_open(v) for v in schema]
    return schema


def externally_produced(topics: TopicsFile) -> set[str]:
    """Event types a partner system may send (through intake)."""
    return {t for spec in topics.topics if EXTERNAL_PRODUCERS & set(spec.contract_producers) for t in spec.event_types}


def headers_schema() -> dict:
    """Every record's headers: UTF-8 text values. DeadLetter records carry only the first two."""
    types = sorted({name for name, _, _ in contract_models()})
    return {
        "title": "Headers",
        "description": "Kafka record headers, each a UTF-8 string. They repeat the envelope, so a consumer can "
        "route or skip a record before parsing its value. `mode` and `classification` are on every event; a "
        "DeadLetter carries only `event_type` and `schema_version`.",
        "type": "object",
        "required": ["event_type", "schema_version"],
        "properties": {
            "event_type": {
                "type": "string", "pattern": "^[A-Z][A-Za-z0-9]{0,99}$", "examples": types,
                "description": "The value's event type: names its schema. An open set: a new event type joins a "
                "topic without a new schema_version or topic version, so a consumer skips (and counts) a type it "
                "does not know; `schemas/index.json` lists the types of each topic.",
            },
            "schema_version": {"type": "string", "pattern": "^[1-9][0-9]*$",
                               "description": "The value's schema version, as decimal text: `<event_type>.v<schema_version>.json`."},
            "mode": {"type": "string", "enum": [m.value for m in ev.Mode], "description": "The event's mode."},
            "classification": {"type": "string", "enum": [c.value for c in ev.Classification],
                               "description": "The event's security classification."},
            "newer_schema_version": {
                "type": "string", "pattern": "^[1-9][0-9]*$",
                "description": "Only on a record that repeats, in an older schema version, a fact also written "
                "(just before it, same event_id) in this newer version, during that version's transition. "
                "A consumer that reads the newer version skips this record.",
            },
        },
    }


def key_schemas(topics: TopicsFile) -> dict[str, dict]:
    """The key of each topic: the named field of its events, as UTF-8 text."""
    models = {name: model for name, _, model in contract_models()}
    out: dict[str, dict] = {}
    for spec in topics.topics:
        if spec.key in out or spec.internal:
            continue
        field_schema = None
        for event_type in spec.event_types:
            model = models.get(event_type)
            if model is not None and spec.key in model.model_fields:
                field_schema = consumer_schema(model)["properties"][spec.key]
                break
        schema = {k: v for k, v in (field_schema or {"type": "string"}).items() if k not in ("title", "default")}
        what = f"the event's `{spec.key}`" if field_schema else f"the {spec.key} (for a dead letter: the service that wrote it)"
        out[key_filename(spec.key)] = {
            "title": f"Key {spec.key}",
            "description": f"The record key: {what}, as UTF-8 text (a UUID in its canonical lower-case "
            "hyphenated form). Records with the same key are on one partition, in order.",
            **schema,
        }
    return out


def index_document(topics: TopicsFile) -> dict:
    """Event type -> schema_version -> its schema files and topics: the link from a header to a file."""
    external = externally_produced(topics)
    index: dict[str, dict] = {}
    for name, version, _ in contract_models():
        entry = {"schema": consumer_filename(name, version),
                 "topics": [t.name for t in topics.topics if name in t.event_types]}
        if name in external:
            entry["input_schema"] = input_filename(name, version)
        index.setdefault(name, {})[str(version)] = entry
    return {
        "description": "For a record with headers event_type=T and schema_version=N: its value's schema is "
        "index[T][N].schema. input_schema: what a producer outside Muster may write (defaults left out).",
        "headers": HEADERS_FILE,
        "keys": {t.name: key_filename(t.key) for t in topics.topics if not t.internal},
        "event_types": index,
    }


def schema_documents(topics: TopicsFile | None = None) -> dict[str, dict]:
    """File name -> document, for everything in schemas/ (released/ aside)."""
    topics = topics or load_topics_file(REPO_ROOT / "topics.yaml")
    external = externally_produced(topics)
    docs: dict[str, dict] = {}
    for name, version, model in contract_models():
        filename = consumer_filename(name, version)
        docs[filename] = _document(filename, consumer_schema(model))
        if name in external:
            filename = input_filename(name, version)
            docs[filename] = _document(filename, input_schema(model))
    docs[HEADERS_FILE] = _document(HEADERS_FILE, headers_schema())
    for filename, schema in key_schemas(topics).items():
        docs[filename] = _document(filename, schema)
    docs[INDEX_FILE] = index_document(topics)
    return docs


def render(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(directory: Path = SCHEMAS_DIR, topics: TopicsFile | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    docs = schema_documents(topics)
    for stale in directory.glob("*.json"):
        if stale.name not in docs:
            stale.unlink()
    for filename, doc in docs.items():
        path = directory / filename
        path.write_text(render(doc))
        written.append(path)
    return written
