"""Home, the nurse calendar, "My schedule", and the role scoping behind them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from core.db import make_engine, make_session_factory
from core.errors import NotFound
from core.models import Appointment, Call, Notification, NurseAvailability
from core.services import access
from core.timefmt import short_date
from tests.webapp.dashboard.conftest import Dashboard, every_channel
from webapp.dashboard import home


def test_home_shows_calls_in_progress_and_waiting_notifications(dash: Dashboard) -> None:
    html = dash.client("coordinator").get("/").get_data(as_text=True)
    assert "Calls in progress" in html and f"/calls/{dash.ids['call']}" in html
    assert 'id="notifications"' in html
    assert "Times are shown in <strong>America/New_York</strong>" in html


def test_home_splits_calls_into_live_and_recent_with_the_callers_name(dash: Dashboard) -> None:
    now = datetime.now(UTC)
    engine = make_engine(dash.url)
    with engine.begin() as connection:
        finished = connection.execute(
            insert(Call)
            .values(
                direction="inbound",
                patient_id=dash.ids["patient"],
                status="completed",
                outcome="booked",
                created_at=now - timedelta(minutes=5),
            )
            .returning(Call.id)
        ).scalar_one()
        anonymous = connection.execute(
            insert(Call)
            .values(direction="inbound", status="ringing", created_at=now)
            .returning(Call.id)
        ).scalar_one()
        # The queue's count comes in the same statement as the calls.
        for status in ("queued", "queued", "sent"):
            connection.execute(
                insert(Notification).values(
                    recipient_kind="patient",
                    patient_id=dash.ids["patient"],
                    channel="sms",
                    event="booking_confirmed",
                    body="",
                    status=status,
                    send_after=now,
                    created_at=now,
                )
            )
        queued = connection.scalar(
            select(func.count()).select_from(Notification).where(Notification.status == "queued")
        )
    engine.dispose()
    every_channel(dash)  # else texts and email would not count as waiting
    html = dash.client("coordinator").get("/").get_data(as_text=True)
    assert queued and f'<p class="big">{queued}</p>' in html
    live = html.split('id="live-calls"')[1].split("</section>")[0]
    recent = html.split('id="recent-calls"')[1].split("</section>")[0]
    assert f'/calls/{anonymous}">Unknown caller</a>' in live
    assert f'/calls/{dash.ids["call"]}">John Smith</a>' in live
    assert f'/calls/{finished}">John Smith</a> · booked' in recent
    assert f"/calls/{finished}" not in live and f"/calls/{anonymous}" not in recent


def test_a_nurses_week_calendar_lists_their_visits_by_day(dash: Dashboard) -> None:
    nurse_id = dash.ids["nurse"]
    first = dash.scalar(
        select(Appointment).where(Appointment.nurse_id == nurse_id).order_by(Appointment.start_at)
    )
    day = first.start_at.astimezone(ZoneInfo("America/New_York")).date()
    html = (
        dash.client("coordinator")
        .get(f"/nurses/{nurse_id}/calendar?date={day.isoformat()}")
        .get_data(as_text=True)
    )
    assert f'id="day-{day.isoformat()}"' in html and f"/appointments/{first.id}" in html
    day_view = dash.client("coordinator").get(
        f"/nurses/{nurse_id}/calendar?view=day&date={day.isoformat()}",
        headers={"HX-Request": "true"},
    )
    assert day_view.get_data(as_text=True).lstrip().startswith('<section id="calendar"')


def test_my_schedule_shows_only_the_nurses_own_visits_hours_and_time_off(dash: Dashboard) -> None:
    html = dash.client("nurse").get("/my-schedule").get_data(as_text=True)
    assert "My weekly hours" in html and "09:00\u201317:00" in html
    assert "Emily Davis" not in html  # Dr. Garcia's patient


def test_hours_that_start_or_stop_on_a_date_show_only_in_the_weeks_they_apply(
    dash: Dashboard,
) -> None:
    nurse_id = dash.ids["nurse"]
    monday = datetime.now(ZoneInfo("America/New_York")).date()
    monday -= timedelta(days=monday.weekday())
    engine = make_engine(dash.url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            session.add_all(
                [  # an evening shift that ended last week, and a later one from next week
                    NurseAvailability(
                        nurse_id=nurse_id, weekday=0, start_time=time(18), end_time=time(20),
                        valid_to=monday - timedelta(days=1),
                    ),
                    NurseAvailability(
                        nurse_id=nurse_id, weekday=0, start_time=time(20), end_time=time(21),
                        valid_from=monday + timedelta(days=7),
                    ),
                ]
            )  # fmt: skip
    finally:
        engine.dispose()
    coordinator = dash.client("coordinator")

    def week(offset: int) -> str:
        day = (monday + timedelta(days=7 * offset)).isoformat()
        return coordinator.get(f"/nurses/{nurse_id}/calendar?date={day}").get_data(as_text=True)

    last, this, next_ = week(-1), week(0), week(1)
    assert "18:00-20:00" in last and "20:00-21:00" not in last
    assert "18:00-20:00" not in this and "20:00-21:00" not in this and "09:00-17:00" in this
    assert "20:00-21:00" in next_ and "18:00-20:00" not in next_
    mine = dash.client("nurse").get("/my-schedule").get_data(as_text=True)
    starts = short_date(monday + timedelta(days=7), datetime.now(UTC).year)
    assert f'20:00\u201321:00 <small class="muted">from {starts}</small>' in mine
    assert "18:00\u201320:00" not in mine  # over: no longer part of the weekly hours


@pytest.fixture
def session(dash: Dashboard) -> Iterator[Session]:
    """A plain session on the dashboard's database."""
    engine = make_engine(dash.url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def test_access_scoping_gives_staff_everything_and_a_nurse_only_their_own(
    dash: Dashboard, session: Session
) -> None:
    now = datetime.now(UTC)
    staff = access.Viewer(user_id=1, role="coordinator")
    nurse = access.Viewer(user_id=9, role="nurse", nurse_id=dash.ids["nurse"])
    stranger = access.Viewer(user_id=10, role="nurse", nurse_id=None)
    everyone = session.scalars(access.patients(staff, now)).all()
    mine = session.scalars(access.patients(nurse, now)).all()
    assert len(everyone) == 4
    assert {p.last_name for p in mine} == {"Smith", "Johnson"}
    assert {a.nurse_id for a in session.scalars(access.appointments(nurse))} == {dash.ids["nurse"]}
    assert [n.id for n in session.scalars(access.nurses(nurse))] == [dash.ids["nurse"]]
    assert session.scalars(access.patients(stranger, now)).all() == []
    with pytest.raises(NotFound):
        access.get_patient(session, nurse, dash.ids["other_patient"], now)
    with pytest.raises(NotFound):
        access.get_appointment(session, nurse, dash.ids["other_appointment"])
    with pytest.raises(NotFound):
        access.get_call(session, nurse, dash.ids["other_call"], now)
    assert access.get_call(session, nurse, dash.ids["call"], now).id == dash.ids["call"]
    unknown_role = access.Viewer(user_id=11, role="auditor", nurse_id=dash.ids["nurse"])
    assert session.scalars(access.nurses(unknown_role)).all() == []


def test_home_lists_the_days_first_visits_and_links_to_all_of_them(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(home, "HOME_APPOINTMENTS", 2)
    zone = ZoneInfo(dash.app.config["SETTINGS"].default_time_zone)
    today = datetime.now(UTC).astimezone(zone).replace(hour=0, minute=5, second=0, microsecond=0)
    engine = make_engine(dash.url)
    with engine.begin() as connection:
        for offset, nurse in enumerate([dash.ids["nurse"], dash.ids["other_nurse"], 3]):
            start = today + timedelta(minutes=10 * offset)
            connection.execute(
                insert(Appointment).values(
                    nurse_id=nurse,
                    patient_id=dash.ids["patient"],
                    start_at=start,
                    end_at=start + timedelta(minutes=5),
                    status="scheduled",
                    kind="phone",
                    reason="",
                    source="dashboard",
                    created_by="test",
                    created_at=start,
                    sequence=0,
                )
            )
    engine.dispose()
    page = dash.client("coordinator").get("/").get_data(as_text=True)
    assert page.count('id="appointment-row-') == 2
    assert "All 3 of today" in page
