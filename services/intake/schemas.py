"""The HTTP shapes of the intake API: responses, errors, and request bodies for OpenAPI.

Request bodies are the events of `schemas/` with what intake fills made optional; their
JSON Schemas are derived here from the event models, so they cannot drift from them.
"""

from __future__ import annotations

import copy
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from services.intake.validation import APPENDABLE, FACT_TYPES

REF = "#/components/schemas/{model}"


class Accepted(BaseModel):
    """The broker acknowledged the event (acks=all): where it is."""

    model_config = ConfigDict(json_schema_extra={"additionalProperties": False})
    incident_id: uuid.UUID
    event_id: uuid.UUID
    partition: int
    offset: int


class FieldProblem(BaseModel):
    field: str
    message: str


class Permissions(BaseModel):
    """What the caller's token may post (the control-room board shows only these actions)."""

    model_config = ConfigDict(json_schema_extra={"additionalProperties": False})
    subject: str
    role: str
    agency: str
    may_post: list[str] = Field(description="Event types this caller may post; intake still checks every post.")


class ErrorBody(BaseModel):
    """Every error: a machine-readable code, one readable line, and each bad field."""

    error: str
    detail: str
    errors: list[FieldProblem] = []


class BatchItemResult(BaseModel):
    index: int
    status: Literal["accepted", "rejected"]
    event_id: uuid.UUID | None
    incident_id: uuid.UUID | None
    partition: int | None
    offset: int | None
    error: str | None
    code: int | None = None  # the HTTP status the item alone would have had (403, 404, 409, 422, 503)


class BatchResults(BaseModel):
    results: list[BatchItemResult]


def _request_schema(name: str, schema: dict, *, incident_id: Literal["absent", "optional", "required"]) -> dict:
    """An event's schema as a request body: envelope fields intake fills become optional."""
    schema = copy.deepcopy(schema)
    schema["title"] = name
    filled = ("source", "incident_id", "event_type", "acknowledged_by", "declared_by", "agency")  # from the token
    required = [f for f in schema.get("required", []) if f not in filled]
    if incident_id == "absent":
        schema["properties"].pop("incident_id", None)
    elif incident_id == "required":
        required.append("incident_id")
    required.append("event_type")
    schema["required"] = required
    return schema


def component_schemas(batch_max: int) -> dict[str, dict]:
    """The components intake adds to its OpenAPI document."""
    models = [(cls, "validation") for cls in FACT_TYPES.values()]
    keyed, top = models_json_schema(models, ref_template=REF)
    components = dict(top.get("$defs", {}))
    events = {cls.__name__: components[cls.__name__] for cls in FACT_TYPES.values()}
    reported = _request_schema("NewIncident", events["IncidentReported"], incident_id="absent")
    reported["required"].remove("event_type")  # the only type this route takes
    components["NewIncident"] = reported
    for name in APPENDABLE:
        components[f"{name}Request"] = _request_schema(f"{name}Request", events[name], incident_id="optional")
        components[f"{name}BatchItem"] = _request_schema(f"{name}BatchItem", events[name], incident_id="required")
    components["IncidentReportedBatchItem"] = _request_schema(
        "IncidentReportedBatchItem", events["IncidentReported"], incident_id="required"
    )
    components["IncidentFactRequest"] = {
        "title": "IncidentFactRequest",
        "oneOf": [{"$ref": REF.format(model=f"{n}Request")} for n in APPENDABLE],
    }
    components["EventBatch"] = {
        "title": "EventBatch",
        "type": "object",
        "additionalProperties": False,
        "required": ["events"],
        "properties": {
            "events": {
                "type": "array",
                "maxItems": batch_max,
                "items": {"oneOf": [{"$ref": REF.format(model=f"{n}BatchItem")} for n in FACT_TYPES]},
            }
        },
    }
    return components


def json_body(component: str) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": REF.format(model=component)}}}}}
