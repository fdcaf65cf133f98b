"""Property-based run of the whole API from its own OpenAPI document, with every schemathesis
check: no 5xx; responses conform to the document (status codes, content types, headers,
schemas); schema-valid input is accepted and schema-invalid input refused; a method the path
does not have is a 405 whose `Allow` lists only the path's own methods, as OPTIONS does.

schemathesis' pytest integration runs its coverage phase (boundary values, each constraint
broken on its own, undocumented methods) and then fuzzing, once per operation. The schema is
loaded at import, before any database exists, through a WSGI app that hands each request to
the running test's fresh world. (`schemathesis.pytest.from_fixture` breaks on pytest 9.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from werkzeug import Response

from tests.webapp.api.conftest import ApiWorld, Recorder, build_api_world, calls_set_up
from webapp import db
from webapp.api.openapi import openapi_document

if os.environ.get("CI", "").strip().lower() in {"true", "1"}:
    # On CI this run is required: a missing test dependency must fail, not skip.
    import hypothesis
    import schemathesis
else:
    schemathesis = pytest.importorskip("schemathesis")
    hypothesis = pytest.importorskip("hypothesis")

EXAMPLES_PER_OPERATION = 25  # fuzzing only; the coverage phase's cases come on top
# schemathesis' documented defaults for positive_data_acceptance (5xx are not_a_server_error's).
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
# No check and no operation is excluded: placing a call (calls configured) reaches a loopback
# stand-in for the voice service (a real one being down is a documented 502, which
# not_a_server_error rejects).
DOCUMENT = openapi_document()


def _with_business_rules() -> list[str]:
    """Operations whose document lists rules that refuse schema-valid input with a 422."""
    return [
        entry["operationId"]
        for methods in DOCUMENT["paths"].values()
        for entry in methods.values()
        if "x-business-rules" in entry["responses"].get("422", {})
    ]


# positive_data_acceptance judges by its configured statuses alone (it never reads the
# document's responses), and 422 is not among its defaults: the operations that document
# business-rule refusals get 422 added, and `_is_a_business_rule_refusal` below checks that
# such a 422 really came from a rule and not from the schema validation.
CONFIG = schemathesis.Config.from_dict(
    {
        "operations": [
            {
                "include-operation-id": _with_business_rules(),
                "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}},
            }
        ]
    }
)


class WorldApp:
    """The app schemathesis calls: the running test's world, or just the document before one."""

    def __init__(self) -> None:
        self.current: Flask | None = None
        self.token = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Serve the request from the current world."""
        if self.current is None:
            document = Response(json.dumps(DOCUMENT), mimetype="application/json")
            return document(environ, start_response)
        return self.current(environ, start_response)


WORLD_APP = WorldApp()
SCHEMA = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WORLD_APP, config=CONFIG)


# The token is given through schemathesis' own auth, not `headers=`: its checks then know
# which requests carry it, so a case meant to lack it (missing_required_header, ignored_auth)
# is sent without it, and a negative case is not judged on an Authorization it did not send.
@SCHEMA.auth(refresh_interval=None)  # each test's world has its own token
class WorldToken:
    """The admin token of the running test's world."""

    def get(self, case: Any, context: Any) -> str:
        """The current world's token."""
        return WORLD_APP.token

    def set(self, case: Any, data: str, context: Any) -> None:
        """Send it as a bearer token."""
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _is_a_business_rule_refusal(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 422 to schema-valid input names no request field: the schema accepted every one."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    problem = response.json()
    fields = [error["field"] for error in problem.get("errors") or []]
    schema_fields = [f for f in fields if f.startswith(("body.", "query.", "header.", "path."))]
    assert not schema_fields, f"schema-valid input refused by validation: {problem}"
    return None


@pytest.fixture
def schema_world(
    sqlite_url: str, frozen_now: datetime, loopback: tuple[str, type[Recorder]]
) -> Iterator[ApiWorld]:
    """The API world with errors answered (not raised), as in production."""
    url, voice = loopback
    voice.answers["/make-call"] = (201, {"call_id": 1, "call_sid": "CA1", "status": "queued"})
    world = build_api_world(
        sqlite_url,
        frozen_now,
        API_RAISE_ERRORS=False,
        VOICE_SERVICE_URL=url,
        INTERNAL_API_TOKEN="t",
    )
    calls_set_up(world)
    WORLD_APP.current, WORLD_APP.token = world.app, world.tokens["admin"]
    yield world
    WORLD_APP.current, WORLD_APP.token = None, ""
    with world.app.app_context():
        db.engine.dispose()


@SCHEMA.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    # One world serves every example of an operation (building it per example is too slow).
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_operation_conforms_to_the_document(case: Any, schema_world: ApiWorld) -> None:
    case.call_and_validate(additional_checks=[_is_a_business_rule_refusal])
