"""Home care basics: address and emergency contact, home visits that need and carry them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import select

from core.errors import ValidationError
from core.models import Appointment, AppointmentKind, Notification, Nurse, Patient
from core.notifications.feeds import calendar_feed
from core.notifications.reminders import queue_daily_agendas, schedule_reminders
from core.services.booking import (
    HOME_VISIT_NEEDS_ADDRESS,
    book_appointment,
    cancel_appointment,
    mark_completed,
    mark_no_show,
)
from core.services.people import create_patient, update_patient
from tests.notifications.helpers import TUESDAY
from tests.services.world import ACTOR, build_world, counts, local

HOME = {
    "address_line1": "412 Maple Avenue",
    "address_line2": "Apt 2",
    "address_city": "Arlington",
    "address_region": "VA",
    "address_postal_code": "22201",
}
CONTACT = {
    "emergency_contact_name": "Mary Smith",
    "emergency_contact_relationship": "Wife",
    "emergency_contact_phone": "+1 (202) 555-0111",
}
ONE_LINE = "412 Maple Avenue, Apt 2, Arlington, VA 22201"


def _give_address(factory, patient_id: int, now: datetime) -> None:
    with factory() as session:
        update_patient(session, patient_id, actor=ACTOR, now=now, **HOME, **CONTACT)
        session.commit()


def _book(factory, now, patient_id, kind=AppointmentKind.HOME_VISIT, hour=10) -> int:
    with factory() as session:
        appointment = book_appointment(
            session,
            patient_id=patient_id,
            start=local(TUESDAY, hour),
            kind=kind,
            actor=ACTOR,
            now=now,
        )
        session.commit()
        return appointment.id


def test_a_patient_keeps_an_address_and_an_emergency_contact(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    _give_address(session_factory, world.patient_id, frozen_now)
    with session_factory() as session:
        patient = session.get(Patient, world.patient_id)
        assert patient.has_address and patient.address == ONE_LINE
        assert patient.emergency_contact_name == "Mary Smith"
        assert patient.emergency_contact_phone == "+12025550111"  # stored as E.164


def test_a_partial_address_names_every_missing_part_and_changes_nothing(
    session_factory, frozen_now
):
    world = build_world(session_factory, frozen_now)
    with session_factory() as session, pytest.raises(ValidationError) as caught:
        update_patient(
            session,
            world.patient_id,
            actor=ACTOR,
            now=frozen_now,
            address_line2="Apt 2",
            emergency_contact_relationship="Wife",
            emergency_contact_phone="not a number",
        )
    errors = caught.value.details["errors"]
    assert set(errors) == {
        "address_line1",
        "address_city",
        "address_postal_code",
        "emergency_contact_name",
        "emergency_contact_phone",
    }
    assert "phone" in errors["emergency_contact_phone"]
    with session_factory() as session:
        patient = session.get(Patient, world.patient_id)
        assert patient.address_line2 is None and patient.emergency_contact_name is None


def test_creating_a_patient_reports_all_its_problems_at_once(session_factory, frozen_now):
    with session_factory() as session, pytest.raises(ValidationError) as caught:
        create_patient(
            session,
            actor=ACTOR,
            now=frozen_now,
            first_name="",
            last_name="Hughes",
            date_of_birth=None,
            phone="12",
            time_zone="America/New_York",
            email="not-an-email",
            address_city="Arlington",
        )
    errors = caught.value.details["errors"]
    assert {"first_name", "date_of_birth", "phone", "email", "address_line1"} <= set(errors)
    assert "more to fix" in caught.value.message
    with session_factory() as session:
        assert session.scalar(select(Patient.id)) is None


def test_a_home_visit_for_a_patient_without_an_address_is_refused(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    before = counts(session_factory)
    with pytest.raises(ValidationError) as caught:
        _book(session_factory, frozen_now, world.patient_id)
    assert caught.value.message == HOME_VISIT_NEEDS_ADDRESS
    assert caught.value.field == "kind"
    assert counts(session_factory) == before
    _book(session_factory, frozen_now, world.patient_id, kind=AppointmentKind.PHONE)


def test_a_home_visit_reminder_says_where_and_nothing_clinical(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    _give_address(session_factory, world.patient_id, frozen_now)
    home = _book(session_factory, frozen_now, world.patient_id)
    phone = _book(session_factory, frozen_now, world.patient_id, AppointmentKind.PHONE, hour=14)
    with session_factory() as session:
        for appointment_id in (home, phone):
            schedule_reminders(session, session.get(Appointment, appointment_id), frozen_now)
        session.commit()
        bodies = {
            n.appointment_id: n.body
            for n in session.scalars(
                select(Notification).where(Notification.event == "reminder_24h")
            )
        }
    assert f"at {ONE_LINE}." in bodies[home]
    assert "Maple" not in bodies[phone]
    assert "Diabetes" not in bodies[home] and "Mary" not in bodies[home]


def test_the_nurses_agenda_gives_the_address_of_a_home_visit(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    _give_address(session_factory, world.patient_id, frozen_now)
    _book(session_factory, frozen_now, world.patient_id)
    seven_am = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)  # 07:00 in New York
    with session_factory() as session:
        agenda = queue_daily_agendas(session, seven_am)
        session.commit()
        body = agenda[0].body
    assert f"10:00 home visit with John at {ONE_LINE} (appointment #" in body


def _feed(factory, nurse_id: int, now: datetime) -> dict[int, object]:
    with factory() as session:
        feed = calendar_feed(session, session.get(Nurse, nurse_id), now)
    events = Calendar.from_ical(feed).walk("VEVENT")
    return {int(str(e["UID"]).split("-")[1].split("@")[0]): e for e in events}


def test_feed_events_of_home_visits_carry_the_address_as_location(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    _give_address(session_factory, world.patient_id, frozen_now)
    home = _book(session_factory, frozen_now, world.patient_id)
    phone = _book(session_factory, frozen_now, world.patient_id, AppointmentKind.PHONE, hour=14)
    events = _feed(session_factory, world.nurse_id, frozen_now)
    assert str(events[home]["LOCATION"]) == ONE_LINE
    assert "LOCATION" not in events[phone]
    assert "Mary" not in events[home].to_ical().decode()


def test_feed_status_follows_the_visit(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    ids = [
        _book(session_factory, frozen_now, world.patient_id, AppointmentKind.PHONE, hour=h)
        for h in (9, 11, 13, 15)
    ]
    after = local(TUESDAY, 16)
    with session_factory() as session:
        mark_no_show(session, ids[0], actor=ACTOR, now=after)
        mark_completed(session, ids[1], actor=ACTOR, now=after)
        cancel_appointment(session, ids[2], actor=ACTOR, now=frozen_now)
        session.commit()
    events = _feed(session_factory, world.nurse_id, after + timedelta(minutes=1))
    statuses = [(str(events[i]["STATUS"]), str(events[i]["TRANSP"])) for i in ids]
    assert statuses == [
        ("CANCELLED", "TRANSPARENT"),  # no-show
        ("CONFIRMED", "OPAQUE"),  # completed
        ("CANCELLED", "TRANSPARENT"),  # cancelled
        ("CONFIRMED", "OPAQUE"),  # still scheduled
    ]
