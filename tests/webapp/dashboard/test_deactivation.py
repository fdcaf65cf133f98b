"""Deactivating a nurse from the dashboard: see what it affects, choose, then all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from core.models import Appointment, Nurse, PatientNurseAssignment
from tests.webapp.dashboard.conftest import Dashboard


def _her_upcoming(dash: Dashboard, nurse_id: int) -> list[int]:
    return dash.scalars(
        select(Appointment.id).where(
            Appointment.nurse_id == nurse_id,
            Appointment.status == "scheduled",
            Appointment.end_at > datetime.now(UTC),
        )
    )


def _her_primaries(dash: Dashboard, nurse_id: int) -> list[int]:
    return dash.scalars(
        select(PatientNurseAssignment.patient_id).where(
            PatientNurseAssignment.nurse_id == nurse_id,
            PatientNurseAssignment.role == "primary",
            PatientNurseAssignment.valid_to.is_(None),
        )
    )


def test_a_missing_choice_changes_nothing_and_keeps_the_others(any_dash: Dashboard) -> None:
    dash, alice, garcia = any_dash, any_dash.ids["nurse"], any_dash.ids["other_nurse"]
    visits, patients = _her_upcoming(dash, alice), _her_primaries(dash, alice)
    choices = {f"patient-{p}": str(garcia) for p in patients}
    choices |= {f"visit-{v}": "cancel" for v in visits[1:]}  # the first is left unchosen
    response = dash.post("coordinator", f"/nurses/{alice}/deactivate", choices)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Choose a nurse to move this visit to, or cancel it." in html
    assert '<option value="cancel" selected' in html  # the other choices are kept
    assert dash.scalar(select(Nurse.active).where(Nurse.id == alice)) is True
    assert _her_upcoming(dash, alice) == visits and _her_primaries(dash, alice) == patients


def test_handing_everything_over_deactivates_her_and_her_patients_get_the_new_nurse(
    any_dash: Dashboard,
) -> None:
    dash, alice, garcia = any_dash, any_dash.ids["nurse"], any_dash.ids["other_nurse"]
    visits, patients = _her_upcoming(dash, alice), _her_primaries(dash, alice)
    choices = {f"patient-{p}": str(garcia) for p in patients}
    choices |= {f"visit-{v}": "cancel" for v in visits}
    response = dash.post("coordinator", f"/nurses/{alice}/deactivate", choices)
    assert response.status_code == 303
    assert dash.scalar(select(Nurse.active).where(Nurse.id == alice)) is False
    assert _her_upcoming(dash, alice) == [] and _her_primaries(dash, alice) == []
    assert set(_her_primaries(dash, garcia)) >= set(patients)
    reasons = dash.scalars(select(Appointment.cancel_reason).where(Appointment.id.in_(visits)))
    assert set(reasons) == {"nurse_unavailable"}
    html = dash.client("coordinator").get(f"/patients/{patients[0]}").get_data(as_text=True)
    garcia_name = dash.scalar(select(Nurse).where(Nurse.id == garcia)).display_name
    assert f'<dd id="primary-nurse">{garcia_name}' in html
