"""Does a schema change keep existing consumers working? (pure; the policy is docs/contract.md)

Every schema is compared with the last released one, kept in `schemas/released/`:

- a **consumer form** (`<Type>.v<N>.json`, headers, keys): every record a producer may write
  under the new schema must be one the released schema accepts, so a consumer built from the
  released schema still reads it. Adding a field is fine (consumers ignore unknown fields);
  removing one, making one nullable or optional, widening a type, an enum, a bound or a
  pattern is not.
- an **input form** (`<Type>.v<N>.input.json`): the other way round, every record a producer
  of the released schema writes must still be accepted.

A released schema that is no longer produced is a break too, until it is retired on purpose
(removed from `schemas/released/` once its transition has ended).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOUNDS_MIN = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
BOUNDS_MAX = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
EXACT = ("pattern", "format", "const", "multipleOf")


@dataclass(frozen=True)
class Break:
    schema: str
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.schema}: field `{self.field}`: {self.problem}"


def is_input_form(filename: str) -> bool:
    return filename.endswith(".input.json")


def check_directory(released: Path, current: Path) -> list[Break]:
    """Every break between the released schemas and the current ones."""
    breaks: list[Break] = []
    for path in sorted(released.glob("*.json")):
        now = current / path.name
        if not now.exists():
            breaks.append(Break(path.name, "(schema)", "was released and is no longer produced; keep producing it "
                                "for its transition, then retire it by removing it from schemas/released/"))
            continue
        breaks.extend(check(path.name, json.loads(path.read_text()), json.loads(now.read_text())))
    return breaks


def check(name: str, released: dict, current: dict) -> list[Break]:
    """The breaks of one schema: consumer forms read what the current writes; input forms the reverse."""
    if is_input_form(name):
        reader, writer = _Doc(current), _Doc(released)
        wording = _INPUT
    else:
        reader, writer = _Doc(released), _Doc(current)
        wording = _CONSUMER
    return [Break(name, field, wording.get(kind, "{}").format(detail)) for field, kind, detail in
            _Comparison(reader, writer, released_reads=not is_input_form(name)).compare(reader.root, writer.root, "")]


# What each kind of problem means, said from the side that breaks.
_CONSUMER = {
    "removed": "removed; consumers of the released schema read it",
    "optional": "no longer always present; consumers of the released schema rely on it",
    "type": "may now be {}, which the released schema does not allow",
    "enum": "may now be {}, a value the released schema does not list",
    "bound": "{}: looser than the released schema",
    "changed": "{}; values the released schema rejects may now be produced",
    "closed": "is new, and the released schema rejects unknown fields",
}
_INPUT = {
    "removed": "is new and required; producers of the released input form do not write it",
    "optional": "now required; producers of the released input form may leave it out",
    "type": "a released producer may write {}, which is now rejected",
    "enum": "a released producer may write {}, which is now rejected",
    "bound": "{}: stricter than the released input form",
    "changed": "{}; what released producers write may now be rejected",
    "closed": "removed; producers of the released input form may write it and would now be rejected",
}


class _Doc:
    def __init__(self, root: dict) -> None:
        self.root = root

    def resolve(self, schema: Any) -> dict:
        """A schema with its local `$ref` followed (siblings of the `$ref` kept)."""
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/") or seen > 50:
                raise ValueError(f"unsupported $ref {ref!r}")
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            seen += 1
        return schema if isinstance(schema, dict) else {}


def _types(schema: dict) -> set[str] | None:
    if "type" in schema:
        t = schema["type"]
        return set(t) if isinstance(t, list) else {t}
    if "const" in schema:
        return {_json_type(schema["const"])}
    if "enum" in schema:
        return {_json_type(v) for v in schema["enum"]}
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _values(schema: dict) -> list | None:
    if "const" in schema:
        return [schema["const"]]
    return list(schema["enum"]) if "enum" in schema else None


class _Comparison:
    """Problems where `writer` allows a record that `reader` rejects."""

    def __init__(self, reader: _Doc, writer: _Doc, *, released_reads: bool) -> None:
        self.reader = reader
        self.writer = writer
        self.released_reads = released_reads

    def _was_now(self, key: str, r: dict, w: dict) -> str:
        released, current = (r, w) if self.released_reads else (w, r)
        return f"{key} {released.get(key, 'none')!r} -> {current.get(key, 'none')!r}"

    def compare(self, r: Any, w: Any, path: str) -> list[tuple[str, str, str]]:
        r, w = self.reader.resolve(r), self.writer.resolve(w)
        r_alts, w_alts = _alternatives(r), _alternatives(w)
        if len(r_alts) > 1 or len(w_alts) > 1:
            return self._alternatives(r_alts, w_alts, path)
        return self._one(r, w, path)

    def _alternatives(self, r_alts: list, w_alts: list, path: str) -> list:
        problems = []
        for w_alt in w_alts:
            w_alt = self.writer.resolve(w_alt)
            attempts = [self.compare(r_alt, w_alt, path) for r_alt in r_alts]
            if any(not a for a in attempts):
                continue
            w_types = _types(w_alt) or set()
            same_type = [a for r_alt, a in zip(r_alts, attempts) if (_types(self.reader.resolve(r_alt)) or set()) & w_types]
            if same_type:
                problems.extend(min(same_type, key=len))
            else:
                problems.append((path or "(record)", "type", " or ".join(sorted(w_types)) or "anything"))
        return problems

    def _one(self, r: dict, w: dict, path: str) -> list[tuple[str, str, str]]:
        where = path or "(record)"
        problems: list[tuple[str, str, str]] = []
        r_types, w_types = _types(r), _types(w)
        if r_types is not None:
            if w_types is None:
                return [(where, "type", "any type")]
            widened = {t for t in w_types if t not in r_types and not (t == "integer" and "number" in r_types)}
            if widened:
                return [(where, "type", " or ".join(sorted(widened)))]
        r_values, w_values = _values(r), _values(w)
        if r_values is not None:
            extra = [v for v in (w_values or []) if v not in r_values]
            if w_values is None:
                problems.append((where, "enum", "any value"))
            elif extra:
                problems.append((where, "enum", ", ".join(repr(v) for v in extra)))
        for key in BOUNDS_MIN:
            if key in r and (key not in w or w[key] < r[key]):
                problems.append((where, "bound", self._was_now(key, r, w)))
        for key in BOUNDS_MAX:
            if key in r and (key not in w or w[key] > r[key]):
                problems.append((where, "bound", self._was_now(key, r, w)))
        for key in EXACT:
            if key == "const" and r_values is not None:
                continue
            if key in r and w.get(key) != r[key]:
                problems.append((where, "changed", self._was_now(key, r, w)))
        if "properties" in r or "properties" in w or "required" in r:
            problems.extend(self._object(r, w, path))
        if "items" in r and isinstance(r["items"], dict):
            problems.extend(self.compare(r["items"], w.get("items", {}), f"{path}[]"))
        return problems

    def _object(self, r: dict, w: dict, path: str) -> list[tuple[str, str, str]]:
        problems = []
        r_props, w_props = r.get("properties", {}), w.get("properties", {})
        r_required, w_required = set(r.get("required", ())), set(w.get("required", ()))
        for name, r_prop in r_props.items():
            field = f"{path}.{name}" if path else name
            if name not in w_props:
                if name in r_required or w.get("additionalProperties", True) is not False:
                    problems.append((field, "removed", ""))
                continue
            if name in r_required and name not in w_required:
                problems.append((field, "optional", ""))
            problems.extend(self.compare(r_prop, w_props[name], field))
        if r.get("additionalProperties", True) is False:
            for name in w_props.keys() - r_props.keys():
                field = f"{path}.{name}" if path else name
                problems.append((field, "closed", ""))
        return problems


def _alternatives(schema: dict) -> list:
    return list(schema.get("anyOf") or schema.get("oneOf") or [schema])
