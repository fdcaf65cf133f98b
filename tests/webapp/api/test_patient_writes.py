"""Patients and their care team written through the API: the dashboard's services, roles,
audit trail, and answers replayed under an Idempotency-Key."""

from __future__ import annotations

from typing import Any

import pytest

from core.models import ApiIdempotentResult, AuditEvent, Patient, PatientNurseAssignment
from tests.webapp.api.conftest import ApiWorld

NEW_PATIENT: dict[str, Any] = {
    "first_name": "Ada",
    "last_name": "Quinn",
    "date_of_birth": "1938-07-14",
    "phone": "+1 (202) 555-0177",
    "time_zone": "America/Chicago",
    "conditions": ["diabetes", "Diabetes", "copd"],
    "address_line1": "12 Elm St",
    "address_city": "Springfield",
    "address_postal_code": "62704",
}


def patients_and_audit(api: ApiWorld) -> tuple[int, int, int]:
    """What a refused patient write must leave as it was."""
    return api.count(Patient), api.count(PatientNurseAssignment), api.count(AuditEvent)


def test_a_coordinator_adds_a_patient_and_a_retry_with_the_same_key_replays_the_answer(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    added = api.send("POST", "/patients", "coordinator", NEW_PATIENT, key="add-ada")

    assert added.status_code == 201, added.get_json()
    patient = added.get_json()
    assert patient["phone"] == "+12025550177"
    assert patient["address"]["one_line"] == "12 Elm St, Springfield, 62704"
    trail = api.audit_trail()
    user = f"user:{api.ids['coordinator_user']}"
    assert trail[-1] == ("patient.created", user, patient["id"])

    before = patients_and_audit(api)
    again = api.send("POST", "/patients", "coordinator", NEW_PATIENT, key="add-ada")
    assert (again.status_code, again.get_json()) == (201, patient)
    assert patients_and_audit(api) == before
    assert api.count(ApiIdempotentResult) == 1

    reused = api.send(
        "POST", "/patients", "coordinator", {**NEW_PATIENT, "phone": "+12025550178"}, key="add-ada"
    )
    assert reused.status_code == 422 and "Idempotency-Key" in reused.get_json()["detail"]
    assert patients_and_audit(api) == before
    # Keys belong to a login: the admin's own "add-ada" is another request altogether.
    other = api.send("POST", "/patients", "admin", NEW_PATIENT, key="add-ada")
    assert other.status_code == 422
    assert [e["field"] for e in other.get_json()["errors"]] == ["phone"]


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"phone": "+1202555"}, ["phone"]),
        ({"phone": "+12025550101"}, ["phone"]),  # the world's first patient has it
        ({"time_zone": "Mars/Olympus"}, ["time_zone"]),
        ({"email": "not an address"}, ["email"]),
        ({"date_of_birth": "2025-03-04"}, ["date_of_birth"]),
        ({"address_city": None}, ["address_city"]),
        (
            {"emergency_contact_name": "Bo", "time_zone": "Nowhere"},
            ["time_zone", "emergency_contact_phone"],
        ),
    ],
)
def test_details_the_service_refuses_are_422_naming_each_field_and_add_nothing(
    api: ApiWorld, changes: dict[str, Any], fields: list[str]
) -> None:
    before = patients_and_audit(api)

    response = api.send("POST", "/patients", "admin", {**NEW_PATIENT, **changes})

    assert response.status_code == 422, response.get_json()
    assert [e["field"] for e in response.get_json()["errors"]] == fields
    assert patients_and_audit(api) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in NEW_PATIENT.items() if k != "last_name"}, "body.last_name"),
        ({**NEW_PATIENT, "date_of_birth": "14/07/1938"}, "body.date_of_birth"),
        ({**NEW_PATIENT, "preferred_language": "xx"}, "body.preferred_language"),
        ({**NEW_PATIENT, "allergies": "none"}, "body.allergies"),
        ({**NEW_PATIENT, "sms_consent": "yes"}, "body.sms_consent"),
        ({**NEW_PATIENT, "first_name": "   "}, "body.first_name"),
    ],
)
def test_input_the_schema_refuses_is_422_and_adds_nothing(
    api: ApiWorld, body: dict[str, Any], field: str
) -> None:
    before = patients_and_audit(api)

    response = api.send("POST", "/patients", "coordinator", body, key="k1")

    assert response.status_code == 422
    assert field in [e["field"] for e in response.get_json()["errors"]]
    assert patients_and_audit(api) == before
    assert api.count(ApiIdempotentResult) == 0


