"""The API's small world (two nurses, their patients, a token per role) seen through the FHIR
facade: requests under /fhir/R4B, and answers parsed with the R4B models."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.resource import Resource
from werkzeug.test import TestResponse

# The API's fixtures, imported to be found here: the facade is asked in the same world.
from tests.webapp.api.conftest import ApiWorld, api, api_any_db  # noqa: F401

BASE = "/fhir/R4B"
FHIR_JSON = "application/fhir+json"
ResourceT = TypeVar("ResourceT", bound=Resource)


class FhirWorld:
    """The API world, asked through the FHIR facade."""

    def __init__(self, world: ApiWorld) -> None:
        self.api = world
        self.ids = world.ids
        self.now = world.now

    def get(self, path: str, role: str | None = "admin", **kwargs: Any) -> TestResponse:
        """GET /fhir/R4B{path} as `role` (None: no token)."""
        return self.api.client.get(BASE + path, headers=self.api.headers(role), **kwargs)

    def post(
        self,
        path: str,
        body: Any,
        role: str | None = "admin",
        content_type: str = FHIR_JSON,
        **headers: str,
    ) -> TestResponse:
        """POST a JSON body to /fhir/R4B{path} as `role`."""
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.api.client.post(
            BASE + path,
            data=data,
            content_type=content_type,
            headers=self.api.headers(role, **headers),
        )


def parsed(response: TestResponse, model: type[ResourceT], status: int = 200) -> ResourceT:
    """The response's body as an R4B `model`, after checking its status and content type."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    return model.model_validate_json(response.get_data())


def outcome(response: TestResponse, status: int) -> OperationOutcome:
    """The response as an OperationOutcome error with `status`."""
    result = parsed(response, OperationOutcome, status)
    assert result.issue[0].severity == "error"
    return result


def diagnostics(response: TestResponse) -> str:
    """The first issue's words."""
    return str(OperationOutcome.model_validate_json(response.get_data()).issue[0].diagnostics)


@pytest.fixture
def fhir(api: ApiWorld) -> FhirWorld:  # noqa: F811
    """The FHIR facade on SQLite."""
    return FhirWorld(api)


@pytest.fixture
def fhir_any_db(api_any_db: ApiWorld) -> FhirWorld:  # noqa: F811
    """The FHIR facade on each backend."""
    return FhirWorld(api_any_db)


def booking(patient_id: int, slot_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """An Appointment to create: booked, for the patient, of the Slot when given."""
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": "booked",
        "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}],
    }
    if slot_id is not None:
        body["slot"] = [{"reference": f"Slot/{slot_id}"}]
    body.update(fields)
    return body
