"""Who may see which records: role scoping applied inside the queries themselves.

Admins and coordinators see everything. A nurse sees only their own nurse record, their own
appointments, and their patients, with the calls of those patients. A patient is hers:

- while she is on the patient's care team (an assignment valid today or later), and
- through a visit with her that is booked (scheduled) or took place (completed, no-show), from
  the booking until VISIT_ACCESS_DAYS after the visit ended; never through a cancelled visit
  or one entered in error.

Any record outside that scope is reported as NotFound, exactly like a record that does not
exist. Framework-free: the dashboard and the API both build on it.

The audit trail: admins read all of it; coordinators read the events of the records they
manage (patients, nurses, visits, calls, messages), not those of staff logins and API tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, false, or_, select
from sqlalchemy.orm import Session

from core.db import AnySelect
from core.errors import NotFound
from core.models import (
    Appointment,
    AppointmentSeries,
    AppointmentStatus,
    AuditEvent,
    Base,
    Call,
    Nurse,
    Patient,
    PatientNurseAssignment,
    Role,
)

RowT = TypeVar("RowT", bound=Base)

STAFF_ROLES = frozenset({Role.ADMIN.value, Role.COORDINATOR.value})
# How long after a visit its nurse may still open the patient's record (notes, follow-up).
VISIT_ACCESS_DAYS = 14
# Visits that give their nurse access: booked, or that took place.
ACCESS_GIVING_VISITS = (
    AppointmentStatus.SCHEDULED,
    AppointmentStatus.COMPLETED,
    AppointmentStatus.NO_SHOW,
)

# Records whose audit trail coordinators read: the ones they manage day to day.
COORDINATOR_AUDITED_RECORDS = (
    "patient",
    "nurse",
    "appointment",
    "call",
    "callback_request",
    "notification",
    "condition_mapping",
    "waitlist_entry",
    "waitlist_offer",
)


@dataclass(frozen=True)
class Viewer:
    """The signed-in person a query is scoped for."""

    user_id: int | None
    role: str
    nurse_id: int | None = None

    @property
    def sees_all(self) -> bool:
        """Admins and coordinators see every record."""
        return self.role in STAFF_ROLES

    @property
    def own_nurse_id(self) -> int | None:
        """The nurse this viewer is, when the viewer is a linked nurse login."""
        return self.nurse_id if self.role == Role.NURSE else None


def nurse_patient_filter(column: Any, nurse_id: int, now: datetime) -> ColumnElement[bool]:
    """`column` (a patient id) is one of the nurse's patients (see the module's rule)."""
    since = (now - timedelta(days=1)).date()  # a day of slack covers every zone's "today"
    assigned = select(PatientNurseAssignment.patient_id).where(
        PatientNurseAssignment.nurse_id == nurse_id,
        or_(PatientNurseAssignment.valid_to.is_(None), PatientNurseAssignment.valid_to >= since),
    )
    visited = select(Appointment.patient_id).where(
        Appointment.nurse_id == nurse_id,
        Appointment.status.in_(ACCESS_GIVING_VISITS),
        Appointment.end_at >= now - timedelta(days=VISIT_ACCESS_DAYS),
    )
    return or_(column.in_(assigned), column.in_(visited))


def _scope(stmt: AnySelect, viewer: Viewer, condition: Any) -> AnySelect:
    """`stmt` unchanged for staff, restricted for a linked nurse, empty for anyone else."""
    if viewer.sees_all:
        return stmt
    if viewer.own_nurse_id is None:
        return stmt.where(false())
    return stmt.where(condition(viewer.own_nurse_id))


def patients(viewer: Viewer, now: datetime) -> Select[Patient]:
    """Patients the viewer may see."""
    return _scope(
        select(Patient), viewer, lambda nurse_id: nurse_patient_filter(Patient.id, nurse_id, now)
    )


def nurses(viewer: Viewer) -> Select[Nurse]:
    """Nurses the viewer may see (a nurse: only themselves)."""
    return _scope(select(Nurse), viewer, lambda nurse_id: Nurse.id == nurse_id)


def appointments(viewer: Viewer) -> Select[Appointment]:
    """Appointments the viewer may see (a nurse: only their own)."""
    return _scope(select(Appointment), viewer, lambda nurse_id: Appointment.nurse_id == nurse_id)


def series(viewer: Viewer) -> Select[AppointmentSeries]:
    """Series the viewer may see (a nurse: only their own)."""
    return _scope(
        select(AppointmentSeries), viewer, lambda nurse_id: AppointmentSeries.nurse_id == nurse_id
    )


def calls(viewer: Viewer, now: datetime) -> Select[Call]:
    """Calls the viewer may see (a nurse: calls with one of their patients)."""
    return _scope(
        select(Call), viewer, lambda nurse_id: nurse_patient_filter(Call.patient_id, nurse_id, now)
    )


def audit_events(viewer: Viewer) -> Select[AuditEvent]:
    """Audit events the viewer may read (see the module's rule; nurses read none)."""
    stmt = select(AuditEvent)
    if viewer.role == Role.ADMIN:
        return stmt
    if viewer.role == Role.COORDINATOR:
        return stmt.where(AuditEvent.entity_type.in_(COORDINATOR_AUDITED_RECORDS))
    return stmt.where(false())


def not_found(model: type[Base], record_id: int) -> NotFound:
    """The error for a record that does not exist or that the viewer may not see."""
    what = "series" if model is AppointmentSeries else model.__name__.lower()
    return NotFound(f"No {what} with id {record_id}.", field=f"{what}_id")


def _one(session: Session, stmt: Select[RowT], model: type[RowT], record_id: int) -> RowT:
    row = session.scalar(stmt.where(model.id == record_id))  # type: ignore[attr-defined,arg-type]
    if row is None:
        raise not_found(model, record_id)
    return row


def get_patient(session: Session, viewer: Viewer, patient_id: int, now: datetime) -> Patient:
    """The patient if visible to the viewer, else NotFound."""
    return _one(session, patients(viewer, now), Patient, patient_id)


def get_nurse(session: Session, viewer: Viewer, nurse_id: int) -> Nurse:
    """The nurse if visible to the viewer, else NotFound."""
    return _one(session, nurses(viewer), Nurse, nurse_id)


def get_appointment(session: Session, viewer: Viewer, appointment_id: int) -> Appointment:
    """The appointment if visible to the viewer, else NotFound."""
    return _one(session, appointments(viewer), Appointment, appointment_id)


def get_series(session: Session, viewer: Viewer, series_id: int) -> AppointmentSeries:
    """The series if visible to the viewer, else NotFound."""
    return _one(session, series(viewer), AppointmentSeries, series_id)


def get_call(session: Session, viewer: Viewer, call_id: int, now: datetime) -> Call:
    """The call if visible to the viewer, else NotFound."""
    return _one(session, calls(viewer, now), Call, call_id)
