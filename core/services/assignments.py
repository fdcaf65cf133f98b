"""Which nurse looks after which patient, and ranking nurses for a patient who has none."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session

from core.errors import InvalidState, NotFound, ValidationError
from core.models import (
    AssignmentRole,
    ConditionSpecialization,
    Nurse,
    Patient,
    PatientNurseAssignment,
)
from core.scheduling import free_intervals, require_aware, zone
from core.services.common import Actor, audit, field_changes, get_or_raise
from core.services.schedules import load_schedules


def patient_today(patient: Patient, now: datetime) -> date:
    """The patient's local date at `now`."""
    return require_aware(now, "now").astimezone(zone(patient.time_zone)).date()


# Built once: every availability check and booking runs it, and building it cost more
# Python than running it (bench/bridge.py tool profile).
_ACTIVE_ASSIGNMENT = (
    select(PatientNurseAssignment)
    .where(
        PatientNurseAssignment.patient_id == bindparam("patient_id"),
        PatientNurseAssignment.role == bindparam("role"),
        PatientNurseAssignment.valid_from <= bindparam("on"),
        or_(
            PatientNurseAssignment.valid_to.is_(None),
            PatientNurseAssignment.valid_to >= bindparam("on"),
        ),
    )
    .order_by(PatientNurseAssignment.valid_from.desc())
)


def active_assignment(
    session: Session, patient_id: int, *, on: date, role: str = AssignmentRole.PRIMARY
) -> PatientNurseAssignment | None:
    """The patient's assignment of that role covering the date `on`, if any."""
    params = {"patient_id": patient_id, "role": role, "on": on}
    return session.scalars(_ACTIVE_ASSIGNMENT, params).first()


def is_assigned(session: Session, patient_id: int, nurse_id: int, on: date) -> bool:
    """Whether the nurse is the patient's primary or backup on that date."""
    found = session.scalar(
        select(PatientNurseAssignment.id).where(
            PatientNurseAssignment.patient_id == patient_id,
            PatientNurseAssignment.nurse_id == nurse_id,
            PatientNurseAssignment.valid_from <= on,
            or_(PatientNurseAssignment.valid_to.is_(None), PatientNurseAssignment.valid_to >= on),
        )
    )
    return found is not None


def assign_nurse(
    session: Session,
    *,
    patient_id: int,
    nurse_id: int,
    actor: Actor,
    now: datetime,
    role: str = AssignmentRole.PRIMARY,
    valid_from: date | None = None,
    valid_to: date | None = None,
) -> PatientNurseAssignment:
    """Make the nurse the patient's primary (or backup), ending the one it replaces."""
    if role not in {r.value for r in AssignmentRole}:
        raise ValidationError("The role must be primary or backup.", field="role")
    patient = get_or_raise(session, Patient, patient_id, "patient")
    nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
    if not nurse.active:
        raise ValidationError("That nurse is inactive and cannot take patients.", field="nurse_id")
    start = valid_from or patient_today(patient, now)
    if valid_to is not None and valid_to < start:
        raise ValidationError("The assignment cannot end before it starts.", field="valid_to")
    other_role = AssignmentRole.BACKUP if role == AssignmentRole.PRIMARY else AssignmentRole.PRIMARY
    other = active_assignment(session, patient_id, on=start, role=other_role)
    if other is not None and other.nurse_id == nurse_id:
        raise ValidationError(
            f"That nurse is already this patient's {other_role} nurse.", field="nurse_id"
        )
    current = active_assignment(session, patient_id, on=start, role=role)
    if current is not None:
        if current.nurse_id == nurse_id and current.valid_to == valid_to:
            return current
        if current.valid_from >= start:
            # It never took effect before the new one starts: replace it outright.
            session.delete(current)
        else:
            current.valid_to = start - timedelta(days=1)
        session.flush()
    assignment = PatientNurseAssignment(
        patient_id=patient_id,
        nurse_id=nurse_id,
        role=role,
        valid_from=start,
        valid_to=valid_to,
        source=actor.source,
        created_by_user_id=actor.user_id,
        created_at=now,
    )
    session.add(assignment)
    session.flush()
    audit(
        session,
        actor=actor,
        action="assignment.created",
        entity_type="patient",
        entity_id=patient_id,
        now=now,
        nurse_id=nurse_id,
        role=role,
        changes=field_changes(
            {f"{role}_nurse_id": current.nurse_id if current is not None else None},
            {f"{role}_nurse_id": nurse_id},
        ),
    )
    return assignment


def end_assignment(
    session: Session, assignment_id: int, *, actor: Actor, now: datetime, last_day: date
) -> PatientNurseAssignment:
    """End an assignment after `last_day`."""
    assignment = get_or_raise(session, PatientNurseAssignment, assignment_id, "assignment")
    if last_day < assignment.valid_from:
        raise ValidationError("The assignment cannot end before it starts.", field="valid_to")
    assignment.valid_to = last_day
    session.flush()
    _audit_ended(session, assignment, actor=actor, now=now)
    return assignment


def _audit_ended(
    session: Session, assignment: PatientNurseAssignment, *, actor: Actor, now: datetime
) -> None:
    audit(
        session,
        actor=actor,
        action="assignment.ended",
        entity_type="patient",
        entity_id=assignment.patient_id,
        now=now,
        nurse_id=assignment.nurse_id,
        role=assignment.role,
    )


