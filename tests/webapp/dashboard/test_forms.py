"""Forms show every problem at once, beside its field, keep what was typed, and change nothing."""

from __future__ import annotations

import re

from sqlalchemy import select

from core.models import (
    Appointment,
    AppointmentStatus,
    Nurse,
    NurseAvailability,
    NurseAvailabilityOverride,
    Patient,
    User,
)
from tests.webapp.dashboard.conftest import Dashboard

SETTINGS = {
    "visit_minutes": "30",
    "buffer_before_minutes": "0",
    "buffer_after_minutes": "0",
    "min_notice_minutes": "120",
    "horizon_days": "60",
    "slot_step_minutes": "15",
}


def _field_error(html: str, name: str) -> str:
    """The message shown beside the field `name`, checking the field points at it."""
    field = re.search(rf'<(?:input|select|textarea)[^>]*id="f-{name}"[^>]*>', html)
    assert field is not None, name
    assert 'aria-invalid="true"' in field[0], name
    assert f'aria-describedby="{name}-error"' in field[0], name
    message = re.search(rf'<p class="error" id="{name}-error">([^<]*)</p>', html)
    assert message is not None, name
    return message[1].replace("&#39;", "'")


def _summary(html: str) -> list[str]:
    """The messages listed at the top of the form."""
    box = re.search(r'<div class="error-summary"[^>]*>(.*?)</div>', html, re.S)
    assert box is not None
    return [m.replace("&#39;", "'") for m in re.findall(r'class="error"[^>]*>([^<]*)<', box[1])]


def test_an_empty_add_a_nurse_form_shows_every_required_field_in_one_submit(
    any_dash: Dashboard,
) -> None:
    before = any_dash.count(Nurse)
    client = any_dash.client("coordinator")
    offered = client.get("/nurses/new").get_data(as_text=True)
    settings = dict(
        re.findall(r'name="(\w+_(?:minutes|days))" type="number" value="(\d+)"', offered)
    )
    assert len(settings) == 6  # the visit settings come filled in

    response = any_dash.post("coordinator", "/nurses/new", settings)

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _field_error(html, "first_name") == "First name is required."
    assert _field_error(html, "last_name") == "Last name is required."
    assert _field_error(html, "time_zone") == "Time zone is required."
    assert _summary(html) == [
        "First name is required.",
        "Last name is required.",
        "Time zone is required.",
    ]
    assert "Fix these 3 things" in html
    assert any_dash.count(Nurse) == before


def test_five_bad_values_on_the_nurse_form_take_one_submit_and_stay_as_typed(
    any_dash: Dashboard,
) -> None:
    form = {
        **SETTINGS,
        "first_name": "Nora",
        "last_name": "Quinn",
        "phone": "call me",
        "email": "nora-at-example",
        "time_zone": "Mars/Olympus",
        "visit_minutes": "half an hour",
        "horizon_days": "900",
    }

    response = any_dash.post("coordinator", "/nurses/new", form, headers={"HX-Request": "true"})

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert len(_summary(html)) == 5
    assert _field_error(html, "visit_minutes") == "Visit length must be a whole number."
    assert _field_error(html, "horizon_days") == "Booking horizon must be between 1 and 365."
    assert _field_error(html, "email") == "That email address does not look right."
    for typed in ('value="call me"', 'value="Mars/Olympus"', 'value="half an hour"'):
        assert typed in html
    assert any_dash.count(Nurse, Nurse.last_name == "Quinn") == 0


def test_a_booking_with_three_problems_shows_all_three_and_books_nothing(
    any_dash: Dashboard,
) -> None:
    before = any_dash.count(Appointment)
    form = {"patient_id": "", "kind": "video", "reason": "x" * 501, "start_local": ""}

    response = any_dash.post("coordinator", "/appointments/new", form)

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _summary(html) == [
        "Choose a patient.",
        "Reason is too long (500 characters at most).",
        "Start is required.",
    ]
    assert _field_error(html, "patient_id") == "Choose a patient."
    assert _field_error(html, "reason") == "Reason is too long (500 characters at most)."
    assert _field_error(html, "start_local") == "Start is required."
    assert 'value="video" selected' in html and "x" * 501 in html
    assert any_dash.count(Appointment) == before


