"""Scheduled messages: patient reminders before each visit and a morning agenda per nurse.

Both are idempotent through Notification.dedupe_key, so the worker can call the sweeps on
every pass. Reminders belong to an appointment id: a reschedule cancels the old appointment and
books a new one, so the old id's reminders are withdrawn and the new id gets its own.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import (
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    Channel,
    Notification,
    NotificationStatus,
    Nurse,
    RecipientKind,
    Role,
    User,
)
from core.outbox import KIND_WORDS
from core.scheduling import zone
from core.timefmt import spoken

log = logging.getLogger(__name__)

REMINDER_EVENT = "reminder"
AGENDA_EVENT = "nurse_daily_agenda"
REMINDER_OFFSETS: dict[str, timedelta] = {"24h": timedelta(hours=24), "1h": timedelta(hours=1)}
# A sweep queues reminders for visits starting within this horizon (a little over 24 hours).
SWEEP_HORIZON = timedelta(hours=25)
# Agendas are queued from the agenda time until this many hours later, never in the evening.
AGENDA_WINDOW = timedelta(hours=4)


def reminder_key(appointment_id: int, label: str) -> str:
    """Dedupe key of one reminder: one per appointment and offset, whatever the channel."""
    return f"reminder:{appointment_id}:{label}"


def _add_once(session: Session, row: Notification) -> bool:
    """Insert unless a row with the same dedupe_key exists (checked, then backstopped)."""
    exists = session.scalar(
        select(Notification.id).where(Notification.dedupe_key == row.dedupe_key)
    )
    if exists is not None:
        return False
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False  # another process queued it first
    return True


def _reminder_text(appointment: Appointment, label: str) -> str:
    patient = appointment.patient
    when = spoken(appointment.start_at, patient.time_zone)
    what = KIND_WORDS.get(AppointmentKind(appointment.kind), "appointment")
    soon = "tomorrow" if label == "24h" else "in about an hour"
    # A home visit says where, so the patient can tell us if they will be elsewhere.
    where = (
        f" at {patient.address}"
        if appointment.kind == AppointmentKind.HOME_VISIT and patient.has_address
        else ""
    )
    return (
        f"Carematix reminder: your {what} with nurse {appointment.nurse.first_name} is {soon}, "
        f"{when}{where}. To change it, call us back or reply to this message."
    )


def schedule_reminders(
    session: Session, appointment: Appointment, now: datetime, *, just_booked: bool = False
) -> list[Notification]:
    """Queue the 24 h and 1 h reminders still ahead; by SMS with consent, else email.

    `just_booked` is for an appointment inserted in this very transaction: nothing can have
    queued its reminders yet, so the per-row duplicate check (a query and a savepoint each)
    is skipped and the unique dedupe key stays the backstop.
    """
    if appointment.status != AppointmentStatus.SCHEDULED:
        return []
    patient = appointment.patient
    if patient.sms_consent:
        channel = Channel.SMS
    elif patient.email:
        channel = Channel.EMAIL
    else:
        return []
    added: list[Notification] = []
    for label, offset in REMINDER_OFFSETS.items():
        send_at = appointment.start_at - offset
        if send_at <= now:
            continue  # already past: a late "tomorrow" reminder would only confuse
        row = Notification(
            recipient_kind=RecipientKind.PATIENT,
            patient_id=patient.id,
            channel=channel,
            event=f"{REMINDER_EVENT}_{label}",
            subject="Appointment reminder",
            body=_reminder_text(appointment, label),
            status=NotificationStatus.QUEUED,
            appointment_id=appointment.id,
            send_after=send_at,
            dedupe_key=reminder_key(appointment.id, label),
            created_at=now,
        )
        if just_booked:
            session.add(row)
            added.append(row)
        elif _add_once(session, row):
            added.append(row)
    return added


def withdraw_reminders(session: Session, appointment_id: int, now: datetime) -> int:
    """Cancel the appointment's reminders that have not gone out yet; returns how many."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.appointment_id == appointment_id,
            Notification.event.startswith(REMINDER_EVENT),
            Notification.status == NotificationStatus.QUEUED,
        )
        .values(status=NotificationStatus.CANCELLED, last_error="appointment changed or cancelled")
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def sync_reminders(
    session: Session, appointment: Appointment, now: datetime, *, just_booked: bool = False
) -> None:
    """Make reminders match the appointment: queued while scheduled, withdrawn otherwise.

    For the booking services: call it for the new appointment (`just_booked`) and for the old
    one after a reschedule, and after a cancellation.
    """
    if appointment.status == AppointmentStatus.SCHEDULED:
        schedule_reminders(session, appointment, now, just_booked=just_booked)
    else:
        withdraw_reminders(session, appointment.id, now)


