"""The OpenAPI document: valid 3.1, complete, self-consistent and built from the live models."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.webapp.api.conftest import ApiWorld
from webapp.api.openapi import REF_TEMPLATE, openapi_document, openapi_path
from webapp.api.registry import IDEMPOTENCY_KEY_SCHEMA, REGISTRY, bp
from webapp.api.schemas import AppointmentCreate, CancelRequest


@pytest.fixture
def spec(api: ApiWorld) -> dict[str, Any]:
    """The document as served."""
    response = api.get("/openapi.json", None)
    assert response.status_code == 200 and response.mimetype == "application/json"
    document: dict[str, Any] = response.get_json()
    return document


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    definitions = pytest.importorskip("schemathesis.specs.openapi.definitions")

    assert spec["openapi"] == "3.1.0"
    errors = [str(e) for e in definitions.OPENAPI_31_VALIDATOR.iter_errors(spec)]
    assert errors == []


def test_every_component_schema_is_valid_json_schema(spec: dict[str, Any]) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")

    for name, schema in spec["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name


def test_every_registered_operation_is_documented_once(spec: dict[str, Any]) -> None:
    for op in REGISTRY:
        assert op.method.lower() in spec["paths"][openapi_path(op)], op.rule
    operation_ids = [
        entry["operationId"] for methods in spec["paths"].values() for entry in methods.values()
    ]
    assert len(operation_ids) == len(set(operation_ids)) == len(REGISTRY)


def test_every_api_route_comes_from_the_registry(api: ApiWorld) -> None:
    registered = {f"{bp.name}.{op.endpoint}" for op in REGISTRY}
    catch_all = {f"{bp.name}.unmatched", f"{bp.name}.unmatched_root"}

    routed = {
        rule.endpoint for rule in api.app.url_map.iter_rules() if rule.endpoint.startswith("api.")
    }

    assert routed - catch_all == registered


def test_every_ref_resolves(spec: dict[str, Any]) -> None:
    refs = set(_refs(spec))

    assert refs
    for ref in refs:
        assert isinstance(_resolve(spec, ref), dict), ref


def test_path_templates_and_path_parameters_agree(spec: dict[str, Any]) -> None:
    for path, methods in spec["paths"].items():
        in_template = set(re.findall(r"\{([^}]+)\}", path))
        for entry in methods.values():
            declared = {p["name"] for p in entry.get("parameters", []) if p["in"] == "path"}
            assert declared == in_template, path


def test_every_operation_documents_success_and_its_errors(spec: dict[str, Any]) -> None:
    for path, methods in spec["paths"].items():
        for method, entry in methods.items():
            codes = set(entry["responses"])
            assert codes & {"200", "201", "202"}, (method, path)
            if entry.get("security") != []:
                assert "401" in codes, (method, path)
            if "requestBody" in entry:
                assert {"400", "413", "415", "422"} <= codes, (method, path)
            for code, response in entry["responses"].items():
                if code.startswith(("4", "5")) and code != "503":
                    media = response["content"]["application/problem+json"]["schema"]
                    assert media == {"$ref": "#/components/schemas/Problem"}


def test_bearer_security_is_declared_and_public_operations_opt_out(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert spec["security"] == [{"bearerAuth": []}]
    public = {
        path
        for path, methods in spec["paths"].items()
        if methods.get("get", {}).get("security") == []
    }
    assert public == {"/api/v1/health", "/api/v1/openapi.json", "/api/v1/docs"}


@pytest.mark.parametrize("model", [AppointmentCreate, CancelRequest])
def test_request_schemas_are_the_validating_models_own(spec: dict[str, Any], model: type) -> None:
    generated = model.model_json_schema(ref_template=REF_TEMPLATE)  # type: ignore[attr-defined]
    generated.pop("$defs", None)

    assert spec["components"]["schemas"][model.__name__] == generated


def test_query_models_become_query_parameters(spec: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in spec["paths"]["/api/v1/appointments"]["get"]["parameters"]}

    assert {"page", "per_page", "nurse_id", "patient_id", "status", "start", "end"} <= set(
        parameters
    )
    assert parameters["per_page"]["schema"]["maximum"] == 100
    assert parameters["start"]["schema"]["format"] == "date-time"
    assert "AppointmentListQuery" not in spec["components"]["schemas"]


def test_the_document_is_built_once(api: ApiWorld) -> None:
    with api.app.app_context():
        assert openapi_document() is openapi_document()


def test_the_docs_page_is_self_contained_and_lists_every_operation(
    api: ApiWorld, spec: dict[str, Any]
) -> None:
    response = api.get("/docs", None)
    html = response.get_data(as_text=True)

    assert response.mimetype == "text/html"
    for path in spec["paths"]:
        assert path in html
    assert "problem-slot_unavailable" in html
    assert "<li>`start` has seconds (visits start on a whole minute)</li>" in html
    assert not re.search(r"""(src|href)=["']https?://""", html)  # no CDN, works offline


