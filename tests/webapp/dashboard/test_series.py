"""Recurring visits on the dashboard: the form, the preview with refused visits and their
alternatives, booking, the series and appointment pages, and cancelling visits."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from core.db import make_engine, make_session_factory, transaction
from core.models import (
    Appointment,
    AppointmentSeries,
    AppointmentStatus,
    AuditEvent,
    Nurse,
    NurseAvailabilityOverride,
)
from core.services.availability import add_override
from core.services.common import Actor
from tests.webapp.dashboard.conftest import Dashboard

ALTERNATIVE = re.compile(r'name="choice-(\d+)" value="(\d{4}-[^"]+)"')


def first_tuesday() -> date:
    """A Tuesday two weeks or more ahead, clear of the demo visits and inside the horizon."""
    day = datetime.now(ZoneInfo("America/New_York")).date() + timedelta(days=14)
    return day + timedelta(days=(1 - day.weekday()) % 7)


def rule(dash: Dashboard, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "patient_id": dash.ids["patient"],
        "first_day": first_tuesday().isoformat(),
        "first_time": "16:00",
        "weekdays": ["tue", "thu"],
        "interval_weeks": "1",
        "count": "4",
        "kind": "phone",
    }
    data.update(changes)
    return data


def time_off(dash: Dashboard, day: date) -> None:
    with transaction(make_session_factory(make_engine(dash.url))) as session:
        add_override(
            session,
            dash.ids["nurse"],
            kind="time_off",
            start_date=day,
            end_date=day,
            actor=Actor.cli(),
            now=datetime.now(UTC),
        )


def test_the_patient_page_and_booking_form_offer_a_series(dash: Dashboard) -> None:
    page = dash.client("coordinator").get(f"/patients/{dash.ids['patient']}")
    assert f"/series/new?patient_id={dash.ids['patient']}" in page.get_data(as_text=True)
    form = dash.client("coordinator").get(f"/series/new?patient_id={dash.ids['patient']}")
    assert form.status_code == 200
    assert dash.client("nurse").get("/series/new").status_code == 403


def test_a_preview_shows_each_visit_and_books_nothing(dash: Dashboard) -> None:
    time_off(dash, first_tuesday() + timedelta(days=2))
    before = dash.count(Appointment)

    response = dash.post("coordinator", "/series/preview", rule(dash))

    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:2000]
    assert html.count('class="free"') == 3
    assert html.count('class="refused"') == 1
    assert "The nurse has time off then." in html
    assert {index for index, _ in ALTERNATIVE.findall(html)} == {"1"}
    assert dash.count(Appointment) == before


def test_booking_with_a_picked_alternative_and_seeing_it_on_the_patient_page(
    dash: Dashboard,
) -> None:
    time_off(dash, first_tuesday() + timedelta(days=2))
    html = dash.post("coordinator", "/series/preview", rule(dash)).get_data(as_text=True)
    index, picked = ALTERNATIVE.findall(html)[0]

    response = dash.post("coordinator", "/series/new", {**rule(dash), f"choice-{index}": picked})

    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    series = dash.scalar(select(AppointmentSeries).order_by(AppointmentSeries.id.desc()))
    visits = dash.scalars(
        select(Appointment).where(Appointment.series_id == series.id).order_by(Appointment.start_at)
    )
    assert len(visits) == 4
    assert datetime.fromisoformat(picked) in [v.start_at for v in visits]
    page = dash.client("coordinator").get(f"/patients/{dash.ids['patient']}")
    assert f"/series/{series.id}" in page.get_data(as_text=True)
    shown = dash.client("coordinator").get(f"/appointments/{visits[0].id}").get_data(as_text=True)
    assert "Visit 1 of a series" in shown and "Cancel this and following" in shown


def test_a_skipped_visit_is_not_booked(dash: Dashboard) -> None:
    time_off(dash, first_tuesday() + timedelta(days=2))
    response = dash.post("coordinator", "/series/new", {**rule(dash), "choice-1": "skip"})
    assert response.status_code == 303
    series = dash.scalar(select(AppointmentSeries).order_by(AppointmentSeries.id.desc()))
    indexes = dash.scalars(
        select(Appointment.series_index).where(Appointment.series_id == series.id)
    )
    assert sorted(indexes) == [0, 2, 3]


def test_booking_without_a_choice_for_a_refused_visit_books_nothing(dash: Dashboard) -> None:
    time_off(dash, first_tuesday() + timedelta(days=2))
    before = dash.count(Appointment)
    response = dash.post("coordinator", "/series/new", rule(dash))
    assert response.status_code == 409
    assert "nothing was booked" in response.get_data(as_text=True)
    assert dash.count(Appointment) == before


def test_every_mistake_in_the_rule_is_shown_at_once(dash: Dashboard) -> None:
    before = dash.count(Appointment)
    response = dash.post(
        "coordinator",
        "/series/preview",
        rule(dash, weekdays=[], count="", interval_weeks="0", first_time=""),
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for message in (
        "Choose one or more weekdays: Monday, Tuesday",
        "Give the number of visits or the last date",
        "Every how many weeks must be between 1 and 12",
        "Give the first visit&#39;s date and time",
    ):
        assert message in html, message
    assert dash.count(Appointment) == before


def test_cancelling_this_and_following_from_the_appointment_page(dash: Dashboard) -> None:
    dash.post("coordinator", "/series/new", rule(dash))
    series = dash.scalar(select(AppointmentSeries).order_by(AppointmentSeries.id.desc()))
    visits = dash.scalars(
        select(Appointment).where(Appointment.series_id == series.id).order_by(Appointment.start_at)
    )
    form = dash.client("coordinator").get(
        f"/series/{series.id}/cancel?appointment_id={visits[2].id}&scope=following"
    )
    assert form.status_code == 200
    assert "2 visits" in form.get_data(as_text=True)

    missing_reason = dash.post(
        "coordinator",
        f"/series/{series.id}/cancel",
        {"appointment_id": visits[2].id, "scope": "following"},
    )
    assert missing_reason.status_code == 422

    done = dash.post(
        "coordinator",
        f"/series/{series.id}/cancel",
        {"appointment_id": visits[2].id, "scope": "following", "reason_code": "clinical"},
    )
    assert done.status_code == 303
    statuses = dash.scalars(
        select(Appointment.status)
        .where(Appointment.series_id == series.id)
        .order_by(Appointment.start_at)
    )
    assert statuses == [AppointmentStatus.SCHEDULED] * 2 + [AppointmentStatus.CANCELLED] * 2
    page = dash.client("nurse").get(f"/series/{series.id}").get_data(as_text=True)
    assert "ended after" in page
    assert dash.client("nurse").post(f"/series/{series.id}/cancel").status_code in (400, 403)


def test_moving_this_and_following_from_the_appointment_page(dash: Dashboard) -> None:
    dash.post("coordinator", "/series/new", rule(dash))
    series = dash.scalar(select(AppointmentSeries).order_by(AppointmentSeries.id.desc()))
    visits = dash.scalars(
        select(Appointment).where(Appointment.series_id == series.id).order_by(Appointment.start_at)
    )
    page = dash.client("coordinator").get(f"/appointments/{visits[1].id}").get_data(as_text=True)
    assert "Move this and following" in page
    form = dash.client("coordinator").get(
        f"/appointments/{visits[1].id}/reschedule?scope=following"
    )
    assert 'name="scope" value="following" checked' in form.get_data(as_text=True)

    # The last visit's day is away: nothing moves, and the form says which visit and why.
    last_day = visits[3].start_at.astimezone(ZoneInfo("America/New_York")).date()
    time_off(dash, last_day)
    thursday = visits[1].start_at.astimezone(ZoneInfo("America/New_York")).date()
    new_start = {"start_local": f"{thursday.isoformat()}T15:00", "scope": "following"}
    refused = dash.post("coordinator", f"/appointments/{visits[1].id}/reschedule", new_start)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 409 and 'id="move-refused"' in html
    assert "Visit 4" in html and "Visit 2," not in html
    assert dash.count(Appointment, Appointment.series_id == series.id) == 4

    with transaction(make_session_factory(make_engine(dash.url))) as session:
        session.execute(
            delete(NurseAvailabilityOverride).where(
                NurseAvailabilityOverride.nurse_id == dash.ids["nurse"]
            )
        )
    moved = dash.post("coordinator", f"/appointments/{visits[1].id}/reschedule", new_start)
    assert moved.status_code == 303, moved.get_data(as_text=True)
    continued = dash.scalar(select(AppointmentSeries).order_by(AppointmentSeries.id.desc()))
    assert continued.id != series.id and moved.headers["Location"] == f"/series/{continued.id}"
    hours = [
        a.start_at.astimezone(ZoneInfo("America/New_York")).hour
        for a in dash.scalars(
            select(Appointment)
            .where(Appointment.status == AppointmentStatus.SCHEDULED)
            .where(Appointment.series_id.in_([series.id, continued.id]))
            .order_by(Appointment.start_at)
        )
    ]
    assert hours == [16, 15, 15, 15]
    shown = dash.client("coordinator").get(moved.headers["Location"]).get_data(as_text=True)
    assert "3 visits moved" in shown
    old_page = dash.client("coordinator").get(f"/series/{series.id}").get_data(as_text=True)
    assert old_page.count("moved to") == 3
    assert f'href="/series/{continued.id}">continued as another series' in old_page


def test_visits_past_the_horizon_are_booked_anyway_only_with_a_reason(dash: Dashboard) -> None:
    with transaction(make_session_factory(make_engine(dash.url))) as session:
        nurse = session.get(Nurse, dash.ids["nurse"])
        assert nurse is not None
        nurse.horizon_days = (first_tuesday() - datetime.now(UTC).date()).days + 5
    preview = dash.post("coordinator", "/series/preview", rule(dash))
    html = preview.get_data(as_text=True)
    refused = re.findall(r'name="choice-(\d+)" value="waive"', html)
    assert refused == ["2", "3"] and 'id="series-override"' in html
    before = dash.count(Appointment)

    waive = {f"choice-{index}": "waive" for index in refused}
    unexplained = dash.post("coordinator", "/series/new", {**rule(dash), **waive})
    page = unexplained.get_data(as_text=True)
    assert unexplained.status_code == 422 and 'id="override_reason-error"' in page
    assert 'id="series-preview"' in page and dash.count(Appointment) == before

    booked = dash.post(
        "coordinator",
        "/series/new",
        {**rule(dash), **waive, "override_reason": "Weekly dressing changes ordered"},
    )
    assert booked.status_code == 303
    assert dash.count(Appointment) == before + 4
    event = dash.scalar(select(AuditEvent).where(AuditEvent.action == "series.booked"))
    assert event.details["waived_visits"] == [2, 3]
    assert event.details["override_reason"] == "Weekly dressing changes ordered"
