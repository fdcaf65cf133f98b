"""Booking services on a real database (each test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import InvalidState, NotAssigned, NotFound, SlotUnavailable, ValidationError
from core.models import (
    Appointment,
    AppointmentStatus,
    AssignmentRole,
    AuditEvent,
    Notification,
    PatientNurseAssignment,
)
from core.services.assignments import assign_nurse, end_assignment
from core.services.availability import add_override
from core.services.booking import (
    book_appointment,
    cancel_appointment,
    check_availability,
    free_slots,
    mark_completed,
    mark_no_show,
    reschedule_appointment,
)
from core.services.people import update_nurse
from tests.services.world import (
    ACTOR,
    World,
    assign_backup,
    away,
    build_world,
    counts,
    local,
)

MONDAY = date(2025, 3, 3)
TUESDAY = date(2025, 3, 4)


@pytest.fixture
def world(session_factory: sessionmaker[Session], frozen_now: datetime) -> World:
    """Nurses, patients, hours and assignments, committed."""
    return build_world(session_factory, frozen_now)


def book(
    factory: sessionmaker[Session],
    now: datetime,
    patient_id: int,
    start: datetime,
    **kwargs: object,
) -> Appointment:
    """Book in a transaction of its own, as an entry point does."""
    with factory() as session:
        appointment = book_appointment(
            session, patient_id=patient_id, start=start, actor=ACTOR, now=now, **kwargs
        )
        session.commit()
        return appointment


def test_booking_writes_the_appointment_outbox_rows_and_an_audit_event(
    session_factory, frozen_now, world
):
    appointment = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    with session_factory() as session:
        stored = session.get(Appointment, appointment.id)
        assert stored.start_at == datetime(2025, 3, 4, 15, 0, tzinfo=stored.start_at.tzinfo)
        assert stored.end_at - stored.start_at == timedelta(minutes=30)
        assert stored.nurse_id == world.nurse_id
        assert stored.status == AppointmentStatus.SCHEDULED
        notes = session.scalars(
            select(Notification).where(Notification.appointment_id == appointment.id)
        ).all()
        assert {(n.recipient_kind, n.channel) for n in notes} == {
            ("patient", "sms"),
            ("nurse", "email"),
        }
        reminders = sorted(n.event for n in notes if n.event.startswith("reminder"))
        assert reminders == ["reminder_1h", "reminder_24h"]
        sms = next(n for n in notes if n.event == "appointment_booked" and n.channel == "sms")
        assert "Tuesday, March 4 at 10:00 AM EST" in sms.body
        assert "Diabetes" not in sms.body  # no clinical details in patient texts
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.entity_id == appointment.id)
        ).all()
        assert "appointment.booked" in actions


def test_a_taken_slot_is_refused_with_bookable_alternatives_and_nothing_written(
    session_factory, frozen_now, world
):
    book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    before = counts(session_factory)
    with pytest.raises(SlotUnavailable) as refused:
        book(session_factory, frozen_now, world.other_patient_id, local(TUESDAY, 10, 15))
    assert refused.value.reason == "conflict"
    offered = refused.value.alternatives
    assert 1 <= len(offered) <= 3
    assert counts(session_factory) == before
    for slot in offered:  # every alternative really is bookable
        with session_factory() as session:
            book_appointment(
                session,
                patient_id=world.other_patient_id,
                start=slot.start,
                actor=ACTOR,
                now=frozen_now,
            )
            session.rollback()


def test_cancelling_keeps_the_row_and_frees_the_slot(session_factory, frozen_now, world):
    first = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    with session_factory() as session:
        cancel_appointment(
            session,
            first.id,
            actor=ACTOR,
            now=frozen_now,
            reason_code="patient_request",
            note="Feeling better",
        )
        session.commit()
    again = book(session_factory, frozen_now, world.other_patient_id, local(TUESDAY, 10))
    with session_factory() as session:
        cancelled = session.get(Appointment, first.id)
        assert cancelled.status == AppointmentStatus.CANCELLED
        assert cancelled.cancel_reason == "patient_request"
        assert cancelled.cancel_note == "Feeling better"
        assert cancelled.cancelled_by == "cli"
        assert cancelled.cancelled_at == frozen_now
        reminder_states = session.scalars(
            select(Notification.status).where(
                Notification.appointment_id == first.id,
                Notification.event.startswith("reminder"),
            )
        ).all()
        assert reminder_states == ["cancelled", "cancelled"]
        assert session.get(Appointment, again.id).status == AppointmentStatus.SCHEDULED


def test_cancelling_twice_is_refused(session_factory, frozen_now, world):
    first = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    with session_factory() as session:
        cancel_appointment(session, first.id, actor=ACTOR, now=frozen_now)
        session.commit()
    with session_factory() as session, pytest.raises(InvalidState):
        cancel_appointment(session, first.id, actor=ACTOR, now=frozen_now)


def test_rescheduling_onto_an_overlapping_time_of_itself_succeeds_and_links_both(
    session_factory, frozen_now, world
):
    first = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    with session_factory() as session:
        moved = reschedule_appointment(
            session, first.id, new_start=local(TUESDAY, 10, 15), actor=ACTOR, now=frozen_now
        )
        session.commit()
    with session_factory() as session:
        old, new = session.get(Appointment, first.id), session.get(Appointment, moved.id)
        assert old.status == AppointmentStatus.CANCELLED
        assert old.cancel_reason == "rescheduled"
        assert new.rescheduled_from_id == old.id
        assert new.start_at == local(TUESDAY, 10, 15)
        assert new.end_at - new.start_at == timedelta(minutes=30)


def test_a_reschedule_that_fails_midway_leaves_the_original_intact(
    session_factory, frozen_now, world
):
    first = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    with session_factory() as session:

        def fail_on_new_appointment(session: Session, context: object, instances: object) -> None:
            if any(isinstance(o, Appointment) and o.id is None for o in session.new):
                raise RuntimeError("disk full")

        event.listen(session, "before_flush", fail_on_new_appointment)
        with pytest.raises(RuntimeError):
            reschedule_appointment(
                session, first.id, new_start=local(TUESDAY, 14), actor=ACTOR, now=frozen_now
            )
        # The savepoint undid the cancellation even before the entry point rolls back.
        assert session.get(Appointment, first.id).status == AppointmentStatus.SCHEDULED
        session.rollback()
    with session_factory() as session:
        original = session.get(Appointment, first.id)
        assert original.status == AppointmentStatus.SCHEDULED
        assert original.start_at == local(TUESDAY, 10)
        assert session.scalar(select(Appointment).where(Appointment.id != first.id)) is None


def test_rescheduling_onto_a_taken_time_changes_nothing(session_factory, frozen_now, world):
    first = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    book(session_factory, frozen_now, world.other_patient_id, local(TUESDAY, 11))
    before = counts(session_factory)
    with session_factory() as session, pytest.raises(SlotUnavailable):
        reschedule_appointment(
            session, first.id, new_start=local(TUESDAY, 11), actor=ACTOR, now=frozen_now
        )
    assert counts(session_factory) == before
    with session_factory() as session:
        assert session.get(Appointment, first.id).status == AppointmentStatus.SCHEDULED


def test_a_retried_booking_with_the_same_key_returns_the_same_appointment(
    session_factory, frozen_now, world
):
    first = book(
        session_factory,
        frozen_now,
        world.patient_id,
        local(TUESDAY, 10),
        idempotency_key="call-7:tool-3",
    )
    again = book(
        session_factory,
        frozen_now,
        world.patient_id,
        local(TUESDAY, 10),
        idempotency_key="call-7:tool-3",
    )
    assert again.id == first.id
    assert counts(session_factory)[0] == 1
    with pytest.raises(ValidationError):
        book(
            session_factory,
            frozen_now,
            world.other_patient_id,
            local(TUESDAY, 14),
            idempotency_key="call-7:tool-3",
        )


def test_booking_a_nurse_not_assigned_to_the_patient_is_refused(session_factory, frozen_now, world):
    with pytest.raises(NotAssigned):
        book(
            session_factory,
            frozen_now,
            world.patient_id,
            local(TUESDAY, 10),
            nurse_id=world.other_nurse_id,
        )
    assert counts(session_factory)[0] == 0


def test_booking_after_the_assignment_expired_is_refused(session_factory, frozen_now, world):
    with session_factory() as session:
        assignment = session.scalar(
            select(PatientNurseAssignment).where(
                PatientNurseAssignment.patient_id == world.patient_id
            )
        )
        end_assignment(session, assignment.id, actor=ACTOR, now=frozen_now, last_day=MONDAY)
        session.commit()
    with pytest.raises(NotAssigned):
        book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    assert counts(session_factory)[0] == 0


def test_a_backup_nurse_can_be_booked_explicitly(session_factory, frozen_now, world):
    with session_factory() as session:
        assign_nurse(
            session,
            patient_id=world.patient_id,
            nurse_id=world.other_nurse_id,
            role=AssignmentRole.BACKUP,
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
    booked = book(
        session_factory,
        frozen_now,
        world.patient_id,
        local(TUESDAY, 10),
        nurse_id=world.other_nurse_id,
    )
    assert booked.nurse_id == world.other_nurse_id


@pytest.mark.parametrize(
    ("start", "reason"),
    [
        (local(TUESDAY, 8), "outside_hours"),
        (local(TUESDAY, 16, 45), "outside_hours"),
        (local(date(2025, 3, 8), 10), "outside_hours"),  # Saturday
        (local(date(2025, 3, 2), 10), "in_the_past"),
        (local(date(2025, 6, 3), 10), "beyond_horizon"),
    ],
)
def test_times_the_nurse_cannot_take_are_refused_with_the_reason(
    session_factory, frozen_now, world, start, reason
):
    with pytest.raises(SlotUnavailable) as refused:
        book(session_factory, frozen_now, world.patient_id, start)
    assert refused.value.reason == reason
    assert counts(session_factory)[0] == 0


def test_minimum_notice_is_enforced_in_listing_and_booking(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now, min_notice=24 * 60)
    with session_factory() as session:
        slots = free_slots(
            session,
            world.nurse_id,
            start=frozen_now,
            end=frozen_now + timedelta(days=2),
            now=frozen_now,
        )
    assert slots[0].start == local(TUESDAY, 9)  # Monday is inside the 24 h notice
    with pytest.raises(SlotUnavailable) as refused:
        book(session_factory, frozen_now, world.patient_id, local(MONDAY, 14))
    assert refused.value.reason == "too_soon"


def test_the_daily_cap_closes_the_nurses_local_day(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now, daily_cap=1)
    book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 9))
    with pytest.raises(SlotUnavailable) as refused:
        book(session_factory, frozen_now, world.other_patient_id, local(TUESDAY, 15))
    assert refused.value.reason == "daily_cap"
    assert all(s.start.date() != TUESDAY for s in refused.value.alternatives)
    book(session_factory, frozen_now, world.other_patient_id, local(date(2025, 3, 5), 15))


def test_buffers_are_excluded_from_listing_and_refused_at_booking(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now, buffer_after_minutes=15)
    book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    with session_factory() as session:
        starts = [
            s.start
            for s in free_slots(
                session,
                world.nurse_id,
                start=local(TUESDAY, 9),
                end=local(TUESDAY, 12),
                now=frozen_now,
            )
        ]
    assert local(TUESDAY, 9, 15) in starts
    assert local(TUESDAY, 9, 30) not in starts  # its own wrap-up would run into 10:00
    assert local(TUESDAY, 10, 30) not in starts  # inside the wrap-up after 10:00-10:30
    assert local(TUESDAY, 10, 45) in starts
    with pytest.raises(SlotUnavailable):
        book(session_factory, frozen_now, world.other_patient_id, local(TUESDAY, 10, 30))


def test_check_availability_offers_the_backup_nurse_when_the_primary_is_full(
    session_factory, frozen_now
):
    world = build_world(session_factory, frozen_now, horizon_days=2)
    with session_factory() as session:
        assign_backup(session, world.patient_id, world.other_nurse_id, frozen_now)
        away(session, world.nurse_id, MONDAY, date(2025, 3, 6), frozen_now)
        answer = check_availability(
            session, patient_id=world.patient_id, start=local(TUESDAY, 10), now=frozen_now
        )
    assert not answer.available
    assert answer.refusal == "time_off"
    assert answer.alternatives
    assert {s.nurse_id for s in answer.alternatives} == {world.other_nurse_id}
    assert not answer.escalate


def test_a_reschedule_offers_only_its_own_nurses_times(session_factory, frozen_now):
    # The backup's times cannot take a moved visit (it stays with its nurse): none offered.
    world = build_world(session_factory, frozen_now, horizon_days=2)
    visit = book(session_factory, frozen_now, world.patient_id, local(MONDAY, 14))
    with session_factory() as session:
        assign_backup(session, world.patient_id, world.other_nurse_id, frozen_now)
        away(session, world.nurse_id, MONDAY, date(2025, 3, 6), frozen_now)
        session.commit()
    with session_factory() as session, pytest.raises(SlotUnavailable) as refused:
        reschedule_appointment(
            session, visit.id, new_start=local(TUESDAY, 10), actor=ACTOR, now=frozen_now
        )
    assert refused.value.alternatives == []  # the backup has time, but not for this visit
    assert refused.value.escalate


def test_no_availability_at_all_signals_escalation(session_factory, frozen_now, world):
    with session_factory() as session:
        add_override(
            session,
            world.nurse_id,
            kind="time_off",
            start_date=MONDAY,
            end_date=date(2025, 6, 30),
            actor=ACTOR,
            now=frozen_now,
        )
        answer = check_availability(
            session, patient_id=world.patient_id, start=local(TUESDAY, 10), now=frozen_now
        )
    assert not answer.available
    assert answer.alternatives == []
    assert answer.escalate


def test_time_off_reports_the_appointments_it_collides_with(session_factory, frozen_now, world):
    hit = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 13))
    book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 15))
    with session_factory() as session:
        _, collisions = add_override(
            session,
            world.nurse_id,
            kind="time_off",
            start_date=TUESDAY,
            start_time=time(12),
            end_time=time(14),
            reason="Training",
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
    assert [c.appointment_id for c in collisions] == [hit.id]


def test_completed_and_no_show_apply_only_once_the_visit_has_started(
    session_factory, frozen_now, world
):
    visit = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    with session_factory() as session, pytest.raises(InvalidState):
        mark_completed(session, visit.id, actor=ACTOR, now=frozen_now)
    later = local(TUESDAY, 11)
    with session_factory() as session:
        assert mark_completed(session, visit.id, actor=ACTOR, now=later).status == "completed"
        session.commit()
    with session_factory() as session, pytest.raises(InvalidState):
        mark_no_show(session, visit.id, actor=ACTOR, now=later)


def test_naive_and_off_minute_times_are_refused_and_nothing_written(
    session_factory, frozen_now, world
):
    with pytest.raises(ValidationError) as naive:
        book(session_factory, frozen_now, world.patient_id, datetime(2025, 3, 4, 10))
    assert "time zone" in naive.value.message
    with pytest.raises(ValidationError):
        book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10).replace(second=5))
    with pytest.raises(ValidationError):
        book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10), duration_minutes=0)
    with pytest.raises(ValidationError):
        book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10), kind="séance")
    with pytest.raises(NotFound):
        book(session_factory, frozen_now, 9999, local(TUESDAY, 10))
    assert counts(session_factory)[0] == 0


def test_while_the_primary_is_inactive_the_backup_nurse_takes_the_visits(
    session_factory, frozen_now, world
):
    with session_factory() as session:
        update_nurse(session, world.nurse_id, actor=ACTOR, now=frozen_now, active=False)
        with pytest.raises(ValidationError, match="no active backup"):
            check_availability(
                session, patient_id=world.patient_id, start=local(TUESDAY, 10), now=frozen_now
            )
        assign_backup(session, world.patient_id, world.other_nurse_id, frozen_now)
        answer = check_availability(
            session, patient_id=world.patient_id, start=local(TUESDAY, 10), now=frozen_now
        )
        session.commit()
    assert answer.available and answer.nurse_id == world.other_nurse_id
    visit = book(session_factory, frozen_now, world.patient_id, local(TUESDAY, 10))
    assert visit.nurse_id == world.other_nurse_id
