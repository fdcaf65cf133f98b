"""Nurses: create, edit, deactivate, search, weekly hours and overrides."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core.models import Appointment, Nurse, NurseAvailability, NurseAvailabilityOverride
from tests.webapp.dashboard.conftest import Dashboard
from webapp import db

NEW_NURSE = {
    "title": "RN",
    "first_name": "Nora",
    "last_name": "Quinn",
    "specializations": "Cardiology, Wound Care",
    "phone": "+12025550199",
    "email": "nora@example.test",
    "time_zone": "America/Chicago",
    "visit_minutes": "45",
    "buffer_before_minutes": "0",
    "buffer_after_minutes": "15",
    "min_notice_minutes": "60",
    "horizon_days": "30",
    "slot_step_minutes": "15",
    "daily_cap": "",
}


def test_a_coordinator_adds_a_nurse_with_specialisations_and_visit_settings(
    dash: Dashboard,
) -> None:
    response = dash.post("coordinator", "/nurses/new", NEW_NURSE)
    assert response.status_code == 303
    nurse = dash.scalar(select(Nurse).where(Nurse.last_name == "Quinn"))
    assert nurse.specializations == ["Cardiology", "Wound Care"]
    assert (nurse.time_zone, nurse.visit_minutes, nurse.buffer_after_minutes) == (
        "America/Chicago",
        45,
        15,
    )
    assert response.location == f"/nurses/{nurse.id}"


def test_bad_nurse_input_is_shown_next_to_its_field_with_422_and_nothing_is_written(
    dash: Dashboard,
) -> None:
    before = dash.count(Nurse)
    for field, value, message in [
        ("first_name", "", "First name is required."),
        ("time_zone", "Mars/Olympus", "Unknown time zone"),
        ("visit_minutes", "ten", "must be a whole number"),
        ("visit_minutes", "1000", "between 5 and 480"),
        ("phone", "12", "international form"),
    ]:
        response = dash.post(
            "coordinator",
            "/nurses/new",
            {**NEW_NURSE, field: value},
            headers={"HX-Request": "true"},
        )
        html = response.get_data(as_text=True)
        assert response.status_code == 422, field
        assert f'id="{field}-error"' in html and message in html, field
        assert html.lstrip().startswith('<form id="nurse-form"')  # the fragment replaces itself
    assert dash.count(Nurse) == before


def test_editing_cannot_deactivate_a_nurse_who_still_has_visits_or_patients(
    dash: Dashboard,
) -> None:
    nurse_id = dash.ids["nurse"]
    data = {**NEW_NURSE, "first_name": "Alice", "last_name": "Wilson", "email": ""}
    response = dash.post("admin", f"/nurses/{nurse_id}/edit", data)  # no "active": unticked
    assert response.status_code == 422
    assert "hand them over first" in response.get_data(as_text=True)
    assert dash.scalar(select(Nurse.active).where(Nurse.id == nurse_id)) is True


def _new_nurse(dash: Dashboard) -> int:
    assert dash.post("coordinator", "/nurses/new", NEW_NURSE).status_code == 303
    return dash.scalar(select(Nurse.id).where(Nurse.last_name == NEW_NURSE["last_name"]))


def test_the_row_button_toggles_a_nurse_with_nothing_to_hand_over(dash: Dashboard) -> None:
    nurse_id = _new_nurse(dash)
    response = dash.post(
        "coordinator", f"/nurses/{nurse_id}/active", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "Reactivate" in response.get_data(as_text=True)
    assert dash.scalar(select(Nurse.active).where(Nurse.id == nurse_id)) is False
    back = dash.post("coordinator", f"/nurses/{nurse_id}/active", headers={"HX-Request": "true"})
    assert f'href="/nurses/{nurse_id}/deactivate"' in back.get_data(as_text=True)
    assert dash.scalar(select(Nurse.active).where(Nurse.id == nurse_id)) is True


def test_the_nurse_list_searches_by_name_and_specialisation(dash: Dashboard) -> None:
    client = dash.client("coordinator")
    by_name = client.get("/nurses/?q=garc", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Maria Garcia" in by_name and "Alice Wilson" not in by_name
    by_skill = client.get("/nurses/?q=cardio").get_data(as_text=True)
    assert "Michael Chen" in by_skill and "Maria Garcia" not in by_skill
    assert "No nurse matches" in client.get("/nurses/?q=zzz").get_data(as_text=True)


def test_the_weekly_grid_saves_windows_per_weekday(dash: Dashboard) -> None:
    nurse_id = dash.ids["nurse"]
    data = {
        "start-0": ["08:00", "13:00", ""],
        "end-0": ["12:00", "17:00", ""],
        "start-2": ["09:00", ""],
        "end-2": ["00:00", ""],
    }
    response = dash.post("coordinator", f"/nurses/{nurse_id}/availability", data)
    assert response.status_code == 200
    assert "Weekly hours saved." in response.get_data(as_text=True)
    rows = dash.scalar(
        select(NurseAvailability.id).where(NurseAvailability.nurse_id == nurse_id).limit(1)
    )
    assert rows is not None
    assert dash.count(NurseAvailability, NurseAvailability.nurse_id == nurse_id) == 3


def test_an_overlapping_or_backwards_window_is_shown_on_its_weekday_and_nothing_changes(
    dash: Dashboard,
) -> None:
    nurse_id = dash.ids["nurse"]
    before = dash.count(NurseAvailability, NurseAvailability.nurse_id == nurse_id)
    overlap = {"start-1": ["08:00", "11:00"], "end-1": ["12:00", "14:00"]}
    response = dash.post("coordinator", f"/nurses/{nurse_id}/availability", overlap)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="day-1-error"' in html and "overlaps" in html
    backwards = {"start-4": ["17:00"], "end-4": ["09:00"]}
    response = dash.post("coordinator", f"/nurses/{nurse_id}/availability", backwards)
    assert response.status_code == 422
    assert 'id="day-4-error"' in response.get_data(as_text=True)
    garbage = {"start-3": ["nine"], "end-3": ["17:00"]}
    response = dash.post("coordinator", f"/nurses/{nurse_id}/availability", garbage)
    assert response.status_code == 422 and 'id="day-3-error"' in response.get_data(as_text=True)
    assert dash.count(NurseAvailability, NurseAvailability.nurse_id == nurse_id) == before


def test_time_off_over_booked_visits_lists_them(dash: Dashboard) -> None:
    nurse_id = dash.ids["nurse"]
    visit = dash.scalar(
        select(Appointment).where(Appointment.nurse_id == nurse_id).order_by(Appointment.start_at)
    )
    day = visit.start_at.astimezone(ZoneInfo("America/New_York")).date()
    response = dash.post(
        "coordinator",
        f"/nurses/{nurse_id}/overrides",
        {"kind": "time_off", "start_date": day.isoformat(), "reason": "Training"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="override-collisions"' in html
    assert f"/appointments/{visit.id}" in html
    assert dash.count(NurseAvailabilityOverride) == 1


def test_bad_override_input_is_422_next_to_the_field_and_writes_nothing(dash: Dashboard) -> None:
    nurse_id = dash.ids["nurse"]
    today = datetime.now(UTC).date()
    cases = [
        ({"kind": "time_off", "start_date": ""}, "start_date"),
        ({"kind": "time_off", "start_date": "soon"}, "start_date"),
        (
            {
                "kind": "time_off",
                "start_date": today.isoformat(),
                "end_date": (today - timedelta(days=2)).isoformat(),
            },
            "end_date",
        ),
        (
            {"kind": "extra_hours", "start_date": today.isoformat(), "start_time": "10:00"},
            "end_time",
        ),
    ]
    for data, field in cases:
        response = dash.post("coordinator", f"/nurses/{nurse_id}/overrides", data)
        assert response.status_code == 422, data
        assert f'id="{field}-error"' in response.get_data(as_text=True), data
    assert dash.count(NurseAvailabilityOverride) == 0


def test_an_override_can_be_removed_but_only_through_its_own_nurse(dash: Dashboard) -> None:
    nurse_id, other = dash.ids["nurse"], dash.ids["other_nurse"]
    day = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    dash.post(
        "coordinator", f"/nurses/{nurse_id}/overrides", {"kind": "time_off", "start_date": day}
    )
    override_id = dash.scalar(select(NurseAvailabilityOverride.id))
    wrong = dash.post("coordinator", f"/nurses/{other}/overrides/{override_id}/delete")
    assert wrong.status_code == 404
    right = dash.post("coordinator", f"/nurses/{nurse_id}/overrides/{override_id}/delete")
    assert right.status_code == 200
    assert dash.count(NurseAvailabilityOverride) == 0


def _upcoming_visits(dash: Dashboard, nurse_id: int) -> set[int]:
    """Ids of the nurse's scheduled visits that have not ended yet."""
    now = datetime.now(UTC)
    with dash.app.app_context():
        return set(
            db.session.scalars(
                select(Appointment.id).where(
                    Appointment.nurse_id == nurse_id,
                    Appointment.status == "scheduled",
                    Appointment.end_at > now,
                )
            )
        )


