"""Patients: create, edit, search, pagination, and the primary/backup nurse."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from core.db import make_engine, make_session_factory, transaction
from core.models import AuditEvent, Nurse, Patient, PatientNurseAssignment
from core.services.common import Actor
from core.services.people import create_patient
from tests.webapp.dashboard.conftest import Dashboard

NEW_PATIENT = {
    "first_name": "Grace",
    "last_name": "Hopper",
    "date_of_birth": "1946-12-09",
    "phone": "+12025550177",
    "email": "",
    "time_zone": "America/Denver",
    "preferred_language": "en",
    "conditions": "Dementia, Fall risk",
    "sms_consent": "on",
    "notes": "",
}


def _add_patients(dash: Dashboard, count: int) -> None:
    engine = make_engine(dash.url)
    try:
        with transaction(make_session_factory(engine)) as session:
            for i in range(count):
                create_patient(
                    session,
                    actor=Actor.cli(),
                    now=datetime.now(UTC),
                    first_name=f"Pat{i:03d}",
                    last_name="Bulk",
                    date_of_birth=date(1950, 1, 1),
                    phone=f"+1202555{2000 + i:04d}",
                    time_zone="America/New_York",
                )
    finally:
        engine.dispose()


def test_a_coordinator_adds_a_patient(dash: Dashboard) -> None:
    response = dash.post("coordinator", "/patients/new", NEW_PATIENT)
    assert response.status_code == 303
    patient = dash.scalar(select(Patient).where(Patient.last_name == "Hopper"))
    assert patient.conditions == ["Dementia", "Fall risk"] and patient.sms_consent is True


def test_bad_patient_input_is_422_next_to_the_field_and_writes_nothing(dash: Dashboard) -> None:
    before = dash.count(Patient)
    for field, value, message in [
        ("date_of_birth", "yesterday", "must be a date"),
        ("date_of_birth", "2999-01-01", "not possible"),
        ("phone", "+12025550101", "already has that phone number"),
        ("last_name", "", "Last name is required."),
        ("email", "not-an-email", "does not look right"),
    ]:
        response = dash.post("coordinator", "/patients/new", {**NEW_PATIENT, field: value})
        html = response.get_data(as_text=True)
        assert response.status_code == 422, field
        assert f'id="{field}-error"' in html and message in html, field
    assert dash.count(Patient) == before


def test_editing_a_patient_saves_the_changes(dash: Dashboard) -> None:
    patient_id = dash.ids["patient"]
    data = {**NEW_PATIENT, "first_name": "Johnny", "phone": "+12025550101"}
    response = dash.post("coordinator", f"/patients/{patient_id}/edit", data)
    assert response.status_code == 303
    assert dash.scalar(select(Patient.first_name).where(Patient.id == patient_id)) == "Johnny"


def test_patient_search_and_pages(dash: Dashboard) -> None:
    _add_patients(dash, 30)
    client = dash.client("coordinator")
    first = client.get("/patients/?q=bulk").get_data(as_text=True)
    assert "Page 1 of 2 (30)" in first and "Pat000 Bulk" in first and "Pat029" not in first
    second = client.get("/patients/?q=bulk&page=2", headers={"HX-Request": "true"})
    assert "Pat029 Bulk" in second.get_data(as_text=True)
    by_phone = client.get("/patients/?q=5550103").get_data(as_text=True)
    assert "Robert Brown" in by_phone and "John Smith" not in by_phone


def test_a_nurse_lists_only_their_own_patients(dash: Dashboard) -> None:
    html = dash.client("nurse").get("/patients/").get_data(as_text=True)
    assert "John Smith" in html and "Sarah Johnson" in html
    assert "Emily Davis" not in html and "Robert Brown" not in html


def test_a_patient_without_a_primary_gets_ranked_proposals_confirmed_in_one_click(
    dash: Dashboard,
) -> None:
    dash.post("coordinator", "/patients/new", NEW_PATIENT)
    patient_id = dash.scalar(select(Patient.id).where(Patient.last_name == "Hopper"))
    page = dash.client("coordinator").get(f"/patients/{patient_id}").get_data(as_text=True)
    assert "Suggested primary nurses" in page
    assert "Covers 2 of 2 conditions" in page  # geriatrics covers dementia and fall risk
    thompson = dash.scalar(select(Nurse.id).where(Nurse.last_name == "Thompson"))
    response = dash.post(
        "coordinator",
        f"/patients/{patient_id}/assign",
        {"nurse_id": str(thompson), "role": "primary"},
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<section id="care-team"')
    assert "Suggested primary nurses" not in html
    assert dash.count(PatientNurseAssignment, PatientNurseAssignment.patient_id == patient_id) == 1


def test_assigning_the_primary_as_backup_too_is_refused_in_place(dash: Dashboard) -> None:
    patient_id, nurse_id = dash.ids["patient"], dash.ids["nurse"]
    before = dash.count(PatientNurseAssignment)
    response = dash.post(
        "coordinator",
        f"/patients/{patient_id}/assign",
        {"nurse_id": str(nurse_id), "role": "backup"},
    )
    assert response.status_code == 422
    assert "already this patient" in response.get_data(as_text=True)
    assert dash.count(PatientNurseAssignment) == before


def test_a_coordinator_removes_the_backup_nurse_from_the_care_team(dash: Dashboard) -> None:
    john = dash.ids["patient"]  # primary Dr. Alice Wilson, backup Dr. Chen
    backup = dash.scalar(
        select(PatientNurseAssignment).where(
            PatientNurseAssignment.patient_id == john, PatientNurseAssignment.role == "backup"
        )
    )
    page = dash.client("coordinator").get(f"/patients/{john}").get_data(as_text=True)
    end = f"/patients/{john}/assignments/{backup.id}/end"
    assert f'hx-post="{end}"' in page and "hx-confirm=" in page
    before = dash.count(AuditEvent, AuditEvent.action == "assignment.ended")

    removed = dash.post("coordinator", end, headers={"HX-Request": "true"})
    html = removed.get_data(as_text=True)
    assert removed.status_code == 200 and html.lstrip().startswith('<section id="care-team"')
    assert '<dd id="backup-nurse">None' in html and "Alice Wilson" in html
    assert dash.count(AuditEvent, AuditEvent.action == "assignment.ended") == before + 1
    other = dash.ids["other_patient"]
    assert dash.post(
        "coordinator", f"/patients/{other}/assignments/{backup.id}/end"
    ).status_code in (
        404,
        422,
    )
    assert dash.count(AuditEvent, AuditEvent.action == "assignment.ended") == before + 1
