"""The product brief's endpoints: aliases that answer exactly as the operations they name."""

from __future__ import annotations

from typing import Any

import pytest

from core.models import Appointment
from tests.webapp.api.conftest import ApiWorld, Recorder, calls_set_up
from webapp.api.openapi import openapi_document

BRIEF_PATHS = {
    ("get", "/api/v1/nurses/available/"),
    ("get", "/api/v1/nurses/{nurse_id}/availability/"),
    ("post", "/api/v1/calls/{call_id}/schedule/"),
    ("get", "/api/v1/patients/{phone}/assigned-nurse/"),
    ("get", "/api/v1/appointments/"),
    ("post", "/api/v1/appointments/"),
    ("get", "/api/v1/appointments/{appointment_id}/"),
    ("get", "/api/v1/calls/history/"),
    ("get", "/api/v1/calls/{call_id}/transcript/"),
    ("get", "/api/v1/calls/{call_id}/details/"),
    ("get", "/api/v1/transcripts/"),
    ("post", "/api/v1/make-call/"),
    ("get", "/api/v1/test-openai/"),
}
# Each brief path (with ids of the world) and the operation's own path.
READS = [
    ("/nurses/available/?date=2025-03-04", "/nurses/available?date=2025-03-04"),
    ("/nurses/{nurse}/availability/", "/nurses/{nurse}/availability"),
    (
        "/patients/%2B12025550101/assigned-nurse/",
        "/patients/by-phone/%2B12025550101/assigned-nurse",
    ),
    ("/appointments/?status=scheduled", "/appointments?status=scheduled"),
    ("/appointments/{appointment}/", "/appointments/{appointment}"),
    ("/calls/history/", "/calls"),
    ("/calls/{call}/transcript/", "/calls/{call}/transcript"),
    ("/calls/{call}/details/", "/calls/{call}"),
    ("/transcripts/", "/transcripts"),
]


def test_every_brief_endpoint_is_documented_as_an_alias_of_an_operation() -> None:
    document = openapi_document()
    by_id = {
        entry["operationId"]: (method, path)
        for path, methods in document["paths"].items()
        for method, entry in methods.items()
    }
    aliases = {
        (method, path): entry
        for path, methods in document["paths"].items()
        for method, entry in methods.items()
        if "x-alias-of" in entry
    }

    assert set(aliases) == BRIEF_PATHS
    for (method, path), entry in aliases.items():
        target_method, target_path = by_id[entry["x-alias-of"]]
        assert target_method == method and target_path != path
        assert entry["summary"].startswith(f"Alias of {method.upper()} {target_path} (")
        assert entry["deprecated"] is False
        target = document["paths"][target_path][method]
        assert entry["responses"] == target["responses"]
        assert entry.get("requestBody") == target.get("requestBody")
        assert entry.get("x-roles") == target.get("x-roles")


@pytest.mark.parametrize(("brief", "own"), READS)
@pytest.mark.parametrize("role", ["admin", "nurse"])
def test_each_brief_read_answers_as_the_operation_it_aliases(
    api: ApiWorld, brief: str, own: str, role: str
) -> None:
    ids = {
        "nurse": api.ids["nurse"],
        "appointment": api.ids["appointment"],
        "call": api.ids["call"],
    }

    aliased = api.get(brief.format(**ids), role)
    original = api.get(own.format(**ids), role)

    assert aliased.status_code == original.status_code == 200
    assert aliased.get_json() == original.get_json()


def test_a_nurse_token_is_refused_the_brief_path_as_the_operation_refuses_it(
    api: ApiWorld,
) -> None:
    others = api.get(f"/appointments/{api.ids['foreign_appointment']}/", "nurse")
    openai = api.get("/test-openai/", "nurse")
    call = api.post("/make-call/", "nurse", {"patient_id": api.ids["patient"]})

    assert others.status_code == 404
    assert (openai.status_code, call.status_code) == (403, 403)
    assert api.get("/calls/history/", None).status_code == 401


def test_booking_at_the_brief_path_books_once_per_idempotency_key(api_any_db: ApiWorld) -> None:
    api = api_any_db
    body = {"patient_id": api.ids["patient"], "start": "2025-03-05T11:00:00-05:00"}

    first = api.post("/appointments/", "coordinator", body, headers={"Idempotency-Key": "b1"})
    again = api.post("/appointments", "coordinator", body, headers={"Idempotency-Key": "b1"})
    taken = api.post("/appointments/", "coordinator", body)

    assert first.status_code == 201, first.get_json()
    assert (again.status_code, again.get_json()["id"]) == (200, first.get_json()["id"])
    assert taken.status_code == 409 and taken.get_json()["alternatives"]
    assert api.count(Appointment) == 3


def test_scheduling_from_a_call_books_for_the_calls_patient_linked_to_the_call(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    path = f"/calls/{api.ids['call']}/schedule/"

    booked = api.post(path, "nurse", {"start": "2025-03-05T14:00:00-05:00"})
    unknown_caller = api.post(
        f"/calls/{api.ids['unknown_call']}/schedule/", "admin", {"start": "2025-03-05T15:00:00Z"}
    )

    assert booked.status_code == 201, booked.get_json()
    visit = booked.get_json()
    assert (visit["patient_id"], visit["call_id"], visit["nurse_id"]) == (
        api.ids["patient"],
        api.ids["call"],
        api.ids["nurse"],
    )
    assert unknown_caller.status_code == 422
    assert api.count(Appointment) == 3


def test_make_call_asks_the_voice_service_as_post_calls_does(
    api: ApiWorld, loopback: tuple[str, type[Recorder]]
) -> None:
    url, voice = loopback
    voice.answers["/make-call"] = (201, {"call_id": 7, "call_sid": "CA7", "status": "queued"})
    calls_set_up(api)
    api.app.config.update(VOICE_SERVICE_URL=url, INTERNAL_API_TOKEN="t")

    placed = api.post("/make-call/", "coordinator", {"patient_id": api.ids["patient"]})

    assert placed.status_code == 202, placed.get_json()
    assert placed.get_json() == {"call_id": 7, "call_sid": "CA7", "status": "queued"}
    seen: list[dict[str, Any]] = voice.seen
    assert [r["json"]["patient_id"] for r in seen] == [api.ids["patient"]]


def test_test_openai_reports_an_unconfigured_key_to_an_admin(api: ApiWorld) -> None:
    api.app.config["OPENAI_API_KEY"] = ""

    checked = api.get("/test-openai/", "admin")

    assert checked.status_code == 200
    assert checked.get_json()["configured"] is False
