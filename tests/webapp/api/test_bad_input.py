"""Bad input gets a clear 4xx problem and writes nothing; never a 500."""

from __future__ import annotations

import json

import pytest

from tests.webapp.api.conftest import ApiWorld


def _problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.mimetype == "application/problem+json"  # type: ignore[attr-defined]
    body: dict[str, object] = response.get_json()  # type: ignore[attr-defined]
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body


BAD_BODIES = [
    pytest.param(b'{"patient_id": 1, "start": ', 400, None, id="malformed-json"),
    pytest.param(b"\xff\xfe not utf-8", 400, None, id="not-utf8"),
    pytest.param(b"[1, 2]", 422, None, id="not-an-object"),
    pytest.param(
        b'{"patient_id": "one", "start": "2025-03-04T11:00:00-05:00"}',
        422,
        "body.patient_id",
        id="string-id",
    ),
    pytest.param(
        b'{"patient_id": 1.5, "start": "2025-03-04T11:00:00-05:00"}',
        422,
        "body.patient_id",
        id="float-id",
    ),
    pytest.param(
        b'{"patient_id": true, "start": "2025-03-04T11:00:00-05:00"}',
        422,
        "body.patient_id",
        id="bool-id",
    ),
    pytest.param(
        b'{"patient_id": 1, "start": "2025-03-04T11:00:00"}', 422, "body.start", id="naive-time"
    ),
    pytest.param(
        b'{"patient_id": 1, "start": "tomorrow at ten"}', 422, "body.start", id="not-a-time"
    ),
    pytest.param(
        b'{"patient_id": 1, "start": "0001-01-01T00:00:00+01:00"}', 422, "body.start", id="year-one"
    ),
    pytest.param(b'{"patient_id": 1}', 422, "body.start", id="missing-start"),
    pytest.param(
        b'{"patient_id": 1, "start": "2025-03-04T11:00:00-05:00", "colour": "red"}',
        422,
        "body.colour",
        id="unknown-field",
    ),
    pytest.param(
        b'{"patient_id": 1, "start": "2025-03-04T11:00:00-05:00", "kind": "telepathy"}',
        422,
        "body.kind",
        id="bad-kind",
    ),
    pytest.param(
        b'{"patient_id": 1, "start": "2025-03-04T11:00:00-05:00", "duration_minutes": 9999}',
        422,
        "body.duration_minutes",
        id="too-long",
    ),
    pytest.param(
        b'{"patient_id": 1, "start": "2025-03-04T11:00:00-05:00", "reason": "a\\u0000b"}',
        422,
        "body.reason",
        id="nul-character",
    ),
    pytest.param(
        b'{"patient_id": 99999999999, "start": "2025-03-04T11:00:00-05:00"}',
        422,
        "body.patient_id",
        id="id-beyond-integer",
    ),
    pytest.param(
        b'{"patient_id": 999, "start": "2025-03-04T11:00:00-05:00"}',
        404,
        None,
        id="unknown-patient",
    ),
    pytest.param(
        b'{"patient_id": 1, "start": "2025-03-04T11:00:30-05:00"}',
        422,
        "start",
        id="not-whole-minute",
    ),
]


@pytest.mark.parametrize(("raw", "status", "field"), BAD_BODIES)
def test_bad_booking_bodies_are_refused_and_write_nothing(
    api_any_db: ApiWorld, raw: bytes, status: int, field: str | None
) -> None:
    api = api_any_db
    before = api.counts()

    response = api.client.post(
        "/api/v1/appointments",
        data=raw,
        headers=api.headers("admin", **{"Content-Type": "application/json"}),
    )

    problem = _problem(response, status)
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem  # type: ignore[union-attr]
    assert api.counts() == before


def test_a_huge_body_is_413_and_writes_nothing(api: ApiWorld) -> None:
    before = api.counts()
    raw = json.dumps(
        {"patient_id": 1, "start": "2025-03-04T11:00:00-05:00", "reason": "x" * 70_000}
    )

    response = api.client.post(
        "/api/v1/appointments",
        data=raw,
        headers=api.headers("admin", **{"Content-Type": "application/json"}),
    )

    _problem(response, 413)
    assert api.counts() == before


