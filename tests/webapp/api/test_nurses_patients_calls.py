"""Nurses, availability, slots, a patient's assigned nurse, calls and transcripts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from core.config import Settings
from core.models import Appointment, Nurse, Patient
from tests.webapp.api.conftest import ApiWorld, Recorder, build_api_world, calls_set_up
from webapp import db


def test_nurses_search_and_active_filter(api: ApiWorld) -> None:
    with api.app.app_context():
        nurse = db.session.get(Nurse, api.ids["other_nurse"])
        assert nurse is not None
        nurse.active = False
        db.session.commit()

    found = api.get("/nurses?q=wils").get_json()["items"]
    active = api.get("/nurses?active=true").get_json()["items"]
    inactive = api.get("/nurses?active=false").get_json()["items"]
    percent = api.get("/nurses?q=%25").get_json()["items"]

    assert [n["last_name"] for n in found] == ["Wilson"]
    assert [n["id"] for n in active] == [api.ids["nurse"]]
    assert [n["id"] for n in inactive] == [api.ids["other_nurse"]]
    assert percent == []  # "%" is searched for literally, not as a wildcard


def test_available_on_a_date_lists_nurses_with_free_slots(api: ApiWorld) -> None:
    body = api.get("/nurses/available?date=2025-03-04").get_json()

    nurses = {item["nurse"]["id"]: item for item in body["items"]}
    assert set(nurses) == {api.ids["nurse"], api.ids["other_nurse"]}
    own = nurses[api.ids["nurse"]]
    starts = [slot["start"] for slot in own["slots"]]
    assert "2025-03-04T15:00:00Z" not in starts  # 10:00 New York is booked
    assert own["slot_count"] == len(own["slots"]) and starts[0] == "2025-03-04T14:00:00Z"


def test_available_at_a_time_excludes_the_nurse_booked_then(api: ApiWorld) -> None:
    booked = api.get("/nurses/available?date=2025-03-04&time=10:00").get_json()["items"]
    free = api.get("/nurses/available?date=2025-03-04&time=11:00").get_json()["items"]
    weekend = api.get("/nurses/available?date=2025-03-08").get_json()["items"]

    assert booked == []  # both nurses have a 10:00 visit
    assert len(free) == 2 and free[0]["slots"][0]["start"] == "2025-03-04T16:00:00Z"
    assert weekend == []


def test_slots_over_a_range_skip_booked_time_and_honour_the_duration(api: ApiWorld) -> None:
    path = f"/nurses/{api.ids['nurse']}/slots?start=2025-03-04T00:00:00Z&end=2025-03-05T00:00:00Z"

    default = api.get(path).get_json()
    hour = api.get(path + "&duration_minutes=60").get_json()

    assert default["duration_minutes"] == 30
    assert "2025-03-04T15:00:00Z" not in [s["start"] for s in default["items"]]
    assert hour["duration_minutes"] == 60 and len(hour["items"]) < len(default["items"])


@pytest.mark.parametrize("phone", ["+12025550101", "%2B12025550101", "+1 202 555 0101"])
def test_assigned_nurse_by_phone_in_any_common_format(api: ApiWorld, phone: str) -> None:
    response = api.get(f"/patients/by-phone/{phone}/assigned-nurse", "coordinator")

    assert response.status_code == 200
    body = response.get_json()
    assert body["patient_id"] == api.ids["patient"]
    assert body["primary"]["id"] == api.ids["nurse"] and body["backup"] is None


def test_calls_filter_by_patient_direction_and_status(api: ApiWorld) -> None:
    def ids(query: str) -> list[int]:
        response = api.get(f"/calls?{query}")
        assert response.status_code == 200, response.get_json()
        return [c["id"] for c in response.get_json()["items"]]

    assert ids(f"patient_id={api.ids['patient']}") == [api.ids["call"]]
    assert len(ids("direction=inbound&status=completed")) == 3
    assert ids("direction=outbound") == []
    assert ids("start=2025-03-03T07:30:00Z") == []


def test_a_transcript_lists_the_conversation_without_system_lines(api: ApiWorld) -> None:
    body = api.get(f"/calls/{api.ids['call']}/transcript").get_json()

    assert [line["role"] for line in body["lines"]] == ["assistant", "user"]
    assert body["summary"] == "Asked for a visit."


def test_transcripts_list_filters_by_patient(api: ApiWorld) -> None:
    everything = api.get("/transcripts").get_json()
    one = api.get(f"/transcripts?patient_id={api.ids['patient']}").get_json()

    assert everything["total"] == 2
    assert [t["call_id"] for t in one["items"]] == [api.ids["call"]]


def test_scheduling_from_a_call_books_the_calls_patient_linked_to_the_call(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db

    response = api.post(
        f"/calls/{api.ids['call']}/schedule",
        "coordinator",
        {"start": "2025-03-04T11:00:00-05:00"},
    )

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["patient_id"], body["call_id"]) == (api.ids["patient"], api.ids["call"])


def test_scheduling_from_a_call_on_a_taken_time_is_409_with_alternatives(api: ApiWorld) -> None:
    before = api.counts()

    response = api.post(
        f"/calls/{api.ids['call']}/schedule", json={"start": "2025-03-04T10:00:00-05:00"}
    )

    assert response.status_code == 409 and response.get_json()["alternatives"]
    assert api.counts() == before


def test_scheduling_from_a_call_without_a_patient_is_422(api: ApiWorld) -> None:
    response = api.post(
        f"/calls/{api.ids['unknown_call']}/schedule", json={"start": "2025-03-04T11:00:00-05:00"}
    )

    assert response.status_code == 422
    assert "no identified patient" in response.get_json()["detail"]


# --- outbound calls and the OpenAI check, against tiny loopback servers ---------------------


@pytest.fixture
def world_with(sqlite_url: str, frozen_now: Any) -> Iterator[Callable[..., ApiWorld]]:
    """Builds the API world with extra app config (once per test), disposing it afterwards."""
    built: list[ApiWorld] = []

    def build(**config: Any) -> ApiWorld:
        built.append(build_api_world(sqlite_url, frozen_now, **config))
        return built[-1]

    yield build
    for world in built:
        with world.app.app_context():
            db.engine.dispose()


def test_placing_a_call_asks_the_voice_service_with_the_internal_token(
    world_with: Callable[..., ApiWorld], loopback: tuple[str, type[Recorder]]
) -> None:
    url, handler = loopback
    handler.answers["/make-call"] = (201, {"call_id": 7, "call_sid": "CA123"})
    api = calls_set_up(world_with(VOICE_SERVICE_URL=url, INTERNAL_API_TOKEN="internal-secret"))

    response = api.post("/calls", "coordinator", {"patient_id": api.ids["patient"]})

    assert response.status_code == 202, response.get_json()
    assert response.get_json() == {"call_id": 7, "call_sid": "CA123", "status": "queued"}
    (sent,) = handler.seen
    assert sent["path"] == "/make-call" and sent["auth"] == "Bearer internal-secret"
    expected = {"patient_id": api.ids["patient"], "user_id": api.ids["coordinator_user"]}
    assert sent["json"] == expected


def test_a_failing_voice_service_is_502_and_an_unknown_patient_404(
    world_with: Callable[..., ApiWorld], loopback: tuple[str, type[Recorder]]
) -> None:
    url, handler = loopback
    handler.answers["/make-call"] = (500, {"error": "twilio down"})
    api = calls_set_up(world_with(VOICE_SERVICE_URL=url, INTERNAL_API_TOKEN="t"))

    failed = api.post("/calls", "admin", {"patient_id": api.ids["patient"]})
    unknown = api.post("/calls", "admin", {"patient_id": 999})

    assert failed.status_code == 502 and "HTTP 500" in failed.get_json()["detail"]
    assert unknown.status_code == 404
    assert len(handler.seen) == 1


def test_placing_a_call_without_an_internal_token_is_503(api: ApiWorld) -> None:
    calls_set_up(api)
    api.app.config["INTERNAL_API_TOKEN"] = ""
    api.app.config["SETTINGS"] = dataclasses.replace(
        api.app.config["SETTINGS"], internal_api_token=""
    )

    response = api.post("/calls", "admin", {"patient_id": api.ids["patient"]})

    assert response.status_code == 503


def test_placing_a_call_without_twilio_is_503_at_once_and_asks_no_one(
    world_with: Callable[..., ApiWorld], loopback: tuple[str, type[Recorder]]
) -> None:
    url, handler = loopback
    # A fresh configuration: the voice service is reachable, but nothing is set up for calls.
    fresh = Settings(database_url="sqlite://", secret_key="test-secret")
    api = world_with(SETTINGS=fresh, VOICE_SERVICE_URL=url, INTERNAL_API_TOKEN="internal-secret")

    response = api.post("/calls", "coordinator", {"patient_id": api.ids["patient"]})

    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "not_configured"
    assert problem["title"] == "The service is not configured"
    assert problem["detail"] == (
        "Phone calls: not configured (set PUBLIC_BASE_URL, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,"
        " TWILIO_PHONE_NUMBER and OPENAI_API_KEY)."
    )
    assert handler.seen == []


def test_openai_check_reports_reachable_without_revealing_the_key(
    world_with: Callable[..., ApiWorld], loopback: tuple[str, type[Recorder]]
) -> None:
    url, handler = loopback
    handler.answers["/v1/models"] = (200, {"data": []})
    api = world_with(OPENAI_BASE_URL=f"{url}/v1", OPENAI_API_KEY="sk-secret-key")

    response = api.get("/openai-check", "admin")

    body = response.get_json()
    assert response.status_code == 200 and body["reachable"] is True
    assert handler.seen[0]["auth"] == "Bearer sk-secret-key"
    assert "sk-secret-key" not in response.get_data(as_text=True)


def test_openai_check_reports_a_refusal_and_an_unreachable_endpoint(
    world_with: Callable[..., ApiWorld], loopback: tuple[str, type[Recorder]]
) -> None:
    url, handler = loopback
    handler.answers["/v1/models"] = (401, {"error": "bad key sk-secret-key"})
    api = world_with(OPENAI_BASE_URL=f"{url}/v1", OPENAI_API_KEY="sk-secret-key")

    refused = api.get("/openai-check", "admin")
    api.app.config["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    unreachable = api.get("/openai-check", "admin")

    assert refused.get_json()["reachable"] is False
    assert refused.get_json()["status_code"] == 401
    assert "sk-secret-key" not in refused.get_data(as_text=True)
    assert unreachable.get_json()["reachable"] is False and unreachable.get_json()["error"]


def test_openai_check_without_a_key_says_so(api: ApiWorld) -> None:
    api.app.config["OPENAI_API_KEY"] = ""

    body = api.get("/openai-check", "admin").get_json()

    assert body["configured"] is False and body["reachable"] is False


def test_appointment_count_is_untouched_by_reads(api: ApiWorld) -> None:
    with api.app.app_context():
        before = db.session.scalars(select(Appointment.id)).all()
    api.get("/appointments")
    with api.app.app_context():
        assert db.session.scalars(select(Appointment.id)).all() == before


def test_listing_transcripts_is_audited_with_call_ids_only(api: ApiWorld) -> None:
    from core.models import AuditEvent

    api.get("/transcripts", "coordinator")

    with api.app.app_context():
        event = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "transcripts.listed")
        )
        assert event is not None
        assert sorted(event.details["call_ids"]) == [api.ids["call"], api.ids["foreign_call"]]


def test_a_nurses_weekly_hours_and_upcoming_time_off(api: ApiWorld) -> None:
    from datetime import date

    from core.services.availability import add_override
    from core.services.common import Actor

    with api.app.app_context():
        override, _ = add_override(
            db.session,
            api.ids["nurse"],
            kind="time_off",
            start_date=date(2025, 3, 10),
            end_date=date(2025, 3, 11),
            actor=Actor.cli(),
            now=api.now,
        )
        db.session.commit()
        override_id = override.id

    body = api.get(f"/nurses/{api.ids['nurse']}/availability", "nurse").get_json()
    other = api.get(f"/nurses/{api.ids['other_nurse']}/availability", "nurse")

    assert body["time_zone"] == "America/New_York"
    assert [w["weekday"] for w in body["weekly"]] == [0, 1, 2, 3, 4]
    assert body["weekly"][0]["start_time"] == "09:00" and body["weekly"][0]["end_time"] == "17:00"
    assert body["overrides"] == [
        {
            "id": override_id,
            "kind": "time_off",
            "start_date": "2025-03-10",
            "end_date": "2025-03-11",
            "start_time": None,
            "end_time": None,
        }
    ]
    assert other.status_code == 404


def test_a_patient_shows_address_and_emergency_contact_to_those_who_may_see_them(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    with api.app.app_context():
        patient = db.session.get(Patient, api.ids["patient"])
        patient.address_line1, patient.address_city = "412 Maple Avenue", "Arlington"
        patient.address_region, patient.address_postal_code = "VA", "22201"
        patient.emergency_contact_name = "Mary Smith"
        patient.emergency_contact_phone = "+12025550111"
        db.session.commit()

    body = api.get(f"/patients/{api.ids['patient']}", "nurse").get_json()
    bare = api.get(f"/patients/{api.ids['second_patient']}", "coordinator").get_json()
    foreign = api.get(f"/patients/{api.ids['foreign_patient']}", "nurse")

    assert body["address"]["one_line"] == "412 Maple Avenue, Arlington, VA 22201"
    assert body["emergency_contact"] == {
        "name": "Mary Smith",
        "relationship": None,
        "phone": "+12025550111",
    }
    assert "conditions" not in body and "notes" not in body
    assert bare["address"] is None and bare["emergency_contact"] is None
    assert foreign.status_code == 404


def test_booking_a_home_visit_without_an_address_is_a_clear_422(api_any_db: ApiWorld) -> None:
    api = api_any_db
    before = api.counts()
    response = api.post(
        "/appointments",
        json={
            "patient_id": api.ids["second_patient"],
            "start": "2025-03-05T15:00:00Z",
            "kind": "home_visit",
        },
    )

    assert response.status_code == 422, response.get_json()
    assert "needs the patient's address" in response.get_data(as_text=True)
    assert api.counts() == before