def test_patching_changes_only_the_fields_sent_and_null_clears_an_optional_one(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    path = f"/patients/{api.ids['patient']}"
    original = api.get(path).get_json()

    changed = api.send("PATCH", path, "coordinator", {"email": "Ann@Example.org"}, key="p1")
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json() == {**original, "email": "ann@example.org"}
    assert api.send("PATCH", path, "coordinator", {"email": "Ann@Example.org"}, key="p1").get_json()
    cleared = api.send("PATCH", path, "coordinator", {"email": None})
    assert cleared.get_json()["email"] is None

    with api.app.app_context():
        from sqlalchemy import select

        from webapp import db

        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "patient.updated")
        ).all()
        assert [e.details["changes"] for e in events] == [
            {"email": [None, "ann@example.org"]},
            {"email": ["ann@example.org", None]},
        ]
        db.session.rollback()

    before = patients_and_audit(api)
    refused = api.send("PATCH", path, "admin", {"first_name": None})
    assert refused.status_code == 422
    assert refused.get_json()["errors"][0]["field"] == "body.first_name"
    taken = api.send("PATCH", path, "admin", {"phone": "+12025550103"})
    assert taken.status_code == 422 and taken.get_json()["errors"][0]["field"] == "phone"
    assert api.send("PATCH", "/patients/999999", "admin", {"email": None}).status_code == 404
    assert patients_and_audit(api) == before


def test_a_nurse_lists_only_her_patients_and_a_search_finds_by_name_or_phone(
    api: ApiWorld,
) -> None:
    everyone = api.get("/patients", "admin").get_json()
    hers = api.get("/patients", "nurse").get_json()
    by_phone = api.get("/patients?q=555-0103", "coordinator").get_json()

    assert everyone["total"] == 3
    assert {p["id"] for p in hers["items"]} == {api.ids["patient"], api.ids["second_patient"]}
    assert [p["id"] for p in by_phone["items"]] == [api.ids["foreign_patient"]]
    assert api.get("/patients?q=davis%20robert", "admin").get_json()["total"] == 1


def test_a_backup_is_assigned_shown_in_the_care_team_and_ended(api_any_db: ApiWorld) -> None:
    api = api_any_db
    team = f"/patients/{api.ids['patient']}/assignments"
    body = {"nurse_id": api.ids["other_nurse"], "role": "backup"}
    trail = len(api.audit_trail())

    assigned = api.send("POST", team, "coordinator", body, key="backup-1")
    assert assigned.status_code == 201, assigned.get_json()
    backup = assigned.get_json()
    assert (backup["role"], backup["nurse_id"], backup["valid_to"]) == (
        "backup",
        api.ids["other_nurse"],
        None,
    )
    assert api.send("POST", team, "coordinator", body, key="backup-1").get_json() == backup
    shown = api.get(team, "nurse").get_json()
    assert shown["backup"] == backup
    assert shown["primary"]["nurse_id"] == api.ids["nurse"]
    assert [a["role"] for a in shown["assignments"]] == ["primary", "backup"]

    ended = api.post(f"{team}/{backup['id']}/end", "admin")
    assert ended.status_code == 200, ended.get_json()
    assert ended.get_json()["backup"] is None
    assert [a["role"] for a in ended.get_json()["assignments"]] == ["primary"]
    # It had not begun before today, so it is gone rather than ended.
    assert api.post(f"{team}/{backup['id']}/end", "admin").status_code == 404
    user = f"user:{api.ids['admin_user']}"
    assert api.audit_trail()[trail:] == [
        ("assignment.created", f"user:{api.ids['coordinator_user']}", api.ids["patient"]),
        ("assignment.ended", user, api.ids["patient"]),
    ]


def test_assigning_refuses_a_nurse_in_the_other_role_or_unknown_and_changes_nothing(
    api: ApiWorld,
) -> None:
    team = f"/patients/{api.ids['patient']}/assignments"
    before = patients_and_audit(api)

    same = api.post(team, "admin", {"nurse_id": api.ids["nurse"], "role": "backup"})
    unknown = api.post(team, "admin", {"nurse_id": 999999})
    bad_role = api.post(team, "admin", {"nurse_id": api.ids["other_nurse"], "role": "lead"})
    foreign = api.post(f"/patients/{api.ids['patient']}/assignments/999/end", "admin")

    assert same.status_code == 422 and same.get_json()["errors"][0]["field"] == "nurse_id"
    assert unknown.status_code == 404
    assert bad_role.status_code == 422 and bad_role.get_json()["errors"][0]["field"] == "body.role"
    assert foreign.status_code == 404
    assert patients_and_audit(api) == before