def test_the_kinds_of_visit_and_reasons_for_cancelling_are_offered_in_words(
    any_dash: Dashboard,
) -> None:
    client = any_dash.client("coordinator")

    booking = client.get(f"/appointments/new?patient_id={any_dash.ids['patient']}")
    cancel = client.get(f"/appointments/{any_dash.ids['appointment']}/cancel")

    assert '<option value="home_visit" >Home visit</option>' in booking.get_data(as_text=True)
    html = cancel.get_data(as_text=True)
    assert '<option value="nurse_unavailable" >Nurse unavailable</option>' in html
    assert 'value="rescheduled"' not in html


def test_a_cancellation_without_a_reason_names_the_choices_in_words_and_keeps_the_visit(
    any_dash: Dashboard,
) -> None:
    visit = any_dash.ids["appointment"]

    response = any_dash.post("coordinator", f"/appointments/{visit}/cancel", {"note": "Unwell"})

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _summary(html) == [
        "Choose why the visit is cancelled: Patient asked to cancel, Nurse unavailable, "
        "Clinical reason, Booked twice or Other."
    ]
    assert 'aria-invalid="true" aria-describedby="reason_code-error"' in html
    assert ">Unwell</textarea>" in html
    status = any_dash.scalar(select(Appointment.status).where(Appointment.id == visit))
    assert status == AppointmentStatus.SCHEDULED


def test_a_patient_with_half_an_address_and_a_bad_phone_hears_about_all_of_it(
    any_dash: Dashboard,
) -> None:
    before = any_dash.count(Patient)
    form = {
        "first_name": "Edith",
        "last_name": "Cole",
        "date_of_birth": "1939-07-14",
        "phone": "+1 555",
        "time_zone": "America/New_York",
        "address_city": "Springfield",
    }

    response = any_dash.post("coordinator", "/patients/new", form)

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _summary(html) == [
        "That phone number is not a possible number.",
        "Give the street address, or leave the whole address empty.",
        "Give the postal code, or leave the whole address empty.",
    ]
    assert _field_error(html, "address_line1").startswith("Give the street address")
    assert 'value="Springfield"' in html
    assert any_dash.count(Patient) == before


def test_time_off_with_its_dates_backwards_and_half_a_time_range_is_refused_at_once(
    any_dash: Dashboard,
) -> None:
    nurse = any_dash.ids["nurse"]
    before = any_dash.count(NurseAvailabilityOverride)
    form = {
        "kind": "time_off",
        "start_date": "2030-05-02",
        "end_date": "2030-05-01",
        "start_time": "09:00",
    }

    response = any_dash.post("coordinator", f"/nurses/{nurse}/overrides", form)

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _summary(html) == [
        "The last date is before the first.",
        "Give both a start and an end time, or neither for all day.",
    ]
    assert any_dash.count(NurseAvailabilityOverride) == before


def test_weekly_hours_with_two_bad_days_name_both_and_keep_the_old_hours(
    any_dash: Dashboard,
) -> None:
    nurse = any_dash.ids["nurse"]
    before = any_dash.scalars(
        select(NurseAvailability.start_time).where(NurseAvailability.nurse_id == nurse)
    )
    form = {"start-0": "17:00", "end-0": "09:00", "start-2": "9 am", "end-2": "12:00"}

    response = any_dash.post("coordinator", f"/nurses/{nurse}/availability", form)

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _summary(html) == [
        "Monday: The end (09:00) must be after the start (17:00); use 00:00 for midnight.",
        "Wednesday: Start must be a time (HH:MM).",
    ]
    assert 'id="f-day-2" aria-invalid="true" aria-describedby="day-2-error"' in html
    after = any_dash.scalars(
        select(NurseAvailability.start_time).where(NurseAvailability.nurse_id == nurse)
    )
    assert after == before


def test_a_new_login_with_three_mistakes_hears_about_all_three(any_dash: Dashboard) -> None:
    before = any_dash.count(User)
    form = {"email": "nurse-at-home", "password": "short", "role": "owner"}

    response = any_dash.post("admin", "/staff/", form, headers={"HX-Request": "true"})

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _summary(html) == [
        "That email address does not look right.",
        "Passwords need at least 10 characters.",
        "Choose a role: Admin, Coordinator or Nurse.",
    ]
    assert _field_error(html, "role") == "Choose a role: Admin, Coordinator or Nurse."
    assert 'value="nurse-at-home"' in html
    assert any_dash.count(User) == before
