"""A coordinator's booking form with three mistakes: all shown at once, fixed, booked."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core.db import make_engine, make_session_factory
from core.models import Appointment, AppointmentKind
from tests.e2e.conftest import LiveServer, sign_in

NEW_YORK = ZoneInfo("America/New_York")  # John Smith's and his nurse's zone: typed times use it


def test_a_coordinator_fixes_three_mistakes_on_the_booking_form_and_books(
    page, live_server: LiveServer
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    sign_in(page, "coordinator@carematix.local")
    page.goto("/appointments/new")

    # No patient, no time, and a reason pasted in far too long: one submit.
    page.select_option("#f-kind", label="Video call")
    page.fill("#f-reason", "Follow-up on blood pressure. " * 20)
    page.click("#book-typed")

    summary = page.locator("#error-summary li")
    expect(summary).to_have_count(3)
    expect(summary.nth(0)).to_have_text("Choose a patient.")
    expect(summary.nth(1)).to_have_text("Reason is too long (500 characters at most).")
    expect(summary.nth(2)).to_have_text("Start is required.")
    for name, message in (
        ("patient_id", "Choose a patient."),
        ("reason", "Reason is too long"),
        ("start_local", "Start is required."),
    ):
        field = page.locator(f"#f-{name}")
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_attribute("aria-describedby", f"{name}-error")
        expect(page.locator(f"#{name}-error")).to_contain_text(message)
    # What was typed and chosen is still there.
    expect(page.locator("#f-kind")).to_have_value(AppointmentKind.VIDEO.value)
    expect(page.locator("#f-reason")).to_have_value("Follow-up on blood pressure. " * 20)

    # Fix all three: the patient, a shorter reason, and a time their nurse has free.
    page.select_option("#f-patient_id", label="John Smith (+12025550101)")
    first_slot = page.locator("#slots button.slot").first
    expect(first_slot).to_be_visible()
    start = datetime.fromisoformat(first_slot.get_attribute("value"))
    page.fill("#f-reason", "Follow-up on blood pressure")
    page.fill("#f-start_local", start.astimezone(NEW_YORK).strftime("%Y-%m-%dT%H:%M"))
    page.click("#book-typed")

    expect(page.locator(".flash")).to_contain_text("Appointment booked.")
    engine = make_engine(live_server.database_url)
    try:
        with make_session_factory(engine)() as session:
            booked = session.scalars(
                select(Appointment).where(
                    Appointment.patient_id == live_server.ids["patient"],
                    Appointment.start_at == start,
                )
            ).one()
            assert (booked.kind, booked.reason) == (
                AppointmentKind.VIDEO,
                "Follow-up on blood pressure",
            )
    finally:
        engine.dispose()
