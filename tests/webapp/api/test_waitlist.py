"""The waitlist through the API: join, list, a cancel offering the time, accept and decline."""

from __future__ import annotations

from typing import Any

import pytest

from core.models import Appointment, AuditEvent, WaitlistEntry
from tests.webapp.api.conftest import ApiWorld

TUESDAY_TEN = "2025-03-04T10:00:00-05:00"  # the world's own visit with nurse 1


def join_body(api: ApiWorld, **changes: Any) -> dict[str, Any]:
    """The second patient waits for any of their nurses this week, mornings."""
    body: dict[str, Any] = {
        "patient_id": api.ids["second_patient"],
        "until_date": "2025-03-07",
        "weekdays": ["tue", "mon", "tue"],
        "parts_of_day": ["morning"],
    }
    body.update(changes)
    return body


def free_tuesday_ten(api: ApiWorld) -> None:
    """Cancel the world's Tuesday 10:00 visit through the API."""
    response = api.post(
        f"/appointments/{api.ids['appointment']}/cancel",
        "coordinator",
        {"reason_code": "patient_request"},
    )
    assert response.status_code == 200, response.get_json()


def test_joining_is_201_and_a_cancelled_visit_is_held_for_the_patient_then_accepted(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    joined = api.post("/waitlist", "coordinator", join_body(api))
    assert joined.status_code == 201, joined.get_json()
    entry = joined.get_json()
    assert entry["weekdays"] == ["mon", "tue"] and entry["parts_of_day"] == ["morning"]
    assert (entry["status"], entry["from_date"], entry["nurse_id"]) == (
        "waiting",
        "2025-03-03",
        None,
    )

    free_tuesday_ten(api)
    listed = api.get("/waitlist?status=offered", "coordinator").get_json()
    assert [e["id"] for e in listed["items"]] == [entry["id"]]
    [offer] = listed["items"][0]["offers"]
    assert (offer["status"], offer["held"]) == ("offered", True)
    assert offer["start"].startswith("2025-03-04T15:00:00")

    # Held: the time is busy for another patient.
    taken = api.post(
        "/appointments",
        "coordinator",
        {"patient_id": api.ids["patient"], "start": TUESDAY_TEN},
    )
    assert taken.status_code == 409

    accepted = api.post(f"/waitlist-offers/{offer['id']}/accept", "coordinator")
    assert accepted.status_code == 200, accepted.get_json()
    visit = accepted.get_json()
    assert visit["patient_id"] == api.ids["second_patient"]
    assert visit["start"] == offer["start"]
    again = api.post(f"/waitlist-offers/{offer['id']}/accept", "coordinator")
    assert again.get_json()["id"] == visit["id"]
    assert api.get(f"/waitlist/{entry['id']}", "coordinator").get_json()["status"] == "booked"
    declined = api.post(f"/waitlist-offers/{offer['id']}/decline", "coordinator")
    assert declined.status_code == 409
    assert declined.get_json()["code"] == "invalid_state"


def test_declining_keeps_the_patient_waiting_and_cancelling_takes_them_off(
    api: ApiWorld,
) -> None:
    entry = api.post("/waitlist", "admin", join_body(api)).get_json()
    free_tuesday_ten(api)
    [offer] = api.get(f"/waitlist/{entry['id']}").get_json()["offers"]
    declined = api.post(f"/waitlist-offers/{offer['id']}/decline", "admin")
    assert declined.status_code == 200
    assert (declined.get_json()["status"], declined.get_json()["held"]) == ("declined", False)
    assert api.get(f"/waitlist/{entry['id']}").get_json()["status"] == "waiting"
    accept = api.post(f"/waitlist-offers/{offer['id']}/accept", "admin")
    assert accept.status_code == 409
    before = api.count(Appointment)
    cancelled = api.post(f"/waitlist/{entry['id']}/cancel", "admin")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert api.count(Appointment) == before
    listed = api.get(f"/waitlist?patient_id={api.ids['second_patient']}&status=waiting")
    assert listed.get_json()["items"] == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"until_date": "2025-03-02", "from_date": "2025-03-05"}, "until_date"),
        ({"from_date": "2025-03-01"}, "from_date"),
        ({"until_date": "2025-09-01"}, "until_date"),
        ({"weekdays": ["someday"]}, "weekdays"),
        ({"parts_of_day": ["night"]}, "parts_of_day"),
        ({"kind": "house_call"}, "kind"),
        ({"nurse_id": 2}, "nurse_id"),  # not on this patient's care team
        ({"until_date": None}, "until_date"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_nothing_written(
    api: ApiWorld, changes: dict[str, Any], field: str
) -> None:
    before = api.count(WaitlistEntry), api.count(AuditEvent)
    response = api.post("/waitlist", "coordinator", join_body(api, **changes))
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    fields = [e["field"] for e in problem.get("errors") or []] + [problem.get("field")]
    assert any(f and field in f for f in fields), problem
    assert (api.count(WaitlistEntry), api.count(AuditEvent)) == before


def test_a_patient_already_waiting_is_409_and_unknown_records_404(api: ApiWorld) -> None:
    assert api.post("/waitlist", "admin", join_body(api)).status_code == 201
    again = api.post("/waitlist", "admin", join_body(api))
    assert again.status_code == 409 and again.get_json()["code"] == "invalid_state"
    assert api.post("/waitlist", "admin", join_body(api, patient_id=999)).status_code == 404
    assert api.get("/waitlist/999").status_code == 404
    assert api.post("/waitlist-offers/999/accept").status_code == 404


def test_only_coordinators_and_admins_may_use_the_waitlist(api: ApiWorld) -> None:
    assert api.post("/waitlist", "nurse", join_body(api)).status_code == 403
    assert api.get("/waitlist", "nurse").status_code == 403
    assert api.get("/waitlist", None).status_code == 401
    assert api.count(WaitlistEntry) == 0


def test_bringing_a_visit_earlier_moves_it_when_accepted(api: ApiWorld) -> None:
    later = api.post(
        "/appointments",
        "coordinator",
        {"patient_id": api.ids["second_patient"], "start": "2025-03-06T11:00:00-05:00"},
    ).get_json()
    others = api.post(
        "/waitlist",
        "coordinator",
        join_body(api, appointment_id=api.ids["appointment"], until_date="2025-03-04"),
    )
    assert others.status_code == 422  # the world's visit is the first patient's
    assert others.get_json()["errors"][0]["field"] == "appointment_id"
    joined = api.post(
        "/waitlist",
        "coordinator",
        join_body(api, appointment_id=later["id"], until_date="2025-03-06"),
    )
    assert joined.status_code == 201, joined.get_json()
    assert joined.get_json()["appointment_id"] == later["id"]
    free_tuesday_ten(api)
    [offer] = api.get("/waitlist?status=offered", "coordinator").get_json()["items"][0]["offers"]
    moved = api.post(f"/waitlist-offers/{offer['id']}/accept", "coordinator").get_json()
    assert moved["rescheduled_from_id"] == later["id"] and moved["start"] == offer["start"]
    old = api.get(f"/appointments/{later['id']}", "coordinator").get_json()
    assert old["status"] == "cancelled"
