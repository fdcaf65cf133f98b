"""Deactivating a nurse: see what it affects, move or cancel her visits, hand over her
patients, then deactivate, all in one transaction (the entry point rolls back on any refusal)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidState, ValidationError
from core.models import (
    Appointment,
    AppointmentStatus,
    AssignmentRole,
    Nurse,
    PatientNurseAssignment,
)
from core.scheduling import REFUSAL_MESSAGES, refusal_for, require_aware
from core.services.assignments import active_assignment, assign_nurse, patient_today
from core.services.booking import cancel_appointment, move_to_nurse
from core.services.common import Actor, audit, get_or_raise
from core.services.people import update_nurse
from core.services.schedules import load_schedules

# What a coordinator chooses for a patient whose primary nurse leaves: a nurse's id, or this.
BACKUP_COVERS = "backup"
CANCEL_VISIT = "cancel"


@dataclass
class VisitChoice:
    """One upcoming visit, and which other nurses are free to take it (id: why not, or None)."""

    appointment: Appointment
    nurses: dict[int, str | None] = field(default_factory=dict)


@dataclass
class PatientChoice:
    """A patient the nurse looks after, in which role, and whether a backup could cover."""

    assignment: PatientNurseAssignment
    backup: PatientNurseAssignment | None


@dataclass
class Overview:
    """Everything deactivating the nurse affects, and the nurses who could take it over."""

    nurse: Nurse
    visits: list[VisitChoice]
    primaries: list[PatientChoice]
    backups: list[PatientNurseAssignment]
    candidates: list[Nurse]

    @property
    def affects_anything(self) -> bool:
        """Whether deactivating needs any choice at all."""
        return bool(self.visits or self.primaries or self.backups)


def _current_assignments(
    session: Session, nurse_id: int, now: datetime
) -> list[PatientNurseAssignment]:
    rows = session.scalars(
        select(PatientNurseAssignment)
        .where(PatientNurseAssignment.nurse_id == nurse_id)
        .order_by(PatientNurseAssignment.patient_id, PatientNurseAssignment.id)
    ).all()
    # Current or starting later: only ended ones leave nothing to hand over.
    return [a for a in rows if a.valid_to is None or a.valid_to >= patient_today(a.patient, now)]


def deactivation_overview(session: Session, nurse_id: int, *, now: datetime) -> Overview:
    """Her upcoming visits (with who is free for each), her patients and the other nurses."""
    now = require_aware(now, "now")
    nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
    visits = list(
        session.scalars(
            select(Appointment)
            .where(
                Appointment.nurse_id == nurse.id,
                Appointment.status == AppointmentStatus.SCHEDULED,
                Appointment.end_at > now,
            )
            .order_by(Appointment.start_at)
        )
    )
    candidates = list(
        session.scalars(
            select(Nurse)
            .where(Nurse.active.is_(True), Nurse.id != nurse.id)
            .order_by(Nurse.last_name, Nurse.first_name)
        )
    )
    choices = [VisitChoice(v) for v in visits]
    if visits and candidates:
        schedules = load_schedules(
            session, candidates, visits[0].start_at, max(v.end_at for v in visits), now=now
        )
        for choice in choices:
            visit = choice.appointment
            for other in candidates:
                refusal = refusal_for(schedules[other.id], visit.start_at, visit.end_at, now)
                choice.nurses[other.id] = REFUSAL_MESSAGES[refusal] if refusal else None
    assignments = _current_assignments(session, nurse.id, now)
    primaries = [
        PatientChoice(
            a,
            active_assignment(
                session,
                a.patient_id,
                on=patient_today(a.patient, now),
                role=AssignmentRole.BACKUP,
            ),
        )
        for a in assignments
        if a.role == AssignmentRole.PRIMARY
    ]
    backups = [a for a in assignments if a.role == AssignmentRole.BACKUP]
    return Overview(nurse, choices, primaries, backups, candidates)


def refuse_unplanned_deactivation(
    session: Session, nurse_id: int, *, now: datetime, instead: str
) -> None:
    """A ValidationError when deactivating her outright would leave visits or patients behind
    (`deactivate_with_handover` then says who takes them); `instead` says how, where asked."""
    if deactivation_overview(session, nurse_id, now=now).affects_anything:
        raise ValidationError(
            f"She still has upcoming visits or patients: {instead} to hand them over first.",
            field="active",
        )


def _end(session: Session, assignment: PatientNurseAssignment, now: datetime) -> None:
    """End the assignment before the patient's today; one not yet started is removed."""
    today = patient_today(assignment.patient, now)
    if assignment.valid_from >= today:
        session.delete(assignment)
    else:
        assignment.valid_to = today - timedelta(days=1)
    session.flush()


def deactivate_with_handover(
    session: Session,
    nurse_id: int,
    *,
    patients: Mapping[int, str],
    visits: Mapping[int, str],
    actor: Actor,
    now: datetime,
) -> Overview:
    """Hand over her patients (`patients`: patient id to a nurse id or BACKUP_COVERS), move or
    cancel her upcoming visits (`visits`: appointment id to a nurse id or CANCEL_VISIT), end
    her backup roles, then deactivate her. Any refusal raises with the row's field; the
    caller rolls back, so nothing is half-done."""
    now = require_aware(now, "now")
    overview = deactivation_overview(session, nurse_id, now=now)
    nurse = overview.nurse
    if not nurse.active:
        raise InvalidState("That nurse is already inactive.", field="nurse_id")
    candidate_ids = {n.id for n in overview.candidates}

    def chosen_nurse(raw: str, row: str, what: str) -> int:
        if not (raw.isascii() and raw.isdigit()) or int(raw) not in candidate_ids:
            raise ValidationError(f"Choose {what}.", field=row)
        return int(raw)

    handed = 0
    for choice in overview.primaries:
        row = f"patient-{choice.assignment.patient_id}"
        raw = (patients.get(choice.assignment.patient_id) or "").strip()
        if raw == BACKUP_COVERS and choice.backup is not None:
            continue  # her primary role ends below; booking then goes to the backup
        new_id = chosen_nurse(raw, row, "the nurse who takes this patient over")
        backup = choice.backup
        if backup is not None and backup.nurse_id == new_id:
            _end(session, backup, now)  # the backup becomes the primary
        assign_nurse(
            session,
            patient_id=choice.assignment.patient_id,
            nurse_id=new_id,
            actor=actor,
            now=now,
        )
        handed += 1
    session.flush()
    for assignment in _current_assignments(session, nurse.id, now):
        _end(session, assignment, now)

    moved = cancelled = 0
    for visit_choice in overview.visits:
        visit = visit_choice.appointment
        row = f"visit-{visit.id}"
        raw = (visits.get(visit.id) or "").strip()
        if raw == CANCEL_VISIT:
            cancel_appointment(
                session, visit.id, actor=actor, now=now, reason_code="nurse_unavailable"
            )
            cancelled += 1
            continue
        new_id = chosen_nurse(raw, row, "a nurse to move this visit to, or cancel it")
        move_to_nurse(session, visit.id, nurse_id=new_id, actor=actor, now=now, field=row)
        moved += 1

    update_nurse(session, nurse.id, actor=actor, now=now, active=False)
    audit(
        session,
        actor=actor,
        action="nurse.deactivated",
        entity_type="nurse",
        entity_id=nurse.id,
        now=now,
        patients_handed_over=handed,
        visits_moved=moved,
        visits_cancelled=cancelled,
    )
    return overview
