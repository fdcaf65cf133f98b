"""A nurse's access to a patient through a visit follows a rule that ends (core.services.access).

Her scenario from the field: made backup for a patient, booked, the visit cancelled and she
taken off the care team; she must no longer open the patient or his calls.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import NotFound
from core.models import Call, CallDirection, CallStatus, PatientNurseAssignment
from core.services import access
from core.services.assignments import remove_assignment
from core.services.booking import book_appointment, cancel_appointment, mark_completed
from tests.services.world import ACTOR, assign_backup, build_world, local

# A Monday morning, so the next days are working days.
NOW = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)


def _sees(session: Session, nurse_id: int, patient_id: int, now: datetime) -> bool:
    viewer = access.Viewer(user_id=None, role="nurse", nurse_id=nurse_id)
    try:
        access.get_patient(session, viewer, patient_id, now)
    except NotFound:
        return False
    calls = session.scalars(access.calls(viewer, now).where(Call.patient_id == patient_id))
    assert bool(list(calls)) is True, "the patient's calls follow the patient"
    return True


def _backup_visit(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    """Nurse 2 is the patient's backup, has a visit with him, and is then taken off the team."""
    world = build_world(factory, NOW)
    with factory() as session:
        assign_backup(session, world.patient_id, world.other_nurse_id, NOW)
        visit = book_appointment(
            session,
            patient_id=world.patient_id,
            nurse_id=world.other_nurse_id,
            start=local((NOW + timedelta(days=1)).date(), 10),
            actor=ACTOR,
            now=NOW,
        )
        session.add(
            Call(
                direction=CallDirection.INBOUND,
                patient_id=world.patient_id,
                status=CallStatus.COMPLETED,
                created_at=NOW,
            )
        )
        backup = session.scalar(
            select(PatientNurseAssignment).where(
                PatientNurseAssignment.nurse_id == world.other_nurse_id
            )
        )
        assert backup is not None
        remove_assignment(session, world.patient_id, backup.id, actor=ACTOR, now=NOW)
        session.commit()
        return world.other_nurse_id, world.patient_id, visit.id


def test_a_cancelled_visit_gives_its_nurse_no_access(
    session_factory: sessionmaker[Session],
) -> None:
    nurse_id, patient_id, visit_id = _backup_visit(session_factory)
    with session_factory() as session:
        assert _sees(session, nurse_id, patient_id, NOW)  # the booked visit still gives access
        cancel_appointment(session, visit_id, actor=ACTOR, now=NOW)
        session.commit()
        assert not _sees(session, nurse_id, patient_id, NOW)


@pytest.mark.parametrize(
    ("days_after", "sees"),
    [(1, True), (access.VISIT_ACCESS_DAYS - 1, True), (access.VISIT_ACCESS_DAYS + 1, False)],
)
def test_a_visit_that_took_place_gives_access_for_a_set_time(
    session_factory: sessionmaker[Session], days_after: int, sees: bool
) -> None:
    nurse_id, patient_id, visit_id = _backup_visit(session_factory)
    after_visit = NOW + timedelta(days=2)
    with session_factory() as session:
        mark_completed(session, visit_id, actor=ACTOR, now=after_visit)
        session.commit()
        assert _sees(session, nurse_id, patient_id, NOW + timedelta(days=1 + days_after)) is sees
