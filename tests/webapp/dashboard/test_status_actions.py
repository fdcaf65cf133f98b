"""Status changes from the dashboard: a confirmation step with a note, then undo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from core.db import make_engine
from core.models import Appointment, AppointmentStatus, AuditEvent, StatusChange
from tests.webapp.dashboard.conftest import Dashboard


def _started(dash: Dashboard, appointment_id: int, minutes_ago: int = 20) -> None:
    """Move the visit so that it began `minutes_ago` (written directly, as time passing)."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago)
    engine = make_engine(dash.url)
    with engine.begin() as connection:
        connection.execute(
            update(Appointment)
            .where(Appointment.id == appointment_id)
            .values(start_at=start, end_at=start + timedelta(minutes=30))
        )
    engine.dispose()


def _status(dash: Dashboard, appointment_id: int) -> str:
    return dash.scalar(select(Appointment.status).where(Appointment.id == appointment_id))


def test_a_nurse_confirms_a_completion_with_a_note_and_can_undo_it(any_dash: Dashboard) -> None:
    dash, visit = any_dash, any_dash.ids["appointment"]
    _started(dash, visit)
    nurse = dash.client("nurse")
    detail = nurse.get(f"/appointments/{visit}").get_data(as_text=True)
    assert f'href="/appointments/{visit}/complete"' in detail
    page = nurse.get(f"/appointments/{visit}/complete").get_data(as_text=True)
    assert "Mark this visit completed?" in page and 'name="note"' in page
    assert _status(dash, visit) == AppointmentStatus.SCHEDULED  # asking changes nothing

    done = dash.post("nurse", f"/appointments/{visit}/complete", {"note": "Wound healing well"})
    assert done.status_code == 303
    assert _status(dash, visit) == AppointmentStatus.COMPLETED
    detail = nurse.get(f"/appointments/{visit}").get_data(as_text=True)
    assert "Wound healing well" in detail and "Undo" in detail

    undone = dash.post("nurse", f"/appointments/{visit}/undo")
    assert undone.status_code == 303
    assert _status(dash, visit) == AppointmentStatus.SCHEDULED
    detail = nurse.get(f"/appointments/{visit}").get_data(as_text=True)
    assert "Change undone." in detail and f"/appointments/{visit}/undo" not in detail
    assert dash.scalar(select(StatusChange.undone_at)) is not None


def test_a_coordinator_marks_a_no_show_only_after_confirming(any_dash: Dashboard) -> None:
    dash, visit = any_dash, any_dash.ids["other_appointment"]
    _started(dash, visit)
    client = dash.client("coordinator")
    detail = client.get(f"/appointments/{visit}").get_data(as_text=True)
    # The button leads to the confirmation, not straight to the change.
    assert f'action="/appointments/{visit}/no-show"' not in detail
    assert f'href="/appointments/{visit}/no-show"' in detail
    page = client.get(f"/appointments/{visit}/no-show").get_data(as_text=True)
    assert f'action="/appointments/{visit}/no-show"' in page and "undo this for 10 minutes" in page
    assert dash.post("coordinator", f"/appointments/{visit}/no-show").status_code == 303
    assert _status(dash, visit) == AppointmentStatus.NO_SHOW
    assert dash.post("coordinator", f"/appointments/{visit}/undo").status_code == 303
    assert _status(dash, visit) == AppointmentStatus.SCHEDULED


def test_confirming_a_visit_that_has_not_started_explains_instead_of_offering(
    any_dash: Dashboard,
) -> None:
    dash, visit = any_dash, any_dash.ids["appointment"]
    page = dash.client("coordinator").get(f"/appointments/{visit}/complete")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "has not started yet" in html
    assert 'id="confirm-form"' not in html


def test_a_cancellation_without_a_reason_keeps_the_note_and_changes_nothing(
    any_dash: Dashboard,
) -> None:
    dash, visit = any_dash, any_dash.ids["appointment"]
    before = dash.count(AuditEvent)
    response = dash.post(
        "coordinator", f"/appointments/{visit}/cancel", {"note": "Family visiting"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Choose why the visit is cancelled: Patient asked to cancel," in html
    assert "Family visiting" in html and "patient_request," not in html
    assert _status(dash, visit) == AppointmentStatus.SCHEDULED
    assert dash.count(AuditEvent) == before


def test_a_cancellation_can_be_undone_by_staff_but_not_by_the_nurse(any_dash: Dashboard) -> None:
    dash, visit = any_dash, any_dash.ids["appointment"]
    done = dash.post(
        "coordinator",
        f"/appointments/{visit}/cancel",
        {"reason_code": "duplicate", "note": "Booked twice"},
    )
    assert done.status_code == 303
    assert dash.post("nurse", f"/appointments/{visit}/undo").status_code == 403
    assert "/undo" not in dash.client("nurse").get(f"/appointments/{visit}").get_data(as_text=True)
    assert dash.post("coordinator", f"/appointments/{visit}/undo").status_code == 303
    assert _status(dash, visit) == AppointmentStatus.SCHEDULED


def test_nurses_cannot_confirm_cancellations_or_other_nurses_visits(dash: Dashboard) -> None:
    nurse = dash.client("nurse")
    assert nurse.get(f"/appointments/{dash.ids['appointment']}/cancel").status_code == 403
    other = dash.ids["other_appointment"]
    assert nurse.get(f"/appointments/{other}/complete").status_code == 404