def _schemas_with_format(node: Any, wanted: str) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("format") == wanted:
            yield node
        for value in node.values():
            yield from _schemas_with_format(value, wanted)
    elif isinstance(node, list):
        for item in node:
            yield from _schemas_with_format(item, wanted)


@pytest.mark.parametrize("wanted", ["date", "date-time"])
def test_every_input_date_and_time_states_its_written_form(
    spec: dict[str, Any], wanted: str
) -> None:
    parameters = [
        {**parameter["schema"], "description": parameter.get("description", "")}
        for methods in spec["paths"].values()
        for entry in methods.values()
        for parameter in entry.get("parameters", [])
    ]
    bodies = [
        spec["components"]["schemas"][name]
        for name in ("AppointmentCreate", "CallScheduleCreate", "RescheduleRequest")
    ]
    found = list(_schemas_with_format([parameters, bodies], wanted))

    assert found
    for schema in found:
        assert schema["pattern"].startswith("^(19[7-9][0-9]|20[0-9]{2}|2100)-"), schema
        assert "1970-2100" in schema["description"], schema


def test_rules_the_schema_cannot_state_are_documented_with_their_422(
    spec: dict[str, Any],
) -> None:
    ruled = {
        entry["operationId"]: entry
        for methods in spec["paths"].values()
        for entry in methods.values()
        if "x-business-rules" in entry["responses"].get("422", {})
    }

    assert set(ruled) == {op.endpoint for op in REGISTRY if op.rules}
    assert {"create_appointment", "reschedule", "schedule_from_call", "nurse_slots"} <= set(ruled)
    for entry in ruled.values():
        for rule in entry["responses"]["422"]["x-business-rules"]:
            assert rule in entry["description"]
    assert any(
        "whole minute" in r
        for r in ruled["create_appointment"]["responses"]["422"]["x-business-rules"]
    )
    assert any(
        "after `start`" in r for r in ruled["nurse_slots"]["responses"]["422"]["x-business-rules"]
    )


def test_the_idempotency_key_schema_is_the_one_enforced(spec: dict[str, Any]) -> None:
    parameters = spec["paths"]["/api/v1/appointments"]["post"]["parameters"]
    header = next(p for p in parameters if p["name"] == "Idempotency-Key")

    assert header["schema"] == IDEMPOTENCY_KEY_SCHEMA
    assert header["schema"]["maxLength"] == 200


def test_the_documented_date_pattern_states_the_years_core_limits_allow() -> None:
    import re

    from core.limits import EARLIEST_YEAR, LATEST_YEAR
    from core.operations import DATE_PATTERN, INSTANT_PATTERN

    for year, allowed in [
        (EARLIEST_YEAR - 1, False),
        (EARLIEST_YEAR, True),
        (LATEST_YEAR, True),
        (LATEST_YEAR + 1, False),
    ]:
        assert bool(re.fullmatch(DATE_PATTERN, f"{year}-06-15")) is allowed, year
        assert bool(re.fullmatch(INSTANT_PATTERN, f"{year}-06-15T10:00:00Z")) is allowed, year
