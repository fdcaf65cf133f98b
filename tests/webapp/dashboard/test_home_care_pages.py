"""Home care in the dashboard: the patient's address and contact, and where visits happen."""

from __future__ import annotations

import re

from sqlalchemy import select

from core.models import Appointment, AppointmentKind, Patient
from tests.webapp.dashboard.conftest import Dashboard

NEW_PATIENT = {
    "first_name": "Margaret",
    "last_name": "Hughes",
    "date_of_birth": "1941-02-17",
    "phone": "+1 (202) 555-0142",
    "time_zone": "America/New_York",
    "preferred_language": "en",
    "address_line1": "9 Birch Lane",
    "address_line2": "",
    "address_city": "Bethesda",
    "address_region": "MD",
    "address_postal_code": "20814",
    "emergency_contact_name": "Ann Hughes",
    "emergency_contact_relationship": "Daughter",
    "emergency_contact_phone": "+12025550143",
}


def test_a_coordinator_adds_a_patient_with_address_and_emergency_contact(
    any_dash: Dashboard,
) -> None:
    response = any_dash.post("coordinator", "/patients/new", NEW_PATIENT)
    assert response.status_code == 303
    patient = any_dash.scalar(select(Patient).where(Patient.last_name == "Hughes"))
    assert patient.address == "9 Birch Lane, Bethesda, MD 20814"
    page = any_dash.client("coordinator").get(f"/patients/{patient.id}").get_data(as_text=True)
    assert "9 Birch Lane, Bethesda, MD 20814" in page
    assert "Ann Hughes (Daughter), +12025550143" in page


def test_every_problem_in_the_patient_form_shows_beside_its_field_at_once(
    any_dash: Dashboard,
) -> None:
    before = any_dash.count(Patient)
    bad = {
        **NEW_PATIENT,
        "first_name": "",
        "date_of_birth": "yesterday",
        "email": "not-an-email",
        "address_line1": "",
        "emergency_contact_phone": "",
    }
    response = any_dash.post("coordinator", "/patients/new", bad)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for field in (
        "first_name",
        "date_of_birth",
        "email",
        "address_line1",
        "emergency_contact_phone",
    ):
        assert f'id="{field}-error"' in html, field
    assert "5 fields need attention" in html
    assert any_dash.count(Patient) == before


def test_editing_keeps_the_typed_values_and_saves_nothing_on_error(any_dash: Dashboard) -> None:
    patient_id = any_dash.ids["patient"]
    response = any_dash.post(
        "coordinator",
        f"/patients/{patient_id}/edit",
        {**NEW_PATIENT, "phone": "+12025550101", "address_city": "", "address_line1": "1 New St"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="address_city-error"' in html and 'value="1 New St"' in html
    patient = any_dash.scalar(select(Patient).where(Patient.id == patient_id))
    assert patient.address_line1 == "412 Maple Avenue"  # the demo address, unchanged


def test_a_home_visit_shows_its_address_to_the_nurse(any_dash: Dashboard) -> None:
    home = any_dash.scalar(
        select(Appointment)
        .where(Appointment.kind == AppointmentKind.HOME_VISIT)
        .order_by(Appointment.start_at)
        .limit(1)
    )
    address = any_dash.scalar(select(Patient).where(Patient.id == home.patient_id)).address
    assert address  # every demo patient has one
    page = any_dash.client("coordinator").get(f"/appointments/{home.id}").get_data(as_text=True)
    assert f'<dd id="visit-address">{address}</dd>' in page
    day = home.start_at.date().isoformat()
    calendar = (
        any_dash.client("coordinator")
        .get(f"/nurses/{home.nurse_id}/calendar?date={day}&view=week")
        .get_data(as_text=True)
    )
    assert re.search(r'class="address">' + re.escape(address), calendar)
