"""Book, check, reschedule, cancel and close appointments, with no double booking."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.appointment_status import change_refusal, restore_refusal, undo_refusal
from core.errors import InvalidState, NotAssigned, Slot, SlotUnavailable, ValidationError
from core.metrics import BOOKING_REFUSALS
from core.models import (
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    AssignmentRole,
    CancelReason,
    Nurse,
    Patient,
)
from core.notifications.reminders import reinstate_reminders, sync_reminders
from core.operations import CANCEL_REASON_CHOICE, MAX_VISIT_MINUTES
from core.outbox import BookingEvent, queue_booking_notifications
from core.scheduling import (
    REFUSAL_MESSAGES,
    WAIVABLE,
    NurseSchedule,
    Preferences,
    Refusal,
    alternatives,
    refusal_for,
    require_aware,
    slot_starts,
    waiving_notice_and_horizon,
    written_in_gap,
    zone,
)
from core.services.assignments import active_assignment, is_assigned
from core.services.common import Actor, audit, field_changes, get_or_raise
from core.services.offers import offer_freed_time
from core.services.schedules import load_schedule, lock_nurse_row
from core.services.status_changes import check_note, latest_change, record_status_change

HOME_VISIT_NEEDS_ADDRESS = (
    "A home visit needs the patient's address: add it to their record, "
    "or book a phone or video visit."
)


@dataclass
class AvailabilityAnswer:
    """Whether a time is free with the patient's nurse, and what else is, if not."""

    available: bool
    nurse_id: int | None
    start: datetime
    end: datetime
    refusal: str | None = None
    message: str = ""
    alternatives: list[Slot] = field(default_factory=list)
    escalate: bool = False


def visit_length(nurse: Nurse, duration_minutes: int | None) -> timedelta:
    """The visit's length: the one asked for (5 minutes to 8 hours) or the nurse's own."""
    minutes = nurse.visit_minutes if duration_minutes is None else duration_minutes
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise ValidationError(
            "The length must be a whole number of minutes.", field="duration_minutes"
        )
    if not 5 <= minutes <= MAX_VISIT_MINUTES:
        raise ValidationError(
            f"A visit lasts between 5 and {MAX_VISIT_MINUTES} minutes.", field="duration_minutes"
        )
    return timedelta(minutes=minutes)


def whole_minute(start: datetime) -> datetime:
    """`start` in UTC, refused when naive or not on a whole minute."""
    start = require_aware(start, "start")
    if start.second or start.microsecond:
        raise ValidationError("Appointments start on a whole minute.", field="start")
    return start


def check_override_reason(reason: str | None) -> str | None:
    """Why a coordinator waives minimum notice or the horizon: None when not waiving."""
    if reason is None:
        return None
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise ValidationError(
            "Say why the booking rules are waived (1 to 500 characters).", field="override_reason"
        )
    return reason


def judged(
    schedule: NurseSchedule,
    start: datetime,
    end: datetime,
    now: datetime,
    ignore_booking_id: int | None,
    override_reason: str | None,
) -> tuple[Refusal | None, Refusal | None]:
    """(refusal, waived): the engine's refusal of [start, end), unless a reason is given and the
    only obstacle is minimum notice or the horizon; then (None, the rule waived)."""
    refusal = refusal_for(schedule, start, end, now, ignore_booking_id)
    if refusal not in WAIVABLE or override_reason is None:
        return refusal, None
    waived = waiving_notice_and_horizon(schedule, end, now)
    return refusal_for(waived, start, end, now, ignore_booking_id), refusal


def refuse_written_gap(written: datetime, nurse: Nurse) -> None:
    """NoSuchTime when `written` names a wall time the clocks skip in the nurse's zone, with an
    offset worked out from that zone: booked as given it would land an hour off."""
    skipped = written_in_gap(written, zone(nurse.time_zone))
    if skipped is not None:
        raise skipped.error()


