"""Nurse self-service: completing her started visits from "My schedule", asking for time off
that a coordinator approves (seeing what collides) or declines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from core.db import make_engine
from core.models import Appointment, Nurse, NurseAvailabilityOverride, TimeOffRequest
from tests.webapp.dashboard.conftest import Dashboard


def _move(dash: Dashboard, appointment_id: int, start: datetime) -> None:
    engine = make_engine(dash.url)
    with engine.begin() as connection:
        connection.execute(
            update(Appointment)
            .where(Appointment.id == appointment_id)
            .values(start_at=start, end_at=start + timedelta(minutes=30))
        )
    engine.dispose()


def test_my_schedule_offers_to_complete_only_visits_that_have_started(dash: Dashboard) -> None:
    visit = dash.ids["appointment"]
    nurse = dash.client("nurse")
    assert f'id="complete-{visit}"' not in nurse.get("/my-schedule").get_data(as_text=True)
    _move(dash, visit, datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5))
    html = nurse.get("/my-schedule").get_data(as_text=True)
    assert f'id="complete-{visit}" href="/appointments/{visit}/complete"' in html


def _visit_day(dash: Dashboard) -> tuple[int, str]:
    """An upcoming visit of the signed-in nurse and its date in her zone."""
    visit = dash.scalar(
        select(Appointment)
        .where(
            Appointment.nurse_id == dash.ids["nurse"],
            Appointment.status == "scheduled",
            Appointment.start_at > datetime.now(UTC) + timedelta(days=1),
        )
        .order_by(Appointment.start_at)
    )
    tz = dash.scalar(select(Nurse.time_zone).where(Nurse.id == dash.ids["nurse"]))
    return visit.id, visit.start_at.astimezone(ZoneInfo(tz)).date().isoformat()


def test_time_off_asked_by_a_nurse_is_approved_showing_the_colliding_visit(
    any_dash: Dashboard,
) -> None:
    dash = any_dash
    visit, day = _visit_day(dash)
    asked = dash.post(
        "nurse", "/my-schedule/time-off", {"start_date": day, "reason": "Training course"}
    )
    assert asked.status_code == 303
    assert "pending" in dash.client("nurse").get("/my-schedule").get_data(as_text=True)
    assert dash.count(NurseAvailabilityOverride) == 0  # nothing changes before a decision

    request_id = dash.scalar(select(TimeOffRequest.id))
    queue = dash.client("coordinator").get("/time-off/").get_data(as_text=True)
    assert "Training course" in queue and f'href="/appointments/{visit}"' in queue

    approved = dash.post(
        "coordinator", f"/time-off/{request_id}/approve", headers={"HX-Request": "true"}
    )
    html = approved.get_data(as_text=True)
    assert approved.status_code == 200 and 'id="time-off-collisions"' in html
    assert f'href="/appointments/{visit}"' in html and "No request is waiting" in html
    assert dash.count(NurseAvailabilityOverride) == 1
    assert "approved" in dash.client("nurse").get("/my-schedule").get_data(as_text=True)


def test_a_declined_request_shows_the_note_to_the_nurse(dash: Dashboard) -> None:
    _, day = _visit_day(dash)
    dash.post("nurse", "/my-schedule/time-off", {"start_date": day, "reason": "Family"})
    request_id = dash.scalar(select(TimeOffRequest.id))
    declined = dash.post("coordinator", f"/time-off/{request_id}/decline", {"note": "Cover gap"})
    assert declined.status_code == 200
    again = dash.post("coordinator", f"/time-off/{request_id}/approve")
    assert again.status_code == 422 and "already declined" in again.get_data(as_text=True)
    assert dash.count(NurseAvailabilityOverride) == 0
    html = dash.client("nurse").get("/my-schedule").get_data(as_text=True)
    assert "declined" in html and "Cover gap" in html


def test_a_bad_request_is_shown_again_with_the_error_and_nothing_saved(dash: Dashboard) -> None:
    response = dash.post(
        "nurse",
        "/my-schedule/time-off",
        {"start_date": "2000-01-01", "reason": "Holiday"},
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "cannot start in the past" in html
    assert 'value="Holiday"' in html
    assert dash.count(TimeOffRequest) == 0


def test_only_nurses_ask_and_only_staff_decide(dash: Dashboard) -> None:
    assert dash.client("nurse").get("/time-off/").status_code == 403
    assert dash.post("nurse", "/time-off/1/approve").status_code == 403
    response = dash.post("coordinator", "/my-schedule/time-off", {"start_date": "2030-01-01"})
    assert response.status_code == 403
