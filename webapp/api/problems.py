"""Errors as RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

from typing import Any

from flask import Response
from pydantic import ValidationError as PydanticValidationError

from core.errors import (
    DomainError,
    InvalidState,
    NoSuchTime,
    NotAssigned,
    NotFound,
    SlotUnavailable,
)
from webapp.api.schemas import FieldError, Problem, SlotOut

PROBLEM_JSON = "application/problem+json"
DOCS_PATH = "/api/v1/docs"

# Every problem `code` the API can answer with, its status and its title (listed on the docs
# page, where each `type` URI points).
PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    "malformed_request": (400, "The request body is not valid JSON"),
    "unauthenticated": (401, "A valid API token is required"),
    "forbidden": (403, "Your role may not do this"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "conflict": (409, "Conflict"),
    "slot_unavailable": (409, "The time cannot be booked"),
    "series_refused": (409, "Some visits of the series cannot be booked"),
    "series_move_refused": (409, "Some visits of the series cannot move"),
    "invalid_state": (409, "The record is not in a state that allows this"),
    "payload_too_large": (413, "The request body is too large"),
    "unsupported_media_type": (415, "Send the body as application/json"),
    "invalid": (422, "The request is not valid"),
    "not_assigned": (422, "The nurse is not assigned to this patient"),
    "bad_gateway": (502, "An upstream service failed"),
    "not_configured": (503, "The service is not configured"),
    "internal_error": (500, "Internal error"),
}


class ApiProblem(Exception):
    """Raised anywhere in a view to answer with a problem document."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        default_status, title = PROBLEM_TYPES[code]
        self.problem = Problem(
            type=f"{DOCS_PATH}#problem-{code}",
            title=title,
            status=status or default_status,
            detail=detail,
            code=code,
            errors=errors,
            **extra,
        )
        self.headers = headers or {}


def problem_response(problem: ApiProblem) -> Response:
    """The problem as an application/problem+json response."""
    body = problem.problem.model_dump_json(exclude_none=True)
    response = Response(body, status=problem.problem.status, mimetype=PROBLEM_JSON)
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def from_domain(error: DomainError) -> ApiProblem:
    """The problem matching a core service's error."""
    errors = [FieldError(field=error.field, message=error.message)] if error.field else None
    by_field = error.details.get("errors")
    if isinstance(by_field, dict) and by_field:  # a service that reports every field at once
        errors = [FieldError(field=name, message=message) for name, message in by_field.items()]
    if isinstance(error, SlotUnavailable):
        alternatives = [SlotOut.model_validate(s) for s in error.alternatives]
        return ApiProblem(
            "slot_unavailable",
            error.message,
            reason=error.reason,
            alternatives=alternatives,
            escalate=error.escalate,
        )
    if isinstance(error, NoSuchTime):
        return ApiProblem("invalid", error.message, errors=errors, nearest=error.nearest)
    if isinstance(error, NotFound):
        return ApiProblem("not_found", error.message)
    if isinstance(error, NotAssigned):
        return ApiProblem("not_assigned", error.message, errors=errors)
    if isinstance(error, InvalidState):
        return ApiProblem("invalid_state", error.message)
    return ApiProblem("invalid", error.message, errors=errors)


def _location(loc: tuple[int | str, ...], prefix: str) -> str:
    path = ".".join(str(part) for part in loc)
    return f"{prefix}.{path}" if path else prefix


def from_validation(error: PydanticValidationError, where: str) -> ApiProblem:
    """A 422 naming each bad field (`body.start`, `query.page`...), or 400 for broken JSON."""
    issues = error.errors(include_url=False, include_input=False, include_context=False)
    if any(issue["type"] == "json_invalid" for issue in issues):
        return ApiProblem(
            "malformed_request", "The body is not valid JSON; check quotes, commas and brackets."
        )
    errors = [
        FieldError(field=_location(issue["loc"], where), message=issue["msg"], code=issue["type"])
        for issue in issues
    ]
    names = ", ".join(e.field for e in errors[:5])
    return ApiProblem("invalid", f"Some fields are not valid: {names}.", errors=errors)
