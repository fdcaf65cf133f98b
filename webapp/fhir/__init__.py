"""A FHIR R4B facade for EHRs under /fhir/R4B: read and book, with the /api/v1 tokens.

- views.py: the interactions, their transaction and their OperationOutcome answers
- resources.py: our records as R4B resources (one function per resource) and back
- search.py: the search parameters each resource takes, and the searchset Bundle
- capability.py: the CapabilityStatement ([base]/metadata)
- errors.py: FhirError and the OperationOutcome it answers with
"""

from __future__ import annotations

from flask import Flask

from webapp.api import AnyPathConverter
from webapp.fhir.views import bp


def register(app: Flask) -> None:
    """Mount the FHIR facade on the app."""
    app.url_map.converters.setdefault("api_any_path", AnyPathConverter)
    app.register_blueprint(bp)
