"""A small, committed world for service tests: one nurse, patients, hours and assignments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Appointment, AssignmentRole, AuditEvent, Notification
from core.services.assignments import assign_nurse
from core.services.availability import WeeklyWindowInput, add_override, set_weekly_availability
from core.services.common import Actor
from core.services.people import create_nurse, create_patient

NY = "America/New_York"
ACTOR = Actor.cli()


@dataclass
class World:
    """Ids of what `build_world` created."""

    nurse_id: int
    other_nurse_id: int
    patient_id: int
    other_patient_id: int


def weekdays(start: time = time(9), end: time = time(17)) -> list[WeeklyWindowInput]:
    """Monday to Friday with the same hours."""
    return [WeeklyWindowInput(day, start, end) for day in range(5)]


def build_world(
    factory: sessionmaker[Session], now: datetime, *, min_notice: int = 0, **nurse: object
) -> World:
    """Two nurses (New York, Mon-Fri 09-17), two patients, each patient's primary is nurse 1."""
    with factory() as session:
        first = create_nurse(
            session,
            actor=ACTOR,
            now=now,
            first_name="Alice",
            last_name="Wilson",
            time_zone=NY,
            min_notice_minutes=min_notice,
            email="alice@example.test",
            **nurse,
        )
        second = create_nurse(
            session,
            actor=ACTOR,
            now=now,
            first_name="Michael",
            last_name="Chen",
            time_zone=NY,
            min_notice_minutes=min_notice,
        )
        for n in (first, second):
            set_weekly_availability(session, n.id, weekdays(), actor=ACTOR, now=now)
        patient = create_patient(
            session,
            actor=ACTOR,
            now=now,
            first_name="John",
            last_name="Smith",
            date_of_birth=date(1958, 4, 12),
            phone="+12025550101",
            time_zone=NY,
            sms_consent=True,
            conditions=["Diabetes"],
        )
        other = create_patient(
            session,
            actor=ACTOR,
            now=now,
            first_name="Sarah",
            last_name="Johnson",
            date_of_birth=date(1985, 9, 23),
            phone="+12025550102",
            time_zone="America/Chicago",
        )
        for p in (patient, other):
            assign_nurse(session, patient_id=p.id, nurse_id=first.id, actor=ACTOR, now=now)
        session.commit()
        return World(first.id, second.id, patient.id, other.id)


def counts(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    """Appointments, notifications and audit events in the database."""
    with factory() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Appointment, Notification, AuditEvent)
        )


def local(day: date, hour: int, minute: int = 0, zone: str = NY) -> datetime:
    """An aware wall-clock time in `zone`."""
    from zoneinfo import ZoneInfo

    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone))


def assign_backup(session: Session, patient_id: int, nurse_id: int, now: datetime) -> None:
    """Make `nurse_id` the patient's backup nurse (not committed)."""
    assign_nurse(
        session,
        patient_id=patient_id,
        nurse_id=nurse_id,
        role=AssignmentRole.BACKUP,
        actor=ACTOR,
        now=now,
    )


def away(session: Session, nurse_id: int, first: date, last: date, now: datetime) -> None:
    """Time off for the nurse from `first` to `last`, whole days (not committed)."""
    add_override(
        session, nurse_id, kind="time_off", start_date=first, end_date=last, actor=ACTOR, now=now
    )
