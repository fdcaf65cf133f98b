"""Every FHIR error is an OperationOutcome: raised as FhirError, answered as application/fhir+json.

The API's own refusals (ApiProblem: token, role, idempotency key) and the core services'
DomainErrors are translated here, so the facade refuses exactly what /api/v1 refuses.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome
from flask import Response

from core.errors import DomainError
from webapp.api.problems import ApiProblem, from_domain

FHIR_JSON = "application/fhir+json"

# The OperationOutcome issue type (http://hl7.org/fhir/issue-type) for each HTTP status.
ISSUE_TYPES: dict[int, str] = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "business-rule",
    500: "exception",
    502: "transient",
    503: "transient",
}


class FhirError(Exception):
    """Raised anywhere in a FHIR view to answer with an OperationOutcome."""

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        expression: str | None = None,
        notes: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.expression = expression
        self.notes = notes or []  # informational issues after the error (free slots, say)
        self.headers = headers or {}

    def outcome(self) -> OperationOutcome:
        """The error as a validated R4B OperationOutcome."""
        issue: dict[str, Any] = {
            "severity": "error",
            "code": ISSUE_TYPES.get(self.status, "processing"),
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = [self.expression]
        notes = [
            {"severity": "information", "code": "informational", "diagnostics": note}
            for note in self.notes
        ]
        return OperationOutcome.model_validate(
            {"resourceType": "OperationOutcome", "issue": [issue, *notes]}
        )

    def response(self) -> Response:
        """The error as an application/fhir+json response with its status and headers."""
        response = Response(
            self.outcome().model_dump_json(), status=self.status, mimetype=FHIR_JSON
        )
        for name, value in self.headers.items():
            response.headers[name] = value
        return response


def from_problem(problem: ApiProblem, notes: list[str] | None = None) -> FhirError:
    """The /api/v1 refusal as a FHIR error with the same status, words and headers."""
    details = problem.problem
    field = details.errors[0].field if details.errors else None
    return FhirError(
        details.status, details.detail, expression=field, notes=notes, headers=problem.headers
    )


def from_domain_error(error: DomainError, notes: list[str] | None = None) -> FhirError:
    """A core service's refusal, with the status /api/v1 gives it."""
    return from_problem(from_domain(error), notes)
