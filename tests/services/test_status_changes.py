"""Status changes with notes, their record, and undo (each test on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.appointment_status import UNDO_WINDOW
from core.errors import InvalidState, ValidationError
from core.models import Appointment, AppointmentStatus, AuditEvent, Notification, StatusChange
from core.services.booking import (
    book_appointment,
    cancel_appointment,
    mark_completed,
    mark_no_show,
    undo_status_change,
)
from core.services.people import update_nurse
from tests.services.world import ACTOR, World, away, build_world, counts, local

TUESDAY = date(2025, 3, 4)


@pytest.fixture
def world(session_factory: sessionmaker[Session], frozen_now: datetime) -> World:
    """Nurses, patients, hours and assignments, committed."""
    return build_world(session_factory, frozen_now)


def book(factory: sessionmaker[Session], now: datetime, patient_id: int, start: datetime) -> int:
    with factory() as session:
        appointment = book_appointment(
            session, patient_id=patient_id, start=start, actor=ACTOR, now=now
        )
        session.commit()
        return appointment.id


def test_marking_a_no_show_records_the_note_who_and_when(session_factory, frozen_now, world):
    visit = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    later = local(TUESDAY, 10, 20)
    with session_factory() as session:
        mark_no_show(session, visit, actor=ACTOR, now=later, note="  No answer at the door ")
        session.commit()
    with session_factory() as session:
        change = session.scalars(select(StatusChange)).one()
        assert (change.appointment_id, change.from_status, change.to_status) == (
            visit,
            "scheduled",
            "no_show",
        )
        assert (change.note, change.actor, change.at) == ("No answer at the door", "cli", later)
        details = session.scalar(
            select(AuditEvent.details).where(AuditEvent.action == "appointment.no_show")
        )
        # What changed, old and new; the note stays out.
        assert details == {
            "status_change_id": change.id,
            "changes": {"status": ["scheduled", "no_show"]},
        }


def test_a_too_long_note_is_refused_and_changes_nothing(session_factory, frozen_now, world):
    visit = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    before = counts(session_factory)
    with session_factory() as session, pytest.raises(ValidationError) as refused:
        mark_completed(session, visit, actor=ACTOR, now=local(TUESDAY, 11), note="x" * 501)
    assert refused.value.field == "note"
    assert counts(session_factory) == before


def test_undoing_a_no_show_restores_the_scheduled_visit(session_factory, frozen_now, world):
    visit = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    with session_factory() as session:
        mark_no_show(session, visit, actor=ACTOR, now=local(TUESDAY, 10, 20))
        session.commit()
    undone_at = local(TUESDAY, 10, 25)
    with session_factory() as session:
        undo_status_change(session, visit, actor=ACTOR, now=undone_at)
        session.commit()
    with session_factory() as session:
        assert session.get(Appointment, visit).status == AppointmentStatus.SCHEDULED
        change = session.scalars(select(StatusChange)).one()
        assert change.undone_at == undone_at
        assert session.scalar(
            select(AuditEvent.id).where(AuditEvent.action == "appointment.status_undone")
        )
    with session_factory() as session, pytest.raises(InvalidState, match="already undone"):
        undo_status_change(session, visit, actor=ACTOR, now=undone_at)


def test_an_undo_after_the_window_is_refused(session_factory, frozen_now, world):
    visit = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    changed = local(TUESDAY, 10, 20)
    with session_factory() as session:
        mark_completed(session, visit, actor=ACTOR, now=changed, note="Dressing changed")
        session.commit()
    with session_factory() as session, pytest.raises(InvalidState, match="10 minutes"):
        undo_status_change(session, visit, actor=ACTOR, now=changed + UNDO_WINDOW)
    with session_factory() as session:
        assert session.get(Appointment, visit).status == AppointmentStatus.COMPLETED


def test_undoing_a_cancellation_books_the_visit_again_and_tells_the_patient(
    session_factory, frozen_now, world
):
    visit = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    with session_factory() as session:
        cancel_appointment(session, visit, actor=ACTOR, now=frozen_now, note="By mistake")
        session.commit()
    with session_factory() as session:
        undo_status_change(session, visit, actor=ACTOR, now=frozen_now + timedelta(minutes=1))
        session.commit()
    with session_factory() as session:
        restored = session.get(Appointment, visit)
        assert restored.status == AppointmentStatus.SCHEDULED
        assert (restored.cancel_reason, restored.cancelled_at) == (None, None)
        events = session.scalars(
            select(Notification.event).where(
                Notification.appointment_id == visit, Notification.channel == "sms"
            )
        ).all()
        assert events.count("appointment_booked") == 2  # first booking, then the restore
        reminders = session.scalars(
            select(Notification.status).where(
                Notification.appointment_id == visit, Notification.event.startswith("reminder")
            )
        ).all()
        assert reminders == ["queued", "queued"]  # withdrawn by the cancel, queued again


def test_undoing_a_cancellation_whose_time_was_rebooked_is_refused(
    session_factory, frozen_now, world
):
    visit = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    with session_factory() as session:
        cancel_appointment(session, visit, actor=ACTOR, now=frozen_now)
        session.commit()
    taker = book(session_factory, frozen_now, world.other_patient_id, local(TUESDAY, 10, 15))
    with session_factory() as session, pytest.raises(InvalidState, match="Another visit"):
        undo_status_change(session, visit, actor=ACTOR, now=frozen_now + timedelta(minutes=1))
    with session_factory() as session:
        assert session.get(Appointment, visit).status == AppointmentStatus.CANCELLED
        assert session.get(Appointment, taker).status == AppointmentStatus.SCHEDULED
        assert session.scalars(select(StatusChange.undone_at)).one() is None


def test_undoing_a_cancellation_into_new_time_off_is_refused(session_factory, frozen_now, world):
    visit = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    with session_factory() as session:
        cancel_appointment(session, visit, actor=ACTOR, now=frozen_now)
        away(session, world.nurse_id, TUESDAY, TUESDAY, frozen_now)
        session.commit()
    with session_factory() as session, pytest.raises(InvalidState, match="no longer works"):
        undo_status_change(session, visit, actor=ACTOR, now=frozen_now + timedelta(minutes=1))


def test_undoing_for_an_inactive_nurse_is_refused(session_factory, frozen_now, world):
    visit = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    with session_factory() as session:
        cancel_appointment(session, visit, actor=ACTOR, now=frozen_now)
        update_nurse(session, world.nurse_id, actor=ACTOR, now=frozen_now, active=False)
        session.commit()
    with session_factory() as session, pytest.raises(InvalidState, match="inactive"):
        undo_status_change(session, visit, actor=ACTOR, now=frozen_now + timedelta(minutes=1))


def test_a_visit_never_changed_has_nothing_to_undo(session_factory, frozen_now, world):
    visit = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    with session_factory() as session, pytest.raises(InvalidState, match="not been changed"):
        undo_status_change(session, visit, actor=ACTOR, now=frozen_now)