def queue_upcoming_reminders(session: Session, now: datetime) -> int:
    """Sweep: queue reminders for every scheduled visit in the next 25 hours (idempotent)."""
    upcoming = session.scalars(
        select(Appointment).where(
            Appointment.status == AppointmentStatus.SCHEDULED,
            Appointment.start_at > now,
            Appointment.start_at <= now + SWEEP_HORIZON,
        )
    ).all()
    return sum(len(schedule_reminders(session, appointment, now)) for appointment in upcoming)


def _agenda_text(nurse: Nurse, visits: list[Appointment]) -> str:
    if not visits:
        return f"Good morning {nurse.first_name}: no visits are scheduled today."
    lines = [f"Good morning {nurse.first_name}: your visits today."]
    tz = zone(nurse.time_zone)
    for visit in visits:
        start = visit.start_at.astimezone(tz)
        what = KIND_WORDS.get(AppointmentKind(visit.kind), "appointment")
        where = (
            f" at {visit.patient.address}"
            if visit.kind == AppointmentKind.HOME_VISIT and visit.patient.has_address
            else ""
        )
        lines.append(
            f"- {start:%H:%M} {what} with {visit.patient.first_name}{where} "
            f"(appointment #{visit.id})"
        )
    return "\n".join(lines)


def queue_daily_agendas(
    session: Session, now: datetime, *, agenda_time: time = time(7)
) -> list[Notification]:
    """Queue today's agenda for each active nurse once their local agenda time has come.

    One per nurse, channel and local date (dedupe_key). Email when the nurse has an address,
    in-app when the nurse has a login. Nurses whose morning window has passed are skipped, so a
    worker started in the afternoon does not send a morning agenda.
    """
    added: list[Notification] = []
    for nurse in session.scalars(select(Nurse).where(Nurse.active.is_(True))).all():
        tz = zone(nurse.time_zone)
        local = now.astimezone(tz)
        due = datetime.combine(local.date(), agenda_time, tzinfo=tz)
        if not due <= local < due + AGENDA_WINDOW:
            continue
        login_id = session.scalar(
            select(User.id).where(
                User.nurse_id == nurse.id, User.role == Role.NURSE, User.active.is_(True)
            )
        )
        channels = ([Channel.EMAIL] if nurse.email else []) + (
            [Channel.IN_APP] if login_id is not None else []
        )
        if not channels:
            continue
        day_start = datetime.combine(local.date(), time(0), tzinfo=tz)
        visits = list(
            session.scalars(
                select(Appointment)
                .where(
                    Appointment.nurse_id == nurse.id,
                    Appointment.status == AppointmentStatus.SCHEDULED,
                    Appointment.start_at >= day_start,
                    Appointment.start_at < day_start + timedelta(days=1),
                )
                .order_by(Appointment.start_at)
            )
        )
        for channel in channels:
            row = Notification(
                recipient_kind=RecipientKind.NURSE,
                nurse_id=nurse.id,
                user_id=login_id if channel == Channel.IN_APP else None,
                channel=channel,
                event=AGENDA_EVENT,
                subject=f"Your visits on {local:%A %d %B}",
                body=_agenda_text(nurse, visits),
                status=NotificationStatus.QUEUED,
                send_after=now,
                dedupe_key=f"agenda:{nurse.id}:{local.date().isoformat()}:{channel}",
                created_at=now,
            )
            if _add_once(session, row):
                added.append(row)
    return added


def reinstate_reminders(session: Session, appointment: Appointment, now: datetime) -> None:
    """Queue again the reminders a cancellation withdrew, when the cancellation is undone."""
    session.execute(
        update(Notification)
        .where(
            Notification.appointment_id == appointment.id,
            Notification.event.startswith(REMINDER_EVENT),
            Notification.status == NotificationStatus.CANCELLED,
            Notification.send_after > now,
        )
        .values(status=NotificationStatus.QUEUED, last_error=None)
        .execution_options(synchronize_session=False)
    )
    schedule_reminders(session, appointment, now)  # any still missing (the key stops doubles)
