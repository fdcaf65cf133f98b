"""The OpenAPI 3.1 document, built from the route registry and the pydantic models: nothing in
it is written by hand, so it cannot drift from what the API validates and returns."""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from webapp.api.problems import PROBLEM_JSON, PROBLEM_TYPES
from webapp.api.registry import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_SCHEMA,
    REGISTRY,
    Operation,
    bp,
)
from webapp.api.schemas import Problem

Mode = Literal["validation", "serialization"]
REF_TEMPLATE = "#/components/schemas/{model}"
TAG_DESCRIPTIONS = {
    "meta": "Health, connection checks and this documentation.",
    "nurses": "Nurses, who is available, and free slots; add and change nurses, their weekly "
    "hours, time off and extra hours.",
    "patients": "Patients: look up, add and change them, and their care team.",
    "appointments": "Book, move, cancel and close visits.",
    "appointment series": "Recurring visits: book a series, read it, cancel visits of it.",
    "waitlist": "Patients waiting for an earlier time, and the freed times held for them.",
    "calls": "Call history, transcripts, booking from a call, outbound calls.",
    "transcripts": "Stored call transcripts.",
    "callbacks": "People who need a coordinator to call them back.",
}
STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Malformed JSON body",
    401: "Missing, unknown or revoked token",
    403: "The token's role may not do this",
    404: "Not found (or not visible to this token)",
    409: "Conflict: the time is taken (with alternatives), a series has refused visits, or "
    "the record's state forbids it",
    413: "Body larger than 64 KiB",
    415: "Body is not JSON",
    422: "Invalid fields (see `errors`)",
    502: "An upstream service failed",
    503: "Not configured or not healthy",
}
BOOKING_KEY = "Retrying with the same key returns the first result."
KEY_DESCRIPTION = (
    "Retrying with the same key (per token's login) returns the first answer, status and body, "
    "without doing the change again; the key sent with another request is 422."
)
_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def openapi_path(op: Operation) -> str:
    """The operation's full path in OpenAPI form: `/api/v1/nurses/{nurse_id}`."""
    return (bp.url_prefix or "") + _CONVERTER.sub(r"{\1}", op.rule)


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        if name not in required:
            if "default" in prop and prop["default"] is None:
                del prop["default"]
            branches = prop.get("anyOf")
            if branches:  # `X | None`: absent is how a query string says None
                kept = [b for b in branches if b != {"type": "null"}]
                if len(kept) == 1:
                    prop.pop("anyOf")
                    prop.update(kept[0])
                    # The type's own description states its limits (the written form of a time).
                    limits = prop.pop("description", None)
                    if limits:
                        description = f"{description}. {limits}" if description else limits
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _problem(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": STATUS_TEXT.get(status, "Error"),
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF_TEMPLATE.format(model="Problem")}}},
    }
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}
        }
    return response


def _description(op: Operation) -> str:
    """The view's docstring, then the rules that refuse schema-valid input (docs show both)."""
    if not op.rules:
        return op.description
    rules = "Answered 422 even to schema-valid input when: " + "; ".join(op.rules) + "."
    return f"{op.description}\n\n{rules}" if op.description else rules


def _error_statuses(op: Operation) -> list[int]:
    statuses = set(op.errors)
    if op.auth:
        statuses.add(401)
    if op.roles is not None or (op.auth and op.method == "POST"):
        statuses.add(403)
    if op.path_params:
        statuses.add(404)
    if op.query is not None or op.body is not None or op.takes_idempotency_key or op.rules:
        statuses.add(422)
    if op.body is not None:
        statuses.update({400, 413, 415})
    if op.method == "POST" and op.auth:
        statuses.add(409)  # a concurrent change can always win the race
    return sorted(statuses)