def remove_assignment(
    session: Session, patient_id: int, assignment_id: int, *, actor: Actor, now: datetime
) -> None:
    """Take a nurse off the patient's care team from today (in the patient's zone).

    An assignment that started before today ends yesterday, so its history stays; one that
    starts today or later never took effect and is deleted, as `assign_nurse` does when it
    replaces one. Visits already booked with the nurse are kept: cancel or move them apart.
    """
    assignment = session.get(PatientNurseAssignment, assignment_id)
    if assignment is None or assignment.patient_id != patient_id:
        raise NotFound(f"No assignment {assignment_id} for this patient.")
    patient = get_or_raise(session, Patient, patient_id, "patient")
    today = patient_today(patient, now)
    if assignment.valid_to is not None and assignment.valid_to < today:
        raise InvalidState("That assignment has already ended.")
    if assignment.valid_from >= today:
        session.delete(assignment)
    else:
        assignment.valid_to = today - timedelta(days=1)
    session.flush()
    _audit_ended(session, assignment, actor=actor, now=now)


# ---------------------------------------------------------------- matching


@dataclass
class NurseMatch:
    """One nurse's fit for a patient, with the reasons a coordinator reads."""

    nurse_id: int
    nurse_name: str
    score: float
    coverage: float
    matched: dict[str, str] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    patient_load: int = 0
    free_hours_next_week: float = 0.0
    reasons: list[str] = field(default_factory=list)


def condition_map(session: Session) -> dict[str, set[str]]:
    """Condition (lower case) to the specialisations (lower case) that cover it."""
    mapping: dict[str, set[str]] = {}
    for row in session.scalars(select(ConditionSpecialization)):
        mapping.setdefault(row.condition.strip().lower(), set()).add(
            row.specialization.strip().lower()
        )
    return mapping


def set_condition_mapping(
    session: Session, *, condition: str, specializations: list[str], actor: Actor, now: datetime
) -> None:
    """Replace the specialisations that cover one condition (coordinators edit this)."""
    name = condition.strip().lower()
    if not name:
        raise ValidationError("The condition is required.", field="condition")
    wanted = {s.strip().lower() for s in specializations if s.strip()}
    for row in session.scalars(
        select(ConditionSpecialization).where(func.lower(ConditionSpecialization.condition) == name)
    ):
        session.delete(row)
    session.flush()
    session.add_all(ConditionSpecialization(condition=name, specialization=s) for s in wanted)
    session.flush()
    audit(
        session,
        actor=actor,
        action="condition_mapping.updated",
        entity_type="condition_mapping",
        entity_id=None,
        now=now,
        specializations=sorted(wanted),
    )


def rank_nurses(session: Session, patient_id: int, *, now: datetime) -> list[NurseMatch]:
    """Active nurses ranked for the patient: condition coverage first, then load and free time."""
    patient = get_or_raise(session, Patient, patient_id, "patient")
    today = patient_today(patient, now)
    mapping = condition_map(session)
    nurses = list(session.scalars(select(Nurse).where(Nurse.active.is_(True)).order_by(Nurse.id)))
    loads = dict(
        session.execute(
            select(PatientNurseAssignment.nurse_id, func.count())
            .where(
                PatientNurseAssignment.role == AssignmentRole.PRIMARY,
                PatientNurseAssignment.valid_from <= today,
                or_(
                    PatientNurseAssignment.valid_to.is_(None),
                    PatientNurseAssignment.valid_to >= today,
                ),
            )
            .group_by(PatientNurseAssignment.nurse_id)
        ).all()
    )
    week_end = now + timedelta(days=7)
    schedules = load_schedules(session, nurses, now, week_end, now=now, patient_id=patient.id)
    conditions = [c.strip() for c in patient.conditions if c.strip()]
    matches = []
    for nurse in nurses:
        specialties = {s.strip().lower() for s in nurse.specializations}
        matched: dict[str, str] = {}
        for condition in conditions:
            wanted = mapping.get(condition.lower(), set()) | {condition.lower()}
            hit = sorted(wanted & specialties)
            if hit:
                matched[condition] = hit[0]
        unmatched = [c for c in conditions if c not in matched]
        coverage = len(matched) / len(conditions) if conditions else 0.0
        free = free_intervals(schedules[nurse.id], now, week_end, now)
        free_hours = sum((end - start).total_seconds() for start, end in free) / 3600
        load = int(loads.get(nurse.id, 0))
        # Coverage dominates; among equal coverage, free time and a lighter load break ties.
        score = round(coverage * 100 + min(free_hours, 40) / 4 - min(load, 50) / 5, 2)
        reasons = [
            (
                f"Covers {len(matched)} of {len(conditions)} conditions: "
                + ", ".join(f"{c} ({s})" for c, s in matched.items())
            )
            if matched
            else "Covers none of the patient's conditions",
        ]
        if unmatched:
            reasons.append("Not covered: " + ", ".join(unmatched))
        reasons.append(f"{free_hours:.1f} free hours in the next 7 days")
        reasons.append(f"{load} current primary patients")
        matches.append(
            NurseMatch(
                nurse_id=nurse.id,
                nurse_name=nurse.display_name,
                score=score,
                coverage=coverage,
                matched=matched,
                unmatched=unmatched,
                patient_load=load,
                free_hours_next_week=round(free_hours, 1),
                reasons=reasons,
            )
        )
    matches.sort(key=lambda m: (-m.score, m.nurse_id))
    return matches


def auto_assign_best(
    session: Session, patient_id: int, *, actor: Actor, now: datetime
) -> PatientNurseAssignment | None:
    """Give a patient without a primary nurse the best match (as the phone agent does)."""
    patient = get_or_raise(session, Patient, patient_id, "patient")
    current = active_assignment(session, patient_id, on=patient_today(patient, now))
    if current is not None:
        return current
    ranked = [m for m in rank_nurses(session, patient_id, now=now) if m.free_hours_next_week > 0]
    if not ranked:
        return None
    return assign_nurse(
        session, patient_id=patient_id, nurse_id=ranked[0].nurse_id, actor=actor, now=now
    )
