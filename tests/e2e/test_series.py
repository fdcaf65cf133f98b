"""A coordinator books a series: one visit falls on the nurse's time off, an alternative is
picked in the preview, the series is booked and shows on the patient's page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core.db import make_engine, make_session_factory, transaction
from core.models import Appointment, Nurse
from core.services.availability import add_override
from core.services.common import Actor
from tests.e2e.conftest import LiveServer, shot, sign_in


def test_a_coordinator_previews_picks_an_alternative_and_books_a_series(
    page, live_server: LiveServer
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    tuesday = datetime.now(ZoneInfo("America/New_York")).date() + timedelta(days=14)
    tuesday += timedelta(days=(1 - tuesday.weekday()) % 7)
    engine = make_engine(live_server.database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            wilson = session.scalar(select(Nurse.id).where(Nurse.last_name == "Wilson"))
            add_override(
                session,
                wilson,
                kind="time_off",
                start_date=tuesday + timedelta(days=2),
                end_date=tuesday + timedelta(days=2),
                actor=Actor.cli(),
                now=datetime.now(UTC),
            )
    finally:
        engine.dispose()

    sign_in(page, "coordinator@carematix.local")
    page.goto(f"/patients/{live_server.ids['patient']}")
    page.click("text=Book a series")
    page.fill("#f-first_day", tuesday.isoformat())
    page.fill("#f-first_time", "16:00")
    page.check("input[name=weekdays][value=tue]")
    page.check("input[name=weekdays][value=thu]")
    page.fill("#f-count", "4")
    page.click("#series-check")

    expect(page.locator("#series-preview tr.free")).to_have_count(3)
    refused = page.locator("#series-preview tr.refused")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("The nurse has time off then.")
    refused.locator("input[type=radio]").nth(1).check()  # the first alternative, not "skip"
    shot(page, "series-preview")
    page.click("#series-book")

    expect(page.locator(".flash")).to_contain_text("4 visits booked.")
    page.goto(f"/patients/{live_server.ids['patient']}")
    expect(page.locator("#patient-series")).to_contain_text("Every week on Tuesday and Thursday")
    engine = make_engine(live_server.database_url)
    try:
        with make_session_factory(engine)() as session:
            booked = session.scalars(
                select(Appointment).where(Appointment.series_id.is_not(None))
            ).all()
            assert len(booked) == 4
            assert {a.start_at.date() for a in booked}.isdisjoint({tuesday + timedelta(days=2)})
    finally:
        engine.dispose()
