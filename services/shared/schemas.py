"""JSON Schema (draft 2020-12) for every event, generated from the models into `schemas/`."""

from __future__ import annotations

import json
from pathlib import Path

from services.shared.events import EVENT_TYPES, DeadLetter
from services.shared.settings import REPO_ROOT

SCHEMAS_DIR = REPO_ROOT / "schemas"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def schema_documents() -> dict[str, dict]:
    """File name -> schema document, for every event type and the dead-letter record."""
    docs: dict[str, dict] = {}
    for name, model in {**EVENT_TYPES, "DeadLetter": DeadLetter}.items():
        schema = model.model_json_schema(mode="validation")
        version = model.model_fields["schema_version"].default
        docs[f"{name}.v{version}.json"] = {
            "$schema": DRAFT,
            "$id": f"https://muster.example/schemas/{name}.v{version}.json",
            **schema,
        }
    return docs


def render(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(directory: Path = SCHEMAS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    docs = schema_documents()
    for stale in directory.glob("*.json"):
        if stale.name not in docs:
            stale.unlink()
    for filename, doc in docs.items():
        path = directory / filename
        path.write_text(render(doc))
        written.append(path)
    return written