def test_a_huge_chunked_body_without_a_length_is_413(api: ApiWorld) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"reason": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = api.client.post(
        "/api/v1/appointments",
        input_stream=__import__("io").BytesIO(b"".join(chunks())),
        headers=api.headers(
            "admin", **{"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        ),
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets for chunked bodies
    )

    _problem(response, 413)


def test_a_form_body_is_415(api: ApiWorld) -> None:
    response = api.client.post(
        "/api/v1/appointments", data={"patient_id": "1"}, headers=api.headers("admin")
    )

    _problem(response, 415)


def test_an_empty_body_names_the_missing_fields(api: ApiWorld) -> None:
    response = api.client.post("/api/v1/appointments", headers=api.headers("admin"))

    problem = _problem(response, 422)
    fields = {e["field"] for e in problem["errors"]}  # type: ignore[union-attr]
    assert {"body.patient_id", "body.start"} <= fields


BAD_QUERIES = [
    ("/appointments?page=0", "query.page"),
    ("/appointments?per_page=101", "query.per_page"),
    ("/appointments?nurse_id=abc", "query.nurse_id"),
    ("/appointments?status=lost", "query.status"),
    ("/appointments?start=2025-03-04T10:00:00", "query.start"),
    ("/appointments?colour=red", "query.colour"),
    ("/calls?direction=sideways", "query.direction"),
    ("/nurses?q=%00", "query.q"),
    ("/nurses/available", "query.date"),
    ("/nurses/available?date=2025-02-30", "query.date"),
    ("/nurses/available?date=0001-01-01", "query.date"),
    ("/nurses/available?date=2025-03-04&time=25:00", "query.time"),
    ("/nurses/1/slots?start=2025-03-04T00:00:00Z", "query.end"),
    ("/nurses/1/slots?start=2025-03-04T00:00:00Z&end=2025-03-03T00:00:00Z", "end"),
    ("/nurses/1/slots?start=2025-01-01T00:00:00Z&end=2025-12-01T00:00:00Z", "end"),
]


@pytest.mark.parametrize(("path", "field"), BAD_QUERIES)
def test_bad_query_parameters_are_422_naming_the_parameter(
    api: ApiWorld, path: str, field: str
) -> None:
    problem = _problem(api.get(path), 422)

    assert field in [e["field"] for e in problem["errors"]], problem  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "path",
    [
        "/appointments/999",
        "/appointments/0",
        "/appointments/abc",
        "/appointments/99999999999999999999",
        "/calls/999",
        "/calls/999/transcript",
        "/nurses/999",
        "/nurses/999/slots?start=2025-03-04T00:00:00Z&end=2025-03-05T00:00:00Z",
        "/patients/by-phone/+19995550000/assigned-nurse",
        "/patients/by-phone/not-a-number/assigned-nurse",
        "/no-such-thing",
        "/nurses/%0B%0A%C3%BA/availability",  # control characters in a path segment
        "/%0A",
    ],
)
def test_unknown_ids_and_paths_are_404_problems(api_any_db: ApiWorld, path: str) -> None:
    _problem(api_any_db.get(path), 404)


@pytest.mark.parametrize(
    "path", ["/appointments/999/cancel", "/appointments/999/complete", "/calls/999/schedule"]
)
def test_writes_to_unknown_ids_are_404_and_write_nothing(api: ApiWorld, path: str) -> None:
    before = api.counts()
    body = {
        "cancel": {"reason_code": "other"},
        "complete": None,
        "schedule": {"start": "2025-03-05T10:00:00-05:00"},
    }[path.rsplit("/", 1)[-1]]

    response = api.post(path, json=body)

    _problem(response, 404)
    assert api.counts() == before


def test_a_wrong_method_is_405_with_allow(api: ApiWorld) -> None:
    response = api.client.delete(
        f"/api/v1/appointments/{api.ids['appointment']}", headers=api.headers("admin")
    )

    problem = _problem(response, 405)
    assert "GET" in response.headers["Allow"]
    assert problem["allowed_methods"]


@pytest.mark.parametrize("method", ["DELETE", "TRACE", "QUERY"])
def test_a_wrong_method_allows_only_the_paths_own_methods(api: ApiWorld, method: str) -> None:
    response = api.client.open("/api/v1/appointments", method=method, headers=api.headers("admin"))

    problem = _problem(response, 405)
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    assert problem["allowed_methods"] == ["GET", "HEAD", "OPTIONS", "POST"]


def test_options_lists_only_the_paths_own_methods(api: ApiWorld) -> None:
    response = api.client.options(f"/api/v1/appointments/{api.ids['appointment']}/cancel")

    assert response.status_code == 204
    assert response.headers["Allow"] == "OPTIONS, POST"


def test_options_on_an_unknown_path_is_404(api: ApiWorld) -> None:
    _problem(api.client.options("/api/v1/no-such-thing"), 404)


@pytest.mark.parametrize(
    "path",
    [
        "/appointments?start=1700000000",
        "/calls?end=0.5",
        "/nurses/1/slots?start=1700000000&end=1700086400",
        "/nurses/available?date=0",
        "/appointments?start=2101-01-01T00:00:00Z",
        "/appointments?start=1969-12-31T23:59:00Z",
        "/appointments?start=2025-03-04t10:00:00z",
    ],
)
def test_times_outside_the_documented_form_are_422(api: ApiWorld, path: str) -> None:
    problem = _problem(api.get(path), 422)

    assert any(e["field"].startswith("query.") for e in problem["errors"]), problem  # type: ignore[union-attr]


def test_a_bare_number_is_not_a_booking_time(api: ApiWorld) -> None:
    response = api.post("/appointments", json={"patient_id": 1, "start": "1741086000"})

    problem = _problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["body.start"]  # type: ignore[union-attr]


def test_the_documented_year_bounds_are_read_as_written(api: ApiWorld) -> None:
    # 2100 as written, though 2101 in UTC: the document's pattern is about the written year.
    response = api.get("/appointments?start=2100-12-31T23:00:00-05:00&end=1970-01-01T00:00:00Z")

    assert response.status_code == 200, response.get_data(as_text=True)


def test_an_integer_written_with_a_zero_fraction_is_an_integer(api: ApiWorld) -> None:
    body = {
        "patient_id": float(api.ids["patient"]),
        "start": "2025-03-04T14:00:00-05:00",
        "duration_minutes": 30.0,
    }

    response = api.post("/appointments", json=body)

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["duration_minutes"] == 30


@pytest.mark.parametrize("key", ["", "   ", "k" * 201, "a\x00b", "tab\there"])
def test_an_idempotency_key_outside_its_documented_schema_is_422(
    api_any_db: ApiWorld, key: str
) -> None:
    api = api_any_db  # a NUL used to reach PostgreSQL, which refuses it in text: a 500
    body = {"patient_id": api.ids["patient"], "start": "2025-03-04T14:00:00-05:00"}

    problem = _problem(api.post("/appointments", json=body, headers={"Idempotency-Key": key}), 422)

    assert [e["field"] for e in problem["errors"]] == ["header.Idempotency-Key"]  # type: ignore[union-attr]
