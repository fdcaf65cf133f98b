"""The CapabilityStatement: what the facade does, built from the same tables the views obey."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from webapp.fhir.search import PAGING_PARAMS, SEARCH_PARAMS, base_url

FHIR_VERSION = "4.3.0"  # R4B
# The interactions each resource type supports (search-type: see webapp.fhir.search).
INTERACTIONS: dict[str, tuple[str, ...]] = {
    "Practitioner": ("read",),
    "Patient": ("read",),
    "Schedule": ("read", "search-type"),
    "Slot": ("read", "search-type"),
    "Appointment": ("read", "search-type", "create"),
}
DOCUMENTATION: dict[str, str] = {
    "Practitioner": "A nurse. A nurse's token reads only herself.",
    "Patient": "Name, birth date, phone and preferred language only; a nurse's token reads "
    "only her patients.",
    "Schedule": "One per nurse, with the nurse's id.",
    "Slot": "Free time only, computed when asked (notice, horizon, time off, buffers and daily "
    "caps applied). A Slot's id encodes the nurse, its UTC start and its length: book it by "
    "naming it in Appointment.slot.",
    "Appointment": "Create books through the same checks as /api/v1/appointments (a taken slot "
    "answers 409 with an OperationOutcome); send an Idempotency-Key header to retry safely.",
}


def capability_statement(now: datetime) -> CapabilityStatement:
    """What this server supports, for EHRs that read [base]/metadata first."""
    resources: list[dict[str, Any]] = []
    for resource_type, interactions in INTERACTIONS.items():
        resource: dict[str, Any] = {
            "type": resource_type,
            "documentation": DOCUMENTATION[resource_type],
            "interaction": [{"code": code} for code in interactions],
            "versioning": "no-version",
            "readHistory": False,
            "updateCreate": False,
        }
        params = [
            {
                "name": param.name,
                "type": param.type,
                "documentation": param.documentation,
                **({"definition": param.definition} if param.definition else {}),
            }
            for param in SEARCH_PARAMS.get(resource_type, ())
        ]
        if params:
            resource["searchParam"] = params
        resources.append(resource)
    return CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": now.isoformat(),
            "publisher": "Carematix",
            "kind": "instance",
            "software": {"name": "Carematix"},
            "implementation": {
                "description": "Carematix scheduling (FHIR R4B facade)",
                "url": base_url(),
            },
            "fhirVersion": FHIR_VERSION,
            "format": ["application/fhir+json", "json"],
            "rest": [
                {
                    "mode": "server",
                    "documentation": "Searches page with "
                    + " and ".join(PAGING_PARAMS)
                    + "; an unknown search parameter is refused (400).",
                    "security": {
                        "cors": False,
                        "description": "Send an API token as 'Authorization: Bearer <token>' "
                        "(the same tokens as /api/v1). A nurse's token sees only her own "
                        "schedule, visits and patients.",
                    },
                    "resource": resources,
                }
            ],
        }
    )
