"""Appointments: list and filters, booking from free slots, conflicts, changes, closing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from core.db import make_engine, make_session_factory
from core.models import Appointment, AppointmentStatus, AuditEvent, Nurse, Patient
from core.services.availability import add_override
from core.services.common import Actor
from tests.webapp.dashboard.conftest import Dashboard
from webapp import db
from webapp.dashboard import appointments

SLOT = re.compile(r'name="start" value="([^"]+)"')


def _free_starts(dash: Dashboard, patient_id: int, days_ahead: int = 3) -> list[str]:
    day = (datetime.now(UTC) + timedelta(days=days_ahead)).date().isoformat()
    html = dash.client("coordinator").get(
        f"/appointments/slots?patient_id={patient_id}&day={day}", headers={"HX-Request": "true"}
    )
    return SLOT.findall(html.get_data(as_text=True))


def test_choosing_a_patient_proposes_their_nurses_free_slots(dash: Dashboard) -> None:
    starts = _free_starts(dash, dash.ids["patient"])
    assert starts and all("+00:00" in s for s in starts)
    html = dash.client("coordinator").get(f"/appointments/new?patient_id={dash.ids['patient']}")
    assert "Free times with Dr. Alice Wilson" in html.get_data(as_text=True)


def test_booking_a_proposed_slot_creates_the_appointment(dash: Dashboard) -> None:
    start = _free_starts(dash, dash.ids["patient"])[0]
    before = dash.count(Appointment)
    response = dash.post(
        "coordinator",
        "/appointments/new",
        {"patient_id": dash.ids["patient"], "start": start, "kind": "video", "reason": "Check"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].startswith("/appointments/")
    assert dash.count(Appointment) == before + 1
    booked = dash.scalar(select(Appointment).order_by(Appointment.id.desc()))
    assert booked.start_at == datetime.fromisoformat(start) and booked.kind == "video"


def test_a_taken_slot_shows_the_conflict_with_alternatives_that_can_be_booked(
    dash: Dashboard,
) -> None:
    start = _free_starts(dash, dash.ids["patient"])[0]
    dash.post(
        "coordinator", "/appointments/new", {"patient_id": dash.ids["patient"], "start": start}
    )
    count = dash.count(Appointment)
    # Sarah Johnson has the same primary nurse: the same time is now taken.
    sarah = dash.scalar(select(Patient.id).where(Patient.last_name == "Johnson"))
    response = dash.post(
        "coordinator",
        "/appointments/new",
        {"patient_id": sarah, "start": start},
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert 'id="conflict"' in html and "cannot be booked" in html
    alternatives = re.findall(r'class="slot alternative"', html)
    assert alternatives
    assert dash.count(Appointment) == count
    alternative = SLOT.findall(html.split('id="conflict"')[1])[0]
    booked = dash.post(
        "coordinator", "/appointments/new", {"patient_id": sarah, "start": alternative}
    )
    assert booked.status_code == 303
    assert dash.count(Appointment) == count + 1


def test_a_typed_local_time_is_read_in_the_viewers_zone(dash: Dashboard) -> None:
    start = datetime.fromisoformat(_free_starts(dash, dash.ids["patient"])[0])
    local = start.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%dT%H:%M")
    response = dash.post(
        "coordinator",
        "/appointments/new",
        {"patient_id": dash.ids["patient"], "start_local": local},
    )
    assert response.status_code == 303
    assert dash.scalar(select(Appointment.start_at).order_by(Appointment.id.desc())) == start


def test_bad_booking_input_is_422_next_to_the_field_and_writes_nothing(dash: Dashboard) -> None:
    before = dash.count(Appointment)
    for data, field in [
        ({"start_local": "2030-01-01T10:00"}, "patient_id"),
        ({"patient_id": dash.ids["patient"], "start_local": ""}, "start_local"),
        ({"patient_id": dash.ids["patient"], "start_local": "tomorrow"}, "start_local"),
        (
            {"patient_id": dash.ids["patient"], "start": "2030-01-01T10:00:00+00:00", "kind": "x"},
            "kind",
        ),
    ]:
        response = dash.post("coordinator", "/appointments/new", data)
        assert response.status_code == 422, data
        assert f'id="{field}-error"' in response.get_data(as_text=True), data
    assert dash.count(Appointment) == before


def test_cancelling_needs_a_reason_and_records_it(dash: Dashboard) -> None:
    appointment_id = dash.ids["appointment"]
    refused = dash.post("coordinator", f"/appointments/{appointment_id}/cancel", {"note": "x"})
    assert refused.status_code == 422
    assert 'id="reason_code-error"' in refused.get_data(as_text=True)
    response = dash.post(
        "coordinator",
        f"/appointments/{appointment_id}/cancel",
        {"reason_code": "clinical", "note": "In hospital"},
    )
    assert response.status_code == 303
    row = dash.scalar(select(Appointment).where(Appointment.id == appointment_id))
    assert (row.status, row.cancel_reason, row.cancel_note) == (
        "cancelled",
        "clinical",
        "In hospital",
    )
    again = dash.post(
        "coordinator", f"/appointments/{appointment_id}/cancel", {"reason_code": "clinical"}
    )
    assert again.status_code == 422


def test_rescheduling_moves_the_visit_to_a_free_slot(dash: Dashboard) -> None:
    appointment_id = dash.ids["appointment"]
    day = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    page = dash.client("coordinator").get(f"/appointments/{appointment_id}/reschedule?day={day}")
    start = SLOT.findall(page.get_data(as_text=True))[0]
    response = dash.post(
        "coordinator", f"/appointments/{appointment_id}/reschedule", {"start": start, "day": day}
    )
    assert response.status_code == 303
    new = dash.scalar(select(Appointment).where(Appointment.rescheduled_from_id == appointment_id))
    assert new.start_at == datetime.fromisoformat(start)
    assert response.location == f"/appointments/{new.id}"
    # Each visit links to the other: the old one to where it went, the new one to where from.
    old_page = dash.client("coordinator").get(f"/appointments/{appointment_id}")
    assert f'<dt>Moved to</dt><dd><a href="/appointments/{new.id}">' in old_page.get_data(
        as_text=True
    )
    new_page = dash.client("coordinator").get(f"/appointments/{new.id}").get_data(as_text=True)
    assert f'<dt>Moved from</dt><dd><a href="/appointments/{appointment_id}">' in new_page
    assert "<dt>Moved to</dt>" not in new_page


def test_a_nurse_closes_their_own_started_visit_but_not_someone_elses(dash: Dashboard) -> None:
    appointment_id, other = dash.ids["appointment"], dash.ids["other_appointment"]
    engine = make_engine(dash.url)
    past = datetime.now(UTC) - timedelta(hours=3)
    with engine.begin() as connection:
        connection.execute(
            update(Appointment)
            .where(Appointment.id.in_([appointment_id, other]))
            .values(start_at=past, end_at=past + timedelta(minutes=30))
        )
    engine.dispose()
    assert dash.post("nurse", f"/appointments/{other}/no-show").status_code == 404
    response = dash.post("nurse", f"/appointments/{appointment_id}/complete")
    assert response.status_code == 303
    status = dash.scalar(select(Appointment.status).where(Appointment.id == appointment_id))
    assert status == AppointmentStatus.COMPLETED
    assert dash.post("coordinator", f"/appointments/{other}/no-show").status_code == 303


def test_a_future_visit_cannot_be_closed(dash: Dashboard) -> None:
    before = dash.count(AuditEvent)
    response = dash.post("coordinator", f"/appointments/{dash.ids['appointment']}/complete")
    assert response.status_code == 422
    assert "has not started yet" in response.get_data(as_text=True)
    assert dash.count(AuditEvent) == before


def test_the_list_filters_by_status_nurse_dates_and_patient(any_dash: Dashboard) -> None:
    dash = any_dash
    client = dash.client("coordinator")
    nurse = dash.ids["other_nurse"]
    html = client.get(f"/appointments/?nurse_id={nurse}").get_data(as_text=True)
    assert "Emily Davis" in html and "John Smith" not in html
    assert "No appointment matches" in client.get("/appointments/?status=no_show").get_data(
        as_text=True
    )
    html = client.get("/appointments/?q=smith").get_data(as_text=True)
    assert "John Smith" in html and "Emily Davis" not in html
    bad = client.get("/appointments/?from=someday")
    assert bad.status_code == 422 and "must be a date" in bad.get_data(as_text=True)
    past = client.get("/appointments/?to=2000-01-01").get_data(as_text=True)
    assert "No appointment matches" in past


def test_a_nurse_lists_only_their_own_appointments(dash: Dashboard) -> None:
    html = dash.client("nurse").get("/appointments/").get_data(as_text=True)
    assert "Dr. Alice Wilson" in html and "Dr. Maria Garcia" not in html


def test_times_show_the_viewers_zone_and_the_patients_where_it_differs(dash: Dashboard) -> None:
    sarah = dash.scalar(select(Patient.id).where(Patient.last_name == "Johnson"))
    sarah_visit = dash.scalar(
        select(Appointment.id).where(Appointment.patient_id == sarah).order_by(Appointment.id)
    )
    html = dash.client("coordinator").get(f"/appointments/{sarah_visit}").get_data(as_text=True)
    assert re.search(r"\d\d:\d\d E[SD]T", html)  # New York, the default zone
    assert re.search(r"\(patient \d\d:\d\d C[SD]T\)", html)  # Sarah is in Chicago
    assert "America/New_York" in html


def test_a_large_agency_filters_appointments_by_nurse_name_instead_of_a_dropdown(
    any_dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = any_dash.client("coordinator")
    assert 'name="nurse_id"' in client.get("/appointments/").get_data(as_text=True)
    monkeypatch.setattr(appointments, "NURSE_DROPDOWN_LIMIT", 2)
    page = client.get("/appointments/").get_data(as_text=True)
    assert 'name="nurse_id"' not in page and 'name="nurse"' in page
    wilson = client.get("/appointments/?nurse=wilson").get_data(as_text=True)
    assert "Alice Wilson" in wilson and "Maria Garcia" not in wilson
    garcia = client.get("/appointments/?nurse=Garcia").get_data(as_text=True)
    assert "Maria Garcia" in garcia and "Alice Wilson" not in garcia


def test_long_lists_count_only_up_to_a_limit(
    any_dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    visits = _add_past_visits(any_dash, 60)
    client = any_dash.client("coordinator")
    listing = "/appointments/?from=2020-01-01&to=2020-12-31"
    assert "Page 1 of 3 (60)" in client.get(listing).get_data(as_text=True)
    monkeypatch.setattr(appointments, "COUNT_LIMIT", 30)
    first = client.get(listing).get_data(as_text=True)
    assert "Page 1 of 2+ (30+)" in first and _row_ids(first) == visits[:25]
    # Past what the pager counts: the last page it offers, with no next link.
    last = client.get(f"{listing}&page=9").get_data(as_text=True)
    assert "Page 2 of 2+ (30+)" in last and _row_ids(last) == visits[25:50]
    assert "Next &rarr;" not in last


def _add_past_visits(dash: Dashboard, count: int) -> list[int]:
    """`count` completed visits with the other nurse, an hour apart in 2020; their ids in order."""
    first = datetime(2020, 3, 2, 14, tzinfo=UTC)
    with dash.app.app_context():
        visits = [
            Appointment(
                nurse_id=dash.ids["other_nurse"],
                patient_id=dash.ids["other_patient"],
                start_at=first + timedelta(hours=hour),
                end_at=first + timedelta(hours=hour, minutes=30),
                status=AppointmentStatus.COMPLETED,
                created_at=first,
                updated_at=first,
            )
            for hour in range(count)
        ]
        db.session.add_all(visits)
        db.session.commit()
        return [visit.id for visit in visits]


def _row_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'id="appointment-row-(\d+)"', html)]


def test_the_list_pages_through_a_long_history_and_clamps_to_its_last_page(
    any_dash: Dashboard,
) -> None:
    visits = _add_past_visits(any_dash, 30)
    client = any_dash.client("coordinator")
    listing = "/appointments/?from=2020-01-01&to=2020-12-31"
    first = client.get(listing).get_data(as_text=True)
    assert "Page 1 of 2 (30)" in first and _row_ids(first) == visits[:25]
    second = client.get(f"{listing}&page=2").get_data(as_text=True)
    assert "Page 2 of 2 (30)" in second and _row_ids(second) == visits[25:]
    beyond = client.get(f"{listing}&page=9").get_data(as_text=True)
    assert "Page 2 of 2 (30)" in beyond and _row_ids(beyond) == visits[25:]
    newest = client.get(f"{listing}&order=desc").get_data(as_text=True)
    assert _row_ids(newest) == visits[::-1][:25]
    nothing = client.get("/appointments/?to=2000-01-01&page=3").get_data(as_text=True)
    assert "No appointment matches" in nothing and "0 in all." in nothing
    # A nurse's list of the same dates is scoped to their own visits: none of these.
    theirs = any_dash.client("nurse").get(f"{listing}&page=2").get_data(as_text=True)
    assert _row_ids(theirs) == [] and "0 in all." in theirs


def test_when_the_nurse_is_away_the_backup_nurses_offered_times_book_with_her(
    dash: Dashboard,
) -> None:
    john = dash.ids["patient"]  # primary Dr. Alice Wilson, backup Dr. Chen
    start = _free_starts(dash, john)[0]
    engine = make_engine(dash.url)
    with make_session_factory(engine)() as session:
        today = datetime.now(UTC).date()
        add_override(
            session,
            dash.ids["nurse"],
            kind="time_off",
            start_date=today,
            end_date=today + timedelta(days=120),
            actor=Actor.system(),
            now=datetime.now(UTC),
        )
        session.commit()
        chen = session.scalar(select(Nurse).where(Nurse.last_name == "Chen"))
        assert chen is not None
    engine.dispose()
    before = dash.count(Appointment)

    refused = dash.post("coordinator", "/appointments/new", {"patient_id": john, "start": start})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 409 and f"with {chen.display_name}" in html
    offered = re.findall(r'name="start_with" value="([^"]+)"', html)
    assert offered and all(value.startswith(f"{chen.id}/") for value in offered)
    garbled = dash.post(
        "coordinator", "/appointments/new", {"patient_id": john, "start_with": "x/y"}
    )
    assert garbled.status_code == 422 and dash.count(Appointment) == before

    booked = dash.post(
        "coordinator", "/appointments/new", {"patient_id": john, "start_with": offered[0]}
    )
    assert booked.status_code == 303
    newest = dash.scalar(select(Appointment).order_by(Appointment.id.desc()))
    assert newest.nurse_id == chen.id and newest.patient_id == john


def test_for_a_patient_whose_nurse_is_inactive_the_form_offers_the_backups_times(
    dash: Dashboard,
) -> None:
    john = dash.ids["patient"]  # primary Dr. Alice Wilson, backup Dr. Chen
    engine = make_engine(dash.url)  # she left without a hand-over (as before that existed)
    with engine.begin() as connection:
        connection.execute(update(Nurse).where(Nurse.id == dash.ids["nurse"]).values(active=False))
    engine.dispose()
    chen = dash.scalar(select(Nurse).where(Nurse.last_name == "Chen"))
    form = dash.client("coordinator").get(f"/appointments/new?patient_id={john}")
    assert f"Free times with {chen.display_name}" in form.get_data(as_text=True)
    start = _free_starts(dash, john)[0]
    booked = dash.post("coordinator", "/appointments/new", {"patient_id": john, "start": start})
    assert booked.status_code == 303
    newest = dash.scalar(select(Appointment).order_by(Appointment.id.desc()))
    assert newest.nurse_id == chen.id


def test_a_typed_time_the_clocks_skip_is_refused_with_the_nearest_and_books_nothing(
    dash: Dashboard,
) -> None:
    before = dash.count(Appointment)
    response = dash.post(
        "coordinator",
        "/appointments/new",
        {"patient_id": dash.ids["patient"], "start_local": "2027-03-14T02:30"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    error = re.search(r'id="start_local-error"[^>]*>([^<]*)<', html)
    assert error is not None
    assert "02:30 does not exist on Sun 14 Mar 2027" in error.group(1)
    assert "Choose 01:45 or 03:00 instead." in error.group(1)
    assert dash.count(Appointment) == before


def test_a_typed_time_the_clocks_repeat_books_the_first_and_says_which(dash: Dashboard) -> None:
    engine = make_engine(dash.url)
    with make_session_factory(engine)() as session:
        session.execute(update(Nurse).where(Nurse.id == dash.ids["nurse"]).values(horizon_days=365))
        add_override(
            session,
            dash.ids["nurse"],
            kind="extra_hours",
            start_date=datetime(2027, 11, 7).date(),
            start_time=datetime(2027, 11, 7, 0, 0).time(),
            end_time=datetime(2027, 11, 7, 4, 0).time(),
            actor=Actor.system(),
            now=datetime.now(UTC),
        )
        session.commit()
    engine.dispose()
    response = dash.post(
        "coordinator",
        "/appointments/new",
        {"patient_id": dash.ids["patient"], "start_local": "2027-11-07T01:30"},
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    booked = dash.scalar(select(Appointment.start_at).order_by(Appointment.id.desc()))
    assert booked == datetime(2027, 11, 7, 5, 30, tzinfo=UTC)  # 01:30 EDT, the first one
    page = dash.client("coordinator").get(response.headers["Location"]).get_data(as_text=True)
    assert "01:30 happens twice on Sun 7 Nov 2027 in America/New_York" in page
    assert "this visit is at the first one, 01:30 EDT (UTC-0400)" in page


def _set_nurse(dash: Dashboard, **values: object) -> None:
    engine = make_engine(dash.url)
    with engine.begin() as connection:
        connection.execute(update(Nurse).where(Nurse.id == dash.ids["nurse"]).values(**values))
    engine.dispose()


def test_a_coordinator_books_inside_the_notice_only_with_a_reason_the_audit_keeps(
    dash: Dashboard,
) -> None:
    john = dash.ids["patient"]
    start = _free_starts(dash, john)[0]
    _set_nurse(dash, min_notice_minutes=10 * 24 * 60)  # now that time is too soon
    before = dash.count(Appointment)

    refused = dash.post("coordinator", "/appointments/new", {"patient_id": john, "start": start})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "Book anyway at" in html
    assert f'name="override_start" value="{start}"' in html
    blank = dash.post(
        "coordinator",
        "/appointments/new",
        {"patient_id": john, "override_start": start, "override_reason": "  "},
    )
    blank_html = blank.get_data(as_text=True)
    assert blank.status_code == 409 and 'id="override_reason-error"' in blank_html
    assert dash.count(Appointment) == before

    booked = dash.post(
        "coordinator",
        "/appointments/new",
        {"patient_id": john, "override_start": start, "override_reason": "Discharged today"},
    )
    assert booked.status_code == 303
    visit = dash.scalar(select(Appointment).order_by(Appointment.id.desc()))
    assert visit.start_at == datetime.fromisoformat(start)
    event = dash.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "appointment.booked", AuditEvent.entity_id == visit.id
        )
    )
    assert event.details["rule_waived"] == "too_soon"
    assert event.details["override_reason"] == "Discharged today"


def test_hours_are_never_waived_even_with_a_reason(dash: Dashboard) -> None:
    john = dash.ids["patient"]
    start = _free_starts(dash, john)[0]
    _set_nurse(dash, min_notice_minutes=10 * 24 * 60)
    night = datetime.fromisoformat(start).replace(hour=3, minute=0)  # outside her hours
    before = dash.count(Appointment)
    refused = dash.post(
        "coordinator",
        "/appointments/new",
        {"patient_id": john, "override_start": night.isoformat(), "override_reason": "Urgent"},
    )
    html = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "Book anyway" not in html
    assert dash.count(Appointment) == before


def test_the_form_opens_on_the_nurses_first_day_with_free_time(dash: Dashboard) -> None:
    engine = make_engine(dash.url)
    today = datetime.now(UTC).date()
    with make_session_factory(engine)() as session:
        add_override(
            session,
            dash.ids["nurse"],
            kind="time_off",
            start_date=today,
            end_date=today + timedelta(days=6),
            actor=Actor.system(),
            now=datetime.now(UTC),
        )
        session.commit()
    engine.dispose()
    html = (
        dash.client("coordinator")
        .get(f"/appointments/new?patient_id={dash.ids['patient']}")
        .get_data(as_text=True)
    )
    shown = re.search(r"Free times with Dr\. Alice Wilson on (\w{3} \d+ \w{3})", html)
    assert shown is not None
    candidates = {(today + timedelta(days=n)).strftime("%a %-d %b"): n for n in range(0, 30)}
    assert candidates[shown.group(1)] > 6  # after her week away, not tomorrow
    assert SLOT.findall(html.split('id="slots"')[1])  # and it has times to pick


def test_next_available_lists_the_care_team_and_books_with_the_backup(dash: Dashboard) -> None:
    john = dash.ids["patient"]  # primary Dr. Alice Wilson, backup Dr. Chen
    chen = dash.scalar(select(Nurse).where(Nurse.last_name == "Chen"))
    page = dash.client("coordinator").get(
        f"/appointments/next-available?patient_id={john}", headers={"HX-Request": "true"}
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Dr. Alice Wilson" in html and chen.display_name in html
    offered = re.findall(r'name="start_with" value="([^"]+)"', html)
    with_chen = [value for value in offered if value.startswith(f"{chen.id}/")]
    assert with_chen
    booked = dash.post(
        "coordinator", "/appointments/new", {"patient_id": john, "start_with": with_chen[0]}
    )
    assert booked.status_code == 303
    newest = dash.scalar(select(Appointment).order_by(Appointment.id.desc()))
    assert newest.nurse_id == chen.id
    missing = dash.client("coordinator").get("/appointments/next-available?patient_id=999999")
    assert missing.status_code == 404