def resolve_nurse(
    session: Session, patient: Patient, *, nurse_id: int | None, start: datetime, now: datetime
) -> Nurse:
    """The nurse for this booking: the given one if assigned, else the patient's primary, or
    the backup while the primary is inactive (that is what a backup nurse is for).

    The assignment must cover the visit's date (in the nurse's zone): an expired one does not.
    A time already past is judged by today's assignment, so the refusal names the real problem.
    """
    start = max(start, now)
    if nurse_id is None:
        on = start.astimezone(zone(patient.time_zone)).date()
        assignment = active_assignment(session, patient.id, on=on)
        if assignment is None:
            raise NotAssigned(
                "This patient has no primary nurse on that date; assign one first.",
                field="nurse_id",
            )
        if not assignment.nurse.active:
            backup = active_assignment(session, patient.id, on=on, role=AssignmentRole.BACKUP)
            if backup is None or not backup.nurse.active:
                raise ValidationError(
                    "This patient's nurse is inactive and no active backup nurse is assigned;"
                    " a coordinator needs to assign one.",
                    field="nurse_id",
                )
            assignment = backup
        nurse_id = assignment.nurse_id
    else:
        assignment = None
    nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
    on = start.astimezone(zone(nurse.time_zone)).date()
    covered = assignment is not None and assignment.is_active_on(on)
    if not covered and not is_assigned(session, patient.id, nurse.id, on):
        raise NotAssigned(
            f"{nurse.display_name} is not assigned to this patient on that date.",
            field="nurse_id",
        )
    if not nurse.active:
        raise ValidationError("That nurse is inactive.", field="nurse_id")
    return nurse


def _slots_from(nurse_id: int, starts: list[datetime], length: timedelta) -> list[Slot]:
    return [Slot(nurse_id, s, s + length) for s in starts]