def test_new_weekly_hours_list_the_booked_visits_they_leave_outside(dash: Dashboard) -> None:
    nurse_id = dash.ids["nurse"]
    upcoming = _upcoming_visits(dash, nurse_id)
    assert upcoming  # the demo data books her visits
    early_sundays = {"start-6": ["06:00"], "end-6": ["07:00"]}
    response = dash.post("coordinator", f"/nurses/{nurse_id}/availability", early_sundays)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Weekly hours saved." in html
    warning = html.split('id="visits-outside-hours"')[1].split("</div>")[0]
    listed = {int(i) for i in re.findall(r'href="/appointments/(\d+)"', warning)}
    assert listed == upcoming
    every_day = {f"start-{d}": ["00:00"] for d in range(7)} | {
        f"end-{d}": ["00:00"] for d in range(7)
    }
    response = dash.post("coordinator", f"/nurses/{nurse_id}/availability", every_day)
    assert 'id="visits-outside-hours"' not in response.get_data(as_text=True)


def test_deactivating_a_nurse_with_visits_leads_to_the_hand_over_page_first(
    dash: Dashboard,
) -> None:
    nurse_id = dash.ids["nurse"]
    booked = _upcoming_visits(dash, nurse_id)
    assert len(booked) > 1  # the demo data books her visits
    off = dash.post("coordinator", f"/nurses/{nurse_id}/active", headers={"HX-Request": "true"})
    assert off.headers["HX-Redirect"] == f"/nurses/{nurse_id}/deactivate"
    assert dash.scalar(select(Nurse.active).where(Nurse.id == nurse_id)) is True
    page = dash.client("coordinator").get(f"/nurses/{nurse_id}/deactivate")
    html = page.get_data(as_text=True)
    assert f"Her upcoming visits ({len(booked)})" in html
    assert all(f'name="visit-{visit}"' in html for visit in booked)
    assert f'name="patient-{dash.ids["patient"]}"' in html  # she is John Smith's primary


