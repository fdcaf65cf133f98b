"""The next free times for a patient: their care team first, then nurses who cover their needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.errors import Slot
from core.models import AssignmentRole, Nurse, Patient, PatientNurseAssignment
from core.scheduling import require_aware, slot_starts
from core.services.assignments import condition_map, patient_today
from core.services.common import get_or_raise
from core.services.schedules import load_schedules

# How far ahead the search looks: four weeks covers a nurse's full rota and a week off.
SEARCH_DAYS = 28


class Relation(StrEnum):
    """How a nurse in the search stands to the patient (the care team can be booked now)."""

    PRIMARY = AssignmentRole.PRIMARY.value
    BACKUP = AssignmentRole.BACKUP.value
    MATCHING = "matching"


@dataclass(frozen=True)
class Opening:
    """One nurse's earliest free times for the patient."""

    nurse: Nurse
    relation: Relation
    slots: list[Slot]
    covers: list[str]  # the patient's conditions her specialisations cover

    @property
    def on_care_team(self) -> bool:
        """Whether the patient can be booked with her without a new assignment."""
        return self.relation != Relation.MATCHING


def covered_conditions(
    conditions: list[str], specialties: set[str], mapping: dict[str, set[str]]
) -> list[str]:
    """The conditions a nurse with `specialties` covers (by the coordinators' mapping or name)."""
    return [c for c in conditions if (mapping.get(c.lower(), set()) | {c.lower()}) & specialties]


def next_available(
    session: Session,
    patient_id: int,
    *,
    now: datetime,
    per_nurse: int = 3,
    matching: int = 3,
) -> list[Opening]:
    """The patient's care team (primary, backup) and up to `matching` other active nurses who
    cover at least one of their conditions, each with her first `per_nurse` free times within
    four weeks; the care team first, then by earliest time. Nurses with no time are left out.
    """
    now = require_aware(now, "now")
    patient = get_or_raise(session, Patient, patient_id, "patient")
    today = patient_today(patient, now)
    team = {
        row.nurse_id: row.role
        for row in session.execute(
            select(PatientNurseAssignment.nurse_id, PatientNurseAssignment.role).where(
                PatientNurseAssignment.patient_id == patient.id,
                PatientNurseAssignment.valid_from <= today,
                or_(
                    PatientNurseAssignment.valid_to.is_(None),
                    PatientNurseAssignment.valid_to >= today,
                ),
            )
        )
    }
    nurses = list(session.scalars(select(Nurse).where(Nurse.active.is_(True)).order_by(Nurse.id)))
    conditions = [c.strip() for c in patient.conditions if c.strip()]
    mapping = condition_map(session)
    covers = {
        nurse.id: covered_conditions(
            conditions, {s.strip().lower() for s in nurse.specializations}, mapping
        )
        for nurse in nurses
    }
    # Others are searched best cover first; a few more than shown, as some have no time.
    others = sorted(
        (n for n in nurses if n.id not in team and covers[n.id]),
        key=lambda n: (-len(covers[n.id]), n.id),
    )[: matching * 3]
    searched = [n for n in nurses if n.id in team] + others
    end = now + timedelta(days=SEARCH_DAYS)
    schedules = load_schedules(
        session, searched, now, end + timedelta(days=1), now=now, patient_id=patient.id
    )
    openings = []
    for nurse in searched:
        length = timedelta(minutes=nurse.visit_minutes)
        starts = slot_starts(schedules[nurse.id], now, end, now, nurse.visit_minutes)
        if not starts:
            continue
        openings.append(
            Opening(
                nurse=nurse,
                relation=Relation(team.get(nurse.id, Relation.MATCHING)),
                slots=[Slot(nurse.id, s, s + length) for s in starts[:per_nurse]],
                covers=covers[nurse.id],
            )
        )
    order = {Relation.PRIMARY: 0, Relation.BACKUP: 1, Relation.MATCHING: 2}
    openings.sort(key=lambda o: (order[o.relation], o.slots[0].start, o.nurse.id))
    shown_matching = [o for o in openings if not o.on_care_team][:matching]
    return [o for o in openings if o.on_care_team] + shown_matching