def offer_alternatives(
    session: Session,
    patient: Patient,
    nurse: Nurse,
    *,
    asked: datetime,
    length: timedelta,
    now: datetime,
    preferences: Preferences | None = None,
    ignore_appointment_id: int | None = None,
    include_backup: bool = True,
) -> tuple[list[Slot], bool]:
    """Up to three spread-out slots near `asked`; else the backup nurse's (unless the change
    cannot move to another nurse: `include_backup`); else escalate."""
    minutes = int(length.total_seconds() // 60)
    horizon_end = now + timedelta(days=nurse.horizon_days)
    schedule = load_schedule(session, nurse, now, horizon_end, now=now, patient_id=patient.id)
    found = alternatives(
        schedule,
        asked,
        now,
        duration_minutes=minutes,
        preferences=preferences,
        ignore_booking_id=ignore_appointment_id,
    )
    if found:
        return _slots_from(nurse.id, found, length), False
    today = now.astimezone(zone(patient.time_zone)).date()
    backup = (
        active_assignment(session, patient.id, on=today, role=AssignmentRole.BACKUP)
        if include_backup
        else None
    )
    if backup is not None and backup.nurse_id != nurse.id and backup.nurse.active:
        backup_schedule = load_schedule(
            session,
            backup.nurse,
            now,
            now + timedelta(days=backup.nurse.horizon_days),
            now=now,
            patient_id=patient.id,
        )
        found = alternatives(
            backup_schedule, asked, now, duration_minutes=minutes, preferences=preferences
        )
        if found:
            return _slots_from(backup.nurse_id, found, length), False
    return [], True


def _refuse(
    session: Session,
    refusal: Refusal,
    patient: Patient,
    nurse: Nurse,
    *,
    start: datetime,
    length: timedelta,
    now: datetime,
    preferences: Preferences | None = None,
    ignore_appointment_id: int | None = None,
    include_backup: bool = True,
) -> SlotUnavailable:
    offered, escalate = offer_alternatives(
        session,
        patient,
        nurse,
        asked=start,
        length=length,
        now=now,
        preferences=preferences,
        ignore_appointment_id=ignore_appointment_id,
        include_backup=include_backup,
    )
    message = REFUSAL_MESSAGES[refusal]
    if escalate:
        message += " No other time is free; a coordinator will need to help."
    return SlotUnavailable(message, reason=refusal.value, alternatives=offered, escalate=escalate)


def check_availability(
    session: Session,
    *,
    patient_id: int,
    start: datetime,
    now: datetime,
    duration_minutes: int | None = None,
    nurse_id: int | None = None,
    preferences: Preferences | None = None,
) -> AvailabilityAnswer:
    """Whether `start` is bookable with the patient's nurse; alternatives when it is not."""
    now = require_aware(now, "now")
    written, start = start, whole_minute(start)
    patient = get_or_raise(session, Patient, patient_id, "patient")
    nurse = resolve_nurse(session, patient, nurse_id=nurse_id, start=start, now=now)
    refuse_written_gap(written, nurse)
    length = visit_length(nurse, duration_minutes)
    end = start + length
    schedule = load_schedule(session, nurse, start, end, now=now, patient_id=patient.id)
    refusal = refusal_for(schedule, start, end, now, None)
    if refusal is None:
        return AvailabilityAnswer(True, nurse.id, start, end)
    refused = _refuse(
        session,
        refusal,
        patient,
        nurse,
        start=start,
        length=length,
        now=now,
        preferences=preferences,
    )
    return AvailabilityAnswer(
        False,
        nurse.id,
        start,
        end,
        refusal=refusal.value,
        message=refused.message,
        alternatives=refused.alternatives,
        escalate=refused.escalate,
    )


def free_slots(
    session: Session,
    nurse_id: int,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    duration_minutes: int | None = None,
) -> list[Slot]:
    """Bookable slots of one nurse in [start, end), on the nurse's local grid."""
    start, end = require_aware(start, "start"), require_aware(end, "end")
    if end <= start:
        raise ValidationError("The end of the range must be after its start.", field="end")
    if end - start > timedelta(days=92):
        raise ValidationError("Ask for at most 92 days of slots at a time.", field="end")
    nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
    length = visit_length(nurse, duration_minutes)
    schedule = load_schedule(session, nurse, start, end + length, now=now)
    minutes = int(length.total_seconds() // 60)
    return _slots_from(nurse.id, slot_starts(schedule, start, end, now, minutes), length)


def _existing_for_key(session: Session, key: str) -> Appointment | None:
    return session.scalar(select(Appointment).where(Appointment.idempotency_key == key))


def check_key(key: str | None) -> str | None:
    """The idempotency key trimmed, refused when blank or longer than 200 characters."""
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 200:
        raise ValidationError(
            "The idempotency key must be 1 to 200 characters.", field="idempotency_key"
        )
    return key


OVERLAP_MARKERS = (
    "ex_appointments_no_overlap",  # PostgreSQL exclusion constraint
    "overlaps another scheduled appointment",  # SQLite trigger
)


def insert_appointment(session: Session, *appointments: Appointment) -> None:
    """Flush new appointments (a series' in one batch); the database backstop's refusal
    becomes a clean conflict.

    No savepoint: on a refusal the whole unit of work is abandoned anyway, and the two extra
    round trips are measurable on every booking. Callers that must survive it nest their own.
    """
    session.add_all(appointments)
    try:
        session.flush()
    except IntegrityError as exc:
        if not any(marker in str(exc.orig) for marker in OVERLAP_MARKERS):
            raise
        BOOKING_REFUSALS.labels(reason=Refusal.CONFLICT.value).inc()
        raise SlotUnavailable(
            REFUSAL_MESSAGES[Refusal.CONFLICT], reason=Refusal.CONFLICT.value
        ) from exc


def book_appointment(
    session: Session,
    *,
    patient_id: int,
    start: datetime,
    actor: Actor,
    now: datetime,
    nurse_id: int | None = None,
    duration_minutes: int | None = None,
    kind: str = AppointmentKind.PHONE,
    reason: str = "",
    idempotency_key: str | None = None,
    call_id: int | None = None,
    preferences: Preferences | None = None,
    override_reason: str | None = None,
) -> Appointment:
    """Book a visit, or raise SlotUnavailable with alternatives; a retried key returns the first.

    With `override_reason` (staff only: the phone agent never passes one) minimum notice and
    the horizon are waived for this visit, and the audit entry says which rule and why.
    """
    now = require_aware(now, "now")
    override_reason = check_override_reason(override_reason)
    written, start = start, whole_minute(start)
    key = check_key(idempotency_key)
    if kind not in {k.value for k in AppointmentKind}:
        raise ValidationError("The kind must be phone, video or home_visit.", field="kind")
    reason = (reason or "").strip()
    if len(reason) > 500:
        raise ValidationError("The reason is too long (500 characters at most).", field="reason")
    if key is not None and (existing := _existing_for_key(session, key)) is not None:
        return _same_request(existing, patient_id)
    patient = get_or_raise(session, Patient, patient_id, "patient")
    if kind == AppointmentKind.HOME_VISIT and not patient.has_address:
        raise ValidationError(HOME_VISIT_NEEDS_ADDRESS, field="kind")
    nurse = resolve_nurse(session, patient, nurse_id=nurse_id, start=start, now=now)
    refuse_written_gap(written, nurse)
    length = visit_length(nurse, duration_minutes)
    end = start + length

    lock_nurse_row(session, nurse.id)
    if key is not None and (existing := _existing_for_key(session, key)) is not None:
        return _same_request(existing, patient_id)  # a retry that waited on the lock
    schedule = load_schedule(session, nurse, start, end, now=now, patient_id=patient.id)
    refusal, waived = judged(schedule, start, end, now, None, override_reason)
    if refusal is not None:
        BOOKING_REFUSALS.labels(reason=refusal.value).inc()
        raise _refuse(
            session,
            refusal,
            patient,
            nurse,
            start=start,
            length=length,
            now=now,
            preferences=preferences,
        )
    appointment = Appointment(
        nurse_id=nurse.id,
        patient_id=patient.id,
        start_at=start,
        end_at=end,
        status=AppointmentStatus.SCHEDULED,
        kind=kind,
        reason=reason,
        source=actor.source,
        idempotency_key=key,
        call_id=call_id,
        created_by_user_id=actor.user_id,
        created_by=actor.name,
        created_at=now,
    )
    insert_appointment(session, appointment)
    audit(
        session,
        actor=actor,
        action="appointment.booked",
        entity_type="appointment",
        entity_id=appointment.id,
        now=now,
        nurse_id=nurse.id,
        patient_id=patient.id,
        **_waiver(waived, override_reason),
    )
    queue_booking_notifications(
        session, event=BookingEvent.BOOKED, appointment=appointment, now=now
    )
    sync_reminders(session, appointment, now, just_booked=True)
    return appointment


def _waiver(waived: Refusal | None, reason: str | None) -> dict[str, str]:
    """The audit details of a waived rule (none when nothing was waived)."""
    if waived is None or reason is None:
        return {}
    return {"rule_waived": waived.value, "override_reason": reason}


def _same_request(existing: Appointment, patient_id: int) -> Appointment:
    if existing.patient_id != patient_id:
        raise ValidationError(
            "That idempotency key was already used for another booking.", field="idempotency_key"
        )
    return existing


def _scheduled(session: Session, appointment_id: int) -> Appointment:
    appointment = get_or_raise(session, Appointment, appointment_id, "appointment")
    if appointment.status != AppointmentStatus.SCHEDULED:
        raise InvalidState(
            f"Appointment {appointment_id} is {appointment.status.replace('_', ' ')}, "
            "not scheduled.",
            field="appointment_id",
        )
    return appointment


def reschedule_appointment(
    session: Session,
    appointment_id: int,
    *,
    new_start: datetime,
    actor: Actor,
    now: datetime,
    duration_minutes: int | None = None,
    idempotency_key: str | None = None,
    preferences: Preferences | None = None,
    override_reason: str | None = None,
) -> Appointment:
    """Move a visit: the old one is cancelled and a linked new one booked, in one transaction.

    `override_reason` waives minimum notice and the horizon as for a booking (staff only).
    """
    now = require_aware(now, "now")
    override_reason = check_override_reason(override_reason)
    written, new_start = new_start, whole_minute(new_start)
    key = check_key(idempotency_key)
    if key is not None and (existing := _existing_for_key(session, key)) is not None:
        if existing.rescheduled_from_id != appointment_id:
            raise ValidationError(
                "That idempotency key was already used for another change.", field="idempotency_key"
            )
        return existing
    old = get_or_raise(session, Appointment, appointment_id, "appointment")
    lock_nurse_row(session, old.nurse_id)
    session.refresh(old)
    if key is not None and (existing := _existing_for_key(session, key)) is not None:
        return existing
    old = _scheduled(session, appointment_id)
    nurse, patient = old.nurse, old.patient
    refuse_written_gap(written, nurse)
    if not is_assigned(
        session, patient.id, nurse.id, new_start.astimezone(zone(nurse.time_zone)).date()
    ):
        raise NotAssigned(
            f"{nurse.display_name} is not assigned to this patient on that date.",
            field="nurse_id",
        )
    length = (
        old.end_at - old.start_at
        if duration_minutes is None
        else visit_length(nurse, duration_minutes)
    )
    new_end = new_start + length
    schedule = load_schedule(session, nurse, new_start, new_end, now=now, patient_id=patient.id)
    refusal, waived = judged(schedule, new_start, new_end, now, old.id, override_reason)
    if refusal is not None:
        BOOKING_REFUSALS.labels(reason=refusal.value).inc()
        raise _refuse(
            session,
            refusal,
            patient,
            nurse,
            start=new_start,
            length=length,
            now=now,
            preferences=preferences,
            ignore_appointment_id=old.id,
            include_backup=False,  # a moved visit stays with its nurse: offer only hers
        )
    with session.begin_nested():
        retire_moved(old, actor=actor, now=now)
        session.flush()  # free the old time first, so the backstop allows overlapping itself
        new = successor(old, nurse.id, new_start, new_end, actor=actor, now=now, key=key)
        insert_appointment(session, new)
    audit(
        session,
        actor=actor,
        action="appointment.rescheduled",
        entity_type="appointment",
        entity_id=new.id,
        now=now,
        previous_id=old.id,
        nurse_id=nurse.id,
        changes=field_changes({"start_at": old.start_at}, {"start_at": new.start_at}),
        **_waiver(waived, override_reason),
    )
    queue_booking_notifications(
        session, event=BookingEvent.RESCHEDULED, appointment=new, now=now, previous=old
    )
    sync_reminders(session, old, now)  # withdraws the old visit's reminders
    sync_reminders(session, new, now, just_booked=True)
    offer_freed_time(session, nurse.id, old.start_at, old.end_at, now)
    return new


def cancel_appointment(
    session: Session,
    appointment_id: int,
    *,
    actor: Actor,
    now: datetime,
    reason_code: str = CancelReason.PATIENT_REQUEST,
    note: str = "",
    notify: bool = True,
) -> Appointment:
    """Cancel a visit, keeping the row with the reason, who and when (see CancelVisit);
    `notify` False when the caller tells the patient once for several visits."""
    now = require_aware(now, "now")
    if reason_code not in CancelReason.chosen_by_people():
        raise ValidationError(CANCEL_REASON_CHOICE.message(), field="reason_code")
    note = check_note(note)
    appointment = _scheduled(session, appointment_id)
    # The nurse before the visit, as a booking takes them: the freed time is offered below.
    lock_nurse_row(session, appointment.nurse_id)
    session.refresh(appointment)
    appointment = _scheduled(session, appointment_id)
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancel_reason = reason_code
    appointment.cancel_note = note
    appointment.cancelled_by = actor.name
    appointment.cancelled_at = now
    appointment.updated_at = now
    appointment.sequence += 1
    session.flush()
    change = record_status_change(
        session, appointment, AppointmentStatus.SCHEDULED, note=note, actor=actor, now=now
    )
    audit(
        session,
        actor=actor,
        action="appointment.cancelled",
        entity_type="appointment",
        entity_id=appointment.id,
        now=now,
        reason_code=reason_code,
        status_change_id=change.id,
        changes=field_changes(
            {"status": AppointmentStatus.SCHEDULED}, {"status": AppointmentStatus.CANCELLED}
        ),
    )
    if notify:
        queue_booking_notifications(
            session, event=BookingEvent.CANCELLED, appointment=appointment, now=now
        )
    sync_reminders(session, appointment, now)
    offer_freed_time(session, appointment.nurse_id, appointment.start_at, appointment.end_at, now)
    return appointment


def _close(
    session: Session,
    appointment_id: int,
    status: str,
    *,
    actor: Actor,
    now: datetime,
    note: str = "",
) -> Appointment:
    now = require_aware(now, "now")
    note = check_note(note)
    appointment = get_or_raise(session, Appointment, appointment_id, "appointment")
    refusal = change_refusal(appointment.status, status, start_at=appointment.start_at, now=now)
    if refusal is not None:
        raise InvalidState(refusal, field="appointment_id")
    previous = appointment.status
    appointment.status = status
    appointment.updated_at = now
    appointment.sequence += 1
    session.flush()
    change = record_status_change(session, appointment, previous, note=note, actor=actor, now=now)
    audit(
        session,
        actor=actor,
        action=f"appointment.{status}",
        entity_type="appointment",
        entity_id=appointment.id,
        now=now,
        status_change_id=change.id,
        changes=field_changes({"status": previous}, {"status": status}),
    )
    return appointment


def mark_completed(
    session: Session, appointment_id: int, *, actor: Actor, now: datetime, note: str = ""
) -> Appointment:
    """Record that the visit took place, with an optional note."""
    return _close(
        session, appointment_id, AppointmentStatus.COMPLETED, actor=actor, now=now, note=note
    )


def mark_no_show(
    session: Session, appointment_id: int, *, actor: Actor, now: datetime, note: str = ""
) -> Appointment:
    """Record that the patient did not attend, with an optional note."""
    return _close(
        session, appointment_id, AppointmentStatus.NO_SHOW, actor=actor, now=now, note=note
    )


def undo_status_change(
    session: Session, appointment_id: int, *, actor: Actor, now: datetime
) -> Appointment:
    """Take back the visit's latest status change within the undo window, when the time it
    held is still free; a visit restored to scheduled is never double-booked."""
    now = require_aware(now, "now")
    appointment = get_or_raise(session, Appointment, appointment_id, "appointment")
    lock_nurse_row(session, appointment.nurse_id)
    session.refresh(appointment)
    change = latest_change(session, appointment.id)
    if change is None:
        raise InvalidState("This visit's status has not been changed.", field="appointment_id")
    refusal = undo_refusal(
        current=appointment.status,
        changed_to=change.to_status,
        changed_at=change.at,
        undone=change.undone_at is not None,
        now=now,
    )
    if refusal is None and change.from_status == AppointmentStatus.SCHEDULED:
        if not appointment.nurse.active:
            refusal = "The nurse is inactive now; book the visit with another nurse instead."
        else:
            schedule = load_schedule(
                session,
                appointment.nurse,
                appointment.start_at,
                appointment.end_at,
                now=now,
                patient_id=appointment.patient_id,
            )
            refusal = restore_refusal(
                schedule, appointment.start_at, appointment.end_at, now, appointment.id
            )
    if refusal is not None:
        raise InvalidState(refusal, field="appointment_id")
    was_cancelled = appointment.status == AppointmentStatus.CANCELLED
    appointment.status = change.from_status
    if was_cancelled:
        appointment.cancel_reason = None
        appointment.cancel_note = None
        appointment.cancelled_by = None
        appointment.cancelled_at = None
    appointment.updated_at = now
    appointment.sequence += 1
    change.undone_at = now
    change.undone_by = actor.name
    try:
        with session.begin_nested():  # the database backstop has the last word on overlaps
            session.flush()
    except IntegrityError as exc:
        if not any(marker in str(exc.orig) for marker in OVERLAP_MARKERS):
            raise
        raise InvalidState(
            "Another visit now takes that time; book a new time instead.",
            field="appointment_id",
        ) from exc
    audit(
        session,
        actor=actor,
        action="appointment.status_undone",
        entity_type="appointment",
        entity_id=appointment.id,
        now=now,
        status_change_id=change.id,
        restored=change.from_status,
        changes=field_changes({"status": change.to_status}, {"status": change.from_status}),
    )
    if was_cancelled:
        # The patient was told of the cancellation: tell them the visit is on again.
        queue_booking_notifications(
            session, event=BookingEvent.BOOKED, appointment=appointment, now=now
        )
        reinstate_reminders(session, appointment, now)
    return appointment


def move_to_nurse(
    session: Session,
    appointment_id: int,
    *,
    nurse_id: int,
    actor: Actor,
    now: datetime,
    field: str = "nurse_id",
) -> Appointment:
    """Give a visit to another nurse at the same time: the old one is cancelled and a linked
    new one booked, as a reschedule does, after the same checks a booking makes for her."""
    now = require_aware(now, "now")
    old = _scheduled(session, appointment_id)
    nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
    if not nurse.active:
        raise ValidationError(f"{nurse.display_name} is inactive.", field=field)
    if nurse.id == old.nurse_id:
        raise ValidationError("Choose another nurse than the visit's own.", field=field)
    on = old.start_at.astimezone(zone(nurse.time_zone)).date()
    if not is_assigned(session, old.patient_id, nurse.id, on):
        raise NotAssigned(
            f"{nurse.display_name} is not on this patient's care team on that date: hand the"
            " patient to her, or make her the backup nurse, first.",
            field=field,
        )
    for locked in sorted((old.nurse_id, nurse.id)):  # one order, so two movers never deadlock
        lock_nurse_row(session, locked)
    schedule = load_schedule(
        session, nurse, old.start_at, old.end_at, now=now, patient_id=old.patient_id
    )
    refusal = refusal_for(schedule, old.start_at, old.end_at, now, None)
    if refusal is not None:
        raise InvalidState(
            f"{nurse.display_name} cannot take this visit: {REFUSAL_MESSAGES[refusal]}",
            field=field,
        )
    retire_moved(old, actor=actor, now=now)
    new = successor(old, nurse.id, old.start_at, old.end_at, actor=actor, now=now)
    insert_appointment(session, new)
    audit(
        session,
        actor=actor,
        action="appointment.moved_to_nurse",
        entity_type="appointment",
        entity_id=new.id,
        now=now,
        previous_id=old.id,
        previous_nurse_id=old.nurse_id,
        nurse_id=nurse.id,
        changes=field_changes({"nurse_id": old.nurse_id}, {"nurse_id": nurse.id}),
    )
    queue_booking_notifications(
        session, event=BookingEvent.RESCHEDULED, appointment=new, now=now, previous=old
    )
    sync_reminders(session, old, now)
    sync_reminders(session, new, now, just_booked=True)
    offer_freed_time(session, old.nurse_id, old.start_at, old.end_at, now)
    return new


def retire_moved(old: Appointment, *, actor: Actor, now: datetime) -> None:
    """Mark a visit cancelled because a successor replaces it (moved in time or to a nurse)."""
    old.status = AppointmentStatus.CANCELLED
    old.cancel_reason = CancelReason.RESCHEDULED
    old.cancelled_by = actor.name
    old.cancelled_at = now
    old.updated_at = now
    old.sequence += 1


def successor(
    old: Appointment,
    nurse_id: int,
    start_at: datetime,
    end_at: datetime,
    *,
    actor: Actor,
    now: datetime,
    key: str | None = None,
) -> Appointment:
    """The visit that replaces `old` (moved in time or to another nurse), linked back to it."""
    return Appointment(
        nurse_id=nurse_id,
        patient_id=old.patient_id,
        start_at=start_at,
        end_at=end_at,
        status=AppointmentStatus.SCHEDULED,
        kind=old.kind,
        reason=old.reason,
        source=actor.source,
        idempotency_key=key,
        rescheduled_from_id=old.id,
        call_id=old.call_id,
        series_id=old.series_id,  # a moved occurrence stays in its series
        series_index=old.series_index,
        created_by_user_id=actor.user_id,
        created_by=actor.name,
        created_at=now,
    )
