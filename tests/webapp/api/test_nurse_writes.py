"""Nurses written through the API: add, change, deactivate with a handover, weekly hours and
overrides, with the collisions reported as the dashboard reports them."""

from __future__ import annotations

from typing import Any

import pytest

from core.models import (
    Appointment,
    AuditEvent,
    Nurse,
    NurseAvailability,
    NurseAvailabilityOverride,
    PatientNurseAssignment,
)
from tests.webapp.api.conftest import ApiWorld

WEEKDAY_NOONS = [{"weekday": day, "start": "12:00", "end": "17:00"} for day in range(5)]


def nurse_records(api: ApiWorld) -> tuple[int, ...]:
    """What a refused nurse write must leave as it was."""
    return tuple(
        api.count(model)
        for model in (
            Nurse,
            NurseAvailability,
            NurseAvailabilityOverride,
            PatientNurseAssignment,
            Appointment,
            AuditEvent,
        )
    )


def test_an_admin_adds_a_nurse_with_the_usual_settings_and_a_retry_replays_it(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    body = {"first_name": "Grace", "last_name": "Hopper", "time_zone": "America/Denver"}

    added = api.send("POST", "/nurses", "admin", body, key="grace")
    assert added.status_code == 201, added.get_json()
    nurse = added.get_json()
    assert (nurse["title"], nurse["visit_minutes"], nurse["active"]) == ("RN", 30, True)
    assert api.audit_trail()[-1] == ("nurse.created", f"user:{api.ids['admin_user']}", nurse["id"])

    before = nurse_records(api)
    assert api.send("POST", "/nurses", "admin", body, key="grace").get_json() == nurse
    assert nurse_records(api) == before
    assert api.get(f"/nurses/{nurse['id']}", "coordinator").get_json() == nurse


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"time_zone": "Atlantis/Capital"}, "time_zone"),
        ({"phone": "12"}, "phone"),
        ({"email": "nobody"}, "email"),
        ({"visit_minutes": 4}, "body.visit_minutes"),
        ({"visit_minutes": 30.5}, "body.visit_minutes"),
        ({"first_name": ""}, "body.first_name"),
        ({"active": False}, "body.active"),
    ],
)
def test_a_nurse_the_services_or_schema_refuse_is_422_and_adds_nothing(
    api: ApiWorld, changes: dict[str, Any], field: str
) -> None:
    body = {"first_name": "Grace", "last_name": "Hopper", "time_zone": "UTC", **changes}
    before = nurse_records(api)

    response = api.send("POST", "/nurses", "coordinator", body)

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"][0]["field"] == field
    assert nurse_records(api) == before


