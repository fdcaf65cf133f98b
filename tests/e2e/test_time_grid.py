"""A coordinator books a series, opens the nurse's time grid, moves one visit with the
keyboard-usable Move action, and the grid shows it at its new time."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core.db import make_engine, make_session_factory
from core.models import Appointment, AppointmentStatus, Nurse
from tests.e2e.conftest import LiveServer, shot, sign_in

NY = ZoneInfo("America/New_York")


def _line_of(page, text: str) -> int:  # type: ignore[no-untyped-def]
    """The grid line of the row labelled `text` (the label's gr-r class)."""
    label = page.locator(".gr-time", has_text=text).first
    classes = (label.get_attribute("class") or "").split()
    return int(next(c for c in classes if c.startswith("gr-r"))[4:])


def test_a_series_visit_is_moved_from_the_grid_and_drawn_at_its_new_time(
    page, live_server: LiveServer
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    tuesday = datetime.now(NY).date() + timedelta(days=14)
    tuesday += timedelta(days=(1 - tuesday.weekday()) % 7)
    sign_in(page, "coordinator@carematix.local")
    page.goto(f"/patients/{live_server.ids['patient']}")
    page.click("text=Book a series")
    page.fill("#f-first_day", tuesday.isoformat())
    page.fill("#f-first_time", "15:00")
    page.check("input[name=weekdays][value=tue]")
    page.check("input[name=weekdays][value=thu]")
    page.fill("#f-count", "2")
    page.click("#series-check")
    expect(page.locator("#series-preview tr.free")).to_have_count(2)
    page.click("#series-book")
    expect(page.locator(".flash")).to_contain_text("2 visits booked.")

    engine = make_engine(live_server.database_url)
    try:
        with make_session_factory(engine)() as session:
            wilson = session.scalar(select(Nurse.id).where(Nurse.last_name == "Wilson"))
            first = session.scalar(
                select(Appointment.id)
                .where(Appointment.series_id.is_not(None))
                .order_by(Appointment.start_at)
                .limit(1)
            )
    finally:
        engine.dispose()

    page.goto(f"/nurses/{wilson}/grid?week={tuesday.isoformat()}")
    expect(page.locator("h2")).to_contain_text("times in America/New_York")
    block = page.locator(f"#grid-visit-{first}")
    expect(block).to_contain_text("15:00")
    expect(block).to_have_class(f"gr-visit scheduled gr-c3 gr-r{_line_of(page, '15:00')} gr-s2")
    shot(page, "time-grid")

    # The zone switch redraws the grid in place (htmx) and keeps it in the address.
    page.select_option("#grid-tz", "America/Los_Angeles")
    expect(page.locator("#time-grid h2")).to_contain_text("times in America/Los_Angeles")
    expect(block).to_contain_text("12:00")
    expect(page).to_have_url(re.compile(r"tz=America%2FLos_Angeles"))
    page.select_option("#grid-tz", "America/New_York")
    expect(block).to_contain_text("15:00")

    # Move, by keyboard: the reschedule form opens on the visit's own date.
    block.locator(".gr-move").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/appointments/{first}/reschedule*")
    expect(page.locator("#f-day")).to_have_value(tuesday.isoformat())
    page.fill("#f-start_local", f"{tuesday.isoformat()}T11:00")
    page.click("#reschedule-form button.primary")
    expect(page.locator(".flash")).to_contain_text("Appointment moved.")

    engine = make_engine(live_server.database_url)
    try:
        with make_session_factory(engine)() as session:
            moved = session.scalar(
                select(Appointment).where(
                    Appointment.rescheduled_from_id == first,
                    Appointment.status == AppointmentStatus.SCHEDULED,
                )
            )
            assert moved is not None
            assert moved.start_at.astimezone(NY).hour == 11
            moved_id = moved.id
    finally:
        engine.dispose()

    page.goto(f"/nurses/{wilson}/grid?week={tuesday.isoformat()}")
    expect(page.locator(f"#grid-visit-{first}")).to_have_count(0)  # cancelled by the move
    new_block = page.locator(f"#grid-visit-{moved_id}")
    expect(new_block).to_contain_text("11:00")
    expect(new_block).to_have_class(f"gr-visit scheduled gr-c3 gr-r{_line_of(page, '11:00')} gr-s2")

    # The team board shows it too, in Wilson's column; a free time there opens the booking form.
    page.goto(f"/team-day?day={tuesday.isoformat()}")
    expect(page.locator(f"#grid-visit-{moved_id}")).to_contain_text("John Smith")
    shot(page, "team-day")
    page.locator(".gr-free", has_text="Book 13:00").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/appointments/new?*")
    expect(page.locator("#chosen-time")).to_contain_text("with")
    shot(page, "book-from-grid")


def test_a_visit_dragged_onto_a_free_time_is_moved_there(page, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    thursday = datetime.now(NY).date() + timedelta(days=14)
    thursday += timedelta(days=(3 - thursday.weekday()) % 7)
    sign_in(page, "coordinator@carematix.local")
    page.goto(f"/appointments/new?patient_id={live_server.ids['patient']}&day={thursday}")
    page.fill("#f-start_local", f"{thursday.isoformat()}T10:00")
    page.click("#book-typed")
    expect(page.locator(".flash")).to_contain_text("Appointment booked.")
    visit = int(page.url.rstrip("/").rsplit("/", 1)[-1])

    engine = make_engine(live_server.database_url)
    try:
        with make_session_factory(engine)() as session:
            wilson = session.scalar(select(Nurse.id).where(Nurse.last_name == "Wilson"))
    finally:
        engine.dispose()
    page.goto(f"/nurses/{wilson}/grid?day={thursday.isoformat()}")
    target = page.locator(".gr-free", has_text="Book 14:00")
    page.drag_and_drop(f"#grid-visit-{visit}", ".gr-free:has-text('Book 14:00')")
    expect(page.locator(".flash")).to_contain_text("Appointment moved.")
    engine = make_engine(live_server.database_url)
    try:
        with make_session_factory(engine)() as session:
            moved = session.scalar(
                select(Appointment.id).where(Appointment.rescheduled_from_id == visit)
            )
    finally:
        engine.dispose()
    assert moved is not None
    page.goto(f"/nurses/{wilson}/grid?day={thursday.isoformat()}")
    expect(page.locator(f"#grid-visit-{visit}")).to_have_count(0)
    expect(page.locator(f"#grid-visit-{moved}")).to_contain_text("14:00\u201314:30")
    expect(target).to_have_count(0)  # taken now
