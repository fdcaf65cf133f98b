"""Appointments through the API: the same rules, conflicts and alternatives as everywhere."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.models import Appointment, AuditEvent
from tests.webapp.api.conftest import ApiWorld
from webapp import db

TAKEN = "2025-03-04T10:00:00-05:00"  # the world's own appointment with nurse 1
FREE = "2025-03-04T11:00:00-05:00"


def test_booking_returns_201_with_iso_times_and_writes_one_appointment(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    before = api.count(Appointment)

    response = api.post(
        "/appointments",
        "coordinator",
        {"patient_id": api.ids["patient"], "start": FREE, "kind": "video", "reason": "Check-in"},
    )

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["start"] == "2025-03-04T16:00:00Z"
    assert body["start_local"] == "2025-03-04T11:00:00-05:00"
    assert body["nurse_id"] == api.ids["nurse"]
    assert (body["kind"], body["status"], body["source"]) == ("video", "scheduled", "api")
    assert api.count(Appointment) == before + 1


def test_a_taken_slot_is_409_with_alternatives_and_writes_nothing(api_any_db: ApiWorld) -> None:
    api = api_any_db
    before = api.counts()

    response = api.post(
        "/appointments", "admin", {"patient_id": api.ids["patient"], "start": TAKEN}
    )

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "slot_unavailable" and problem["reason"] == "conflict"
    assert problem["detail"]
    assert problem["alternatives"], problem
    for slot in problem["alternatives"]:
        assert slot["nurse_id"] == api.ids["nurse"]
        assert slot["start"].endswith("Z")
    # An offered alternative can be booked as it is.
    again = api.post(
        "/appointments",
        "admin",
        {"patient_id": api.ids["patient"], "start": problem["alternatives"][0]["start"]},
    )
    assert again.status_code == 201
    assert api.count(Appointment) == before[0] + 1


def test_the_same_idempotency_key_books_once(api_any_db: ApiWorld) -> None:
    api = api_any_db
    body = {"patient_id": api.ids["patient"], "start": FREE}
    key = {"Idempotency-Key": "ehr-123"}

    first = api.post("/appointments", "admin", body, headers=key)
    second = api.post("/appointments", "admin", body, headers=key)

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["id"] == second.get_json()["id"]
    assert api.count(Appointment) == 3


def test_an_idempotency_key_reused_for_another_patient_is_422(api: ApiWorld) -> None:
    key = {"Idempotency-Key": "k-1"}
    api.post(
        "/appointments", "admin", {"patient_id": api.ids["patient"], "start": FREE}, headers=key
    )

    response = api.post(
        "/appointments",
        "admin",
        {"patient_id": api.ids["second_patient"], "start": "2025-03-05T11:00:00-05:00"},
        headers=key,
    )

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "idempotency_key"


def test_a_nurse_not_assigned_to_the_patient_is_422(api: ApiWorld) -> None:
    response = api.post(
        "/appointments",
        "admin",
        {"patient_id": api.ids["patient"], "start": FREE, "nurse_id": api.ids["other_nurse"]},
    )

    assert response.status_code == 422
    assert response.get_json()["code"] == "not_assigned"


def test_get_one_appointment(api: ApiWorld) -> None:
    response = api.get(f"/appointments/{api.ids['appointment']}")

    assert response.status_code == 200
    assert response.get_json()["start_local"] == TAKEN


def test_list_filters_by_nurse_patient_status_and_range(api: ApiWorld) -> None:
    ids = api.ids

    def listed(query: str) -> list[int]:
        response = api.get(f"/appointments?{query}")
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert listed(f"nurse_id={ids['other_nurse']}") == [ids["foreign_appointment"]]
    assert listed(f"patient_id={ids['patient']}") == [ids["appointment"]]
    assert listed("status=cancelled") == []
    assert len(listed("start=2025-03-04T00:00:00-05:00&end=2025-03-05T00:00:00-05:00")) == 2
    assert listed("start=2025-03-05T00:00:00Z") == []
    # An unencoded "+" arrives as a space; it is read as the offset it was meant to be.
    assert len(listed("start=2025-03-04T00:00:00+00:00")) == 2


def test_lists_paginate_with_next_links(api: ApiWorld) -> None:
    first = api.get("/appointments?per_page=1").get_json()

    assert first["total"] == 2 and len(first["items"]) == 1 and first["prev"] is None
    second = api.client.get(first["next"], headers=api.headers("admin")).get_json()
    assert second["next"] is None and second["prev"]
    assert second["items"][0]["id"] != first["items"][0]["id"]


def test_reschedule_moves_the_visit_and_links_the_new_one(api_any_db: ApiWorld) -> None:
    api = api_any_db
    old_id = api.ids["appointment"]

    response = api.post(f"/appointments/{old_id}/reschedule", "coordinator", {"start": FREE})

    assert response.status_code == 200, response.get_json()
    new = response.get_json()
    assert new["rescheduled_from_id"] == old_id and new["start_local"] == FREE
    old = api.get(f"/appointments/{old_id}").get_json()
    assert (old["status"], old["cancel_reason"]) == ("cancelled", "rescheduled")


def test_reschedule_onto_a_taken_time_is_409_with_alternatives(api: ApiWorld) -> None:
    api.post("/appointments", "admin", {"patient_id": api.ids["second_patient"], "start": FREE})
    before = api.counts()

    response = api.post(f"/appointments/{api.ids['appointment']}/reschedule", json={"start": FREE})

    assert response.status_code == 409
    assert response.get_json()["alternatives"]
    assert api.counts() == before


def test_cancel_with_a_reason(api: ApiWorld) -> None:
    response = api.post(
        f"/appointments/{api.ids['appointment']}/cancel",
        json={"reason_code": "patient_request", "note": "Feeling better"},
    )

    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["cancel_reason"], body["cancel_note"]) == (
        "cancelled",
        "patient_request",
        "Feeling better",
    )
    assert body["cancelled_at"].endswith("Z")


def test_cancelling_twice_is_409(api: ApiWorld) -> None:
    path = f"/appointments/{api.ids['appointment']}/cancel"
    api.post(path, json={"reason_code": "other"})

    response = api.post(path, json={"reason_code": "other"})

    assert response.status_code == 409
    assert response.get_json()["code"] == "invalid_state"


def test_an_unknown_cancel_reason_is_422_naming_the_choices(api: ApiWorld) -> None:
    response = api.post(
        f"/appointments/{api.ids['appointment']}/cancel", json={"reason_code": "bored"}
    )

    assert response.status_code == 422
    problem = response.get_json()
    assert problem["errors"][0]["field"] == "body.reason_code"
    assert "patient_request" in problem["errors"][0]["message"]


@pytest.mark.parametrize(("action", "status"), [("complete", "completed"), ("no-show", "no_show")])
def test_closing_a_visit_after_it_started(api: ApiWorld, action: str, status: str) -> None:
    path = f"/appointments/{api.ids['appointment']}/{action}"
    assert api.post(path).status_code == 409  # not started yet

    api.app.config["API_CLOCK"] = lambda: api.now + timedelta(days=2)
    response = api.post(path)

    assert response.status_code == 200
    assert response.get_json()["status"] == status


def test_a_status_change_can_be_undone_once_within_the_window(api: ApiWorld) -> None:
    path = f"/appointments/{api.ids['appointment']}"
    api.app.config["API_CLOCK"] = lambda: api.now + timedelta(days=2)
    assert api.post(f"{path}/no-show").status_code == 200
    undone = api.post(f"{path}/undo")
    assert undone.status_code == 200 and undone.get_json()["status"] == "scheduled"
    again = api.post(f"{path}/undo")
    assert again.status_code == 409 and "already undone" in again.get_data(as_text=True)
    assert api.post(f"{path}/complete").status_code == 200
    api.app.config["API_CLOCK"] = lambda: api.now + timedelta(days=2, minutes=10)
    assert api.post(f"{path}/undo").status_code == 409  # the window has closed


def test_two_simultaneous_bookings_of_one_slot_give_one_201_and_one_409(
    api_any_db: ApiWorld,
) -> None:
    import threading

    api = api_any_db
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def book(patient_key: str) -> None:
        client = api.app.test_client()
        barrier.wait()
        response = client.post(
            "/api/v1/appointments",
            json={"patient_id": api.ids[patient_key], "start": FREE},
            headers=api.headers("coordinator"),
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=book, args=(key,)) for key in ("patient", "second_patient")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses) == [201, 409]
    assert api.count(Appointment) == 3


def test_a_skipped_clock_time_written_with_the_zones_offset_is_422_with_the_nearest(
    api: ApiWorld,
) -> None:
    """02:30 on 9 March 2025 does not exist in New York: booking it must not land at 03:30."""
    before = api.count(Appointment)
    for path, body in [
        ("/appointments", {"patient_id": api.ids["patient"], "start": "2025-03-09T02:30:00-05:00"}),
        (
            f"/appointments/{api.ids['appointment']}/reschedule",
            {"start": "2025-03-09T02:30:00-04:00"},
        ),
        (
            "/appointment-series",
            {
                "patient_id": api.ids["patient"],
                "start": "2025-03-09T02:30:00-05:00",
                "weekdays": ["sun"],
                "count": 2,
            },
        ),
    ]:
        response = api.post(path, "coordinator", body)
        problem = response.get_json()
        assert response.status_code == 422, (path, problem)
        assert problem["nearest"] == ["2025-03-09T01:45:00-05:00", "2025-03-09T03:00:00-04:00"]
        assert "01:45 or 03:00" in problem["detail"]
        assert problem["errors"] == [{"field": "start", "message": problem["detail"]}]
    assert api.count(Appointment) == before


def test_a_coordinator_books_past_the_horizon_with_a_reason_and_a_nurse_may_not(
    api: ApiWorld,
) -> None:
    far = "2025-06-03T11:00:00-04:00"  # 92 days ahead: past the nurse's horizon
    body = {"patient_id": api.ids["patient"], "start": far}
    refused = api.post("/appointments", "coordinator", body)
    assert refused.status_code == 409 and refused.get_json()["reason"] == "beyond_horizon"
    before = api.counts()
    blank = api.post("/appointments", "coordinator", {**body, "override_reason": "   "})
    assert blank.status_code == 422
    assert blank.get_json()["errors"][0]["field"] == "body.override_reason"
    nurse = api.post("/appointments", "nurse", {**body, "override_reason": "Asked by family"})
    assert nurse.status_code == 403
    assert api.counts() == before

    booked = api.post("/appointments", "coordinator", {**body, "override_reason": "Surgery date"})
    assert booked.status_code == 201, booked.get_json()
    assert booked.get_json()["start_local"] == far
    with api.app.app_context():
        event = db.session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "appointment.booked",
                AuditEvent.entity_id == booked.get_json()["id"],
            )
        )
        assert event is not None and event.details["override_reason"] == "Surgery date"
        assert event.details["rule_waived"] == "beyond_horizon"