def test_patching_a_nurse_changes_her_settings_but_not_her_activity_while_she_has_patients(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    path = f"/nurses/{api.ids['nurse']}"

    changed = api.send("PATCH", path, "coordinator", {"visit_minutes": 45, "daily_cap": 6})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["visit_minutes"] == 45

    before = nurse_records(api)
    refused = api.send("PATCH", path, "coordinator", {"active": False, "visit_minutes": 60})
    assert refused.status_code == 422
    assert refused.get_json()["errors"][0]["field"] == "active"
    assert api.get(path).get_json()["visit_minutes"] == 45
    assert api.send("PATCH", path, "admin", {"time_zone": None}).status_code == 422
    assert nurse_records(api) == before


def test_deactivating_hands_over_her_patients_and_visits_all_at_once_or_not_at_all(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    leaving, taking = api.ids["other_nurse"], api.ids["nurse"]
    path = f"/nurses/{leaving}/deactivate"
    before = nurse_records(api)

    unplanned = api.post(path, "coordinator", {})
    assert unplanned.status_code == 422
    assert unplanned.get_json()["errors"][0]["field"] == f"patient-{api.ids['foreign_patient']}"
    half = api.post(
        path,
        "coordinator",
        {"patients": [{"patient_id": api.ids["foreign_patient"], "nurse_id": taking}]},
    )
    assert half.status_code == 422
    assert half.get_json()["errors"][0]["field"] == f"visit-{api.ids['foreign_appointment']}"
    assert nurse_records(api) == before

    done = api.post(
        path,
        "coordinator",
        {
            "patients": [{"patient_id": api.ids["foreign_patient"], "nurse_id": taking}],
            "visits": [{"appointment_id": api.ids["foreign_appointment"], "nurse_id": None}],
        },
        headers={"Idempotency-Key": "leave"},
    )
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["active"] is False
    visit = api.get(f"/appointments/{api.ids['foreign_appointment']}").get_json()
    assert (visit["status"], visit["cancel_reason"]) == ("cancelled", "nurse_unavailable")
    team = api.get(f"/patients/{api.ids['foreign_patient']}/assignments").get_json()
    assert team["primary"]["nurse_id"] == taking
    assert api.audit_trail()[-1][0] == "nurse.deactivated"
    replay = api.post(path, "coordinator", {}, headers={"Idempotency-Key": "leave"})
    assert replay.status_code == 422  # the key was sent with another body
    again = api.post(path, "coordinator", {})
    assert again.status_code == 409 and again.get_json()["code"] == "invalid_state"
    back = api.send("PATCH", f"/nurses/{leaving}", "admin", {"active": True})
    assert back.get_json()["active"] is True


def test_new_weekly_hours_are_saved_and_list_the_visits_left_outside_them(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    path = f"/nurses/{api.ids['nurse']}/weekly-hours"

    saved = api.send("PUT", path, "coordinator", {"windows": WEEKDAY_NOONS}, key="noons")
    assert saved.status_code == 200, saved.get_json()
    body = saved.get_json()
    assert [(w["weekday"], w["start_time"], w["end_time"]) for w in body["weekly"]] == [
        (day, "12:00", "17:00") for day in range(5)
    ]
    [outside] = body["outside_hours"]
    assert outside["appointment_id"] == api.ids["appointment"]
    assert outside["start"].startswith("2025-03-04T15:00:00")
    assert (
        api.send("PUT", path, "coordinator", {"windows": WEEKDAY_NOONS}, key="noons").get_json()
        == body
    )
    rules = api.get(f"/nurses/{api.ids['nurse']}/availability", "nurse").get_json()
    assert rules["weekly"] == body["weekly"]
    assert api.audit_trail()[-1] == (
        "availability.set",
        f"user:{api.ids['coordinator_user']}",
        api.ids["nurse"],
    )


@pytest.mark.parametrize(
    ("windows", "field"),
    [
        (
            [
                {"weekday": 0, "start": "09:00", "end": "12:00"},
                {"weekday": 0, "start": "11:00", "end": "13:00"},
            ],
            "windows",
        ),
        ([{"weekday": 1, "start": "17:00", "end": "09:00"}], "windows[0]"),
        ([{"weekday": 7, "start": "09:00", "end": "12:00"}], "body.windows.0.weekday"),
        ([{"weekday": 1, "start": "9:00", "end": "12:00"}], "body.windows.0.start"),
    ],
)
def test_weekly_hours_that_overlap_or_end_early_are_422_and_the_old_hours_stay(
    api: ApiWorld, windows: list[dict[str, Any]], field: str
) -> None:
    path = f"/nurses/{api.ids['nurse']}"
    hours = api.get(f"{path}/availability").get_json()["weekly"]
    before = nurse_records(api)

    response = api.send("PUT", f"{path}/weekly-hours", "admin", {"windows": windows})

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"][0]["field"] == field
    assert api.get(f"{path}/availability").get_json()["weekly"] == hours
    assert nurse_records(api) == before


def test_time_off_over_a_visit_is_saved_with_the_collision_listed_and_can_be_removed(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    path = f"/nurses/{api.ids['nurse']}/overrides"
    body = {"start_date": "2025-03-04", "start_time": "09:30", "end_time": "11:00"}

    added = api.send("POST", path, "coordinator", body, key="dentist")
    assert added.status_code == 201, added.get_json()
    result = added.get_json()
    assert result["override"]["kind"] == "time_off"
    assert [c["appointment_id"] for c in result["collisions"]] == [api.ids["appointment"]]
    assert api.send("POST", path, "coordinator", body, key="dentist").get_json() == result
    assert api.count(NurseAvailabilityOverride) == 1
    override_id = result["override"]["id"]
    listed = api.get(f"/nurses/{api.ids['nurse']}/availability").get_json()["overrides"]
    assert [o["id"] for o in listed] == [override_id]

    elsewhere = api.send("DELETE", f"/nurses/{api.ids['other_nurse']}/overrides/{override_id}")
    assert elsewhere.status_code == 404
    removed = api.send("DELETE", f"{path}/{override_id}", "coordinator")
    assert removed.status_code == 200, removed.get_json()
    assert removed.get_json() == {"override_id": override_id, "outside_hours": []}
    assert api.send("DELETE", f"{path}/{override_id}", "coordinator").status_code == 404
    actions = [action for action, _, _ in api.audit_trail()]
    assert actions[-2:] == ["override.added", "override.removed"]


def test_removing_extra_hours_lists_the_visit_booked_in_them(api: ApiWorld) -> None:
    path = f"/nurses/{api.ids['nurse']}/overrides"
    extra = api.post(
        path,
        "admin",
        {
            "kind": "extra_hours",
            "start_date": "2025-03-08",
            "start_time": "10:00",
            "end_time": "12:00",
        },
    ).get_json()
    booked = api.post(
        "/appointments",
        "admin",
        {"patient_id": api.ids["patient"], "start": "2025-03-08T10:00:00-05:00"},
    )
    assert booked.status_code == 201, booked.get_json()

    removed = api.send("DELETE", f"{path}/{extra['override']['id']}", "admin").get_json()

    assert [v["appointment_id"] for v in removed["outside_hours"]] == [booked.get_json()["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start_date": "2025-03-05", "end_date": "2025-03-04"}, "end_date"),
        ({"start_date": "2025-03-05", "start_time": "10:00"}, "end_time"),
        ({"start_date": "2025-03-05", "start_time": "10:00", "end_time": "09:00"}, "end_time"),
        ({"start_date": "2025-03-05", "end_date": "2026-03-06"}, "end_date"),
        ({"start_date": "2025-03-05", "kind": "holiday"}, "body.kind"),
    ],
)
def test_an_override_the_services_or_schema_refuse_is_422_and_adds_nothing(
    api: ApiWorld, body: dict[str, Any], field: str
) -> None:
    before = nurse_records(api)

    response = api.post(f"/nurses/{api.ids['nurse']}/overrides", "coordinator", body)

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"][0]["field"] == field
    assert nurse_records(api) == before
