"""Property-based run of the whole API from its own OpenAPI document: no 5xx, and every
response conforms to the document (status codes, content types, headers and schemas).
Positive mode sends schema-valid input; negative mode sends invalid input, which must not
cause a 5xx either and must be answered as documented.

Each registered operation is its own test. (schemathesis' `from_fixture` integration breaks
on pytest 9, so the strategies are driven with hypothesis directly.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.webapp.api.conftest import ApiWorld, build_api_world
from webapp import db
from webapp.api.openapi import openapi_path
from webapp.api.registry import REGISTRY, Operation

if os.environ.get("CI", "").strip().lower() in {"true", "1"}:
    # On CI this run is required: a missing test dependency must fail, not skip.
    import hypothesis
    import schemathesis
else:
    schemathesis = pytest.importorskip("schemathesis")
    hypothesis = pytest.importorskip("hypothesis")

EXAMPLES_PER_OPERATION = 30
SKIPPED = {"place_call"}  # reaches out to the voice service; covered against a loopback server
# Business rules the schema cannot state (an end after its start, a whole-minute start, years
# 1970-2100) rightly answer 422 to schema-valid input; and negative cases whose mutation is
# lost on the wire (a dropped extra parameter, the Authorization header supplied here) are
# rightly accepted. test_bad_input.py pins the 4xx answers to invalid input explicitly.
EXCLUDED = [
    schemathesis.checks.positive_data_acceptance,
    schemathesis.checks.negative_data_rejection,
]


@pytest.fixture
def schema_world(sqlite_url: str, frozen_now: datetime) -> Iterator[ApiWorld]:
    """The API world with errors answered (not raised), as in production."""
    world = build_api_world(sqlite_url, frozen_now, API_RAISE_ERRORS=False)
    yield world
    with world.app.app_context():
        db.engine.dispose()


def _cases() -> list[object]:
    """Every operation in positive mode; those taking input in negative mode too."""
    cases = []
    for op in REGISTRY:
        if op.endpoint in SKIPPED:
            continue
        takes_input = op.query or op.body or op.path_params or op.idempotent_header
        for mode in ("positive", "negative") if takes_input else ("positive",):
            cases.append(pytest.param(op, mode, id=f"{op.method} {op.rule} {mode}"))
    return cases


@pytest.mark.parametrize(("op", "mode"), _cases())
def test_operation_conforms_to_the_document(
    schema_world: ApiWorld, op: Operation, mode: str
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", schema_world.app)
    operation = schema[openapi_path(op)][op.method]
    headers = schema_world.headers("admin")
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))

    @hypothesis.given(case=strategy)
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def run(case: object) -> None:
        case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)  # type: ignore[attr-defined]

    run()