@cache
def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document (built once per process; the registry is static)."""
    wanted: list[tuple[type[BaseModel], Mode]] = [(Problem, "serialization")]
    for op in REGISTRY:
        wanted += [(m, "validation") for m in (op.query, op.body) if m is not None]
        wanted += [(m, "serialization") for m in (op.response, *op.other_responses.values()) if m]
    unique = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(unique, ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = top.get("$defs", {})

    def ref(model: type[BaseModel], mode: Mode) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    def ref_name(model: type[BaseModel], mode: Mode) -> str:
        return str(refs[(model, mode)]["$ref"]).rsplit("/", 1)[-1]

    paths: dict[str, dict[str, Any]] = {}
    query_models: set[str] = set()
    for op in REGISTRY:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": schema}
            for name, schema in op.path_params.items()
        ]
        if op.query is not None:
            name = ref_name(op.query, "validation")
            query_models.add(name)
            parameters += _query_parameters(copy.deepcopy(schemas[name]))
        if op.takes_idempotency_key:
            parameters.append(
                {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": False,
                    "description": KEY_DESCRIPTION if op.keeps_answers else BOOKING_KEY,
                    "schema": dict(IDEMPOTENCY_KEY_SCHEMA),
                }
            )
        responses: dict[str, Any] = {}
        if op.response is not None:
            success = {
                "description": STATUS_TEXT.get(op.status, "OK"),
                "content": {"application/json": {"schema": ref(op.response, "serialization")}},
            }
            responses[str(op.status)] = success
            if op.idempotent_header and op.status == 201:
                responses["200"] = {**success, "description": "Replay of an Idempotency-Key"}
        elif op.raw_response is not None:
            responses[str(op.status)] = {"description": "OK", "content": op.raw_response}
        for status, model in op.other_responses.items():
            responses[str(status)] = {
                "description": STATUS_TEXT.get(status, "Other"),
                "content": {"application/json": {"schema": ref(model, "serialization")}},
            }
        for status in _error_statuses(op):
            responses.setdefault(str(status), _problem(status))
        if op.rules:
            unprocessable = responses["422"]
            unprocessable["description"] += "; or a rule the schema cannot state is broken"
            # Machine-readable, so a schema-driven test can tell these refusals from bugs.
            unprocessable["x-business-rules"] = list(op.rules)
        entry: dict[str, Any] = {
            "operationId": op.endpoint,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": responses,
        }
        description = _description(op)
        if op.alias_of is not None:
            target = f"{op.method} {openapi_path(op.alias_of)}"
            entry["summary"] = f"Alias of {target} ({op.alias_of.summary})"
            entry["deprecated"] = False
            entry["x-alias-of"] = op.alias_of.endpoint
            description = (
                f"The product brief's path for `{target}` (operation `{op.alias_of.endpoint}`): "
                f"the same handler, token, roles, input and answers.\n\n{description}"
            )
        if description:
            entry["description"] = description
        if parameters:
            entry["parameters"] = parameters
        if op.body is not None:
            entry["requestBody"] = {
                # A body whose every field is optional may be left out (it reads as {}).
                "required": any(f.is_required() for f in op.body.model_fields.values()),
                "content": {"application/json": {"schema": ref(op.body, "validation")}},
            }
        if not op.auth:
            entry["security"] = []
        elif op.roles is not None:
            entry["x-roles"] = sorted(op.roles)
        paths.setdefault(openapi_path(op), {})[op.method.lower()] = entry

    for name in query_models:
        schemas.pop(name, None)  # expanded into parameters above; nothing refers to them
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Carematix API",
            "version": "1.0.0",
            "description": (
                "Scheduling for home-care nursing teams. Authenticate with "
                "`Authorization: Bearer <token>`. Times are RFC 3339 date-times with an "
                "offset and dates are YYYY-MM-DD, years 1970-2100 (each field's `pattern`); "
                "naive times and bare numbers are refused. An integer may be written 1 or 1.0 "
                '(JSON Schema counts both as integers), never 1.5 or "1". Operations that '
                "refuse some schema-valid input list those rules under their 422 answer "
                "(`x-business-rules`). Errors are RFC 9457 problem details. A nurse's token "
                "sees only that nurse's patients, appointments and calls (others' records are "
                "404)."
            ),
        },
        "tags": [{"name": n, "description": d} for n, d in TAG_DESCRIPTIONS.items()],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal API token (created in the dashboard or with "
                    "`flask --app wsgi create-token EMAIL`).",
                }
            },
        },
        "security": [{"bearerAuth": []}],
        "x-problem-types": {
            code: {"status": status, "title": title}
            for code, (status, title) in PROBLEM_TYPES.items()
        },
    }