def test_removing_extra_hours_lists_the_visits_booked_in_them(dash: Dashboard) -> None:
    nurse_id, john = dash.ids["nurse"], dash.ids["patient"]
    nurse = dash.scalar(select(Nurse).where(Nurse.id == nurse_id))
    tz = ZoneInfo(nurse.time_zone)
    day = datetime.now(tz).date() + timedelta(days=10)
    while day.weekday() != 6:  # a Sunday evening: outside her usual 10:00-14:00
        day += timedelta(days=1)
    extra = {"kind": "extra_hours", "start_date": day.isoformat()}
    dash.post(
        "coordinator",
        f"/nurses/{nurse_id}/overrides",
        {**extra, "start_time": "18:00", "end_time": "20:00"},
    )
    override_id = dash.scalar(select(NurseAvailabilityOverride.id))
    start = datetime(day.year, day.month, day.day, 18, 0, tzinfo=tz)
    booked = dash.post(
        "coordinator", "/appointments/new", {"patient_id": john, "start": start.isoformat()}
    )
    assert booked.status_code == 303
    visit = dash.scalar(select(Appointment.id).order_by(Appointment.id.desc()))

    removed = dash.post("coordinator", f"/nurses/{nurse_id}/overrides/{override_id}/delete")
    warning = removed.get_data(as_text=True).split('id="override-stranded"')[1].split("</div>")[0]
    assert re.findall(r'href="/appointments/(\d+)"', warning) == [str(visit)]
