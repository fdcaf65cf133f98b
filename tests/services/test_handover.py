"""Deactivating a nurse with hand-over: all of it or none of it (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import DomainError, InvalidState, NotAssigned, ValidationError
from core.models import (
    Appointment,
    AppointmentStatus,
    Notification,
    Nurse,
)
from core.services.assignments import active_assignment
from core.services.booking import book_appointment
from core.services.handover import (
    BACKUP_COVERS,
    CANCEL_VISIT,
    deactivate_with_handover,
    deactivation_overview,
)
from tests.services.world import ACTOR, World, assign_backup, build_world, counts, local

TUESDAY = date(2025, 3, 4)


@pytest.fixture
def world(session_factory: sessionmaker[Session], frozen_now: datetime) -> World:
    """Alice is both patients' primary; Michael is free; one visit is booked with Alice."""
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        book_appointment(
            session,
            patient_id=world.patient_id,
            start=local(TUESDAY, 10),
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
    return world


def _visit(session: Session, nurse_id: int) -> Appointment:
    return session.scalars(select(Appointment).where(Appointment.nurse_id == nurse_id)).one()


def _deactivate(factory, now, world, **choices):
    with factory() as session:
        try:
            deactivate_with_handover(session, world.nurse_id, actor=ACTOR, now=now, **choices)
        except DomainError:
            session.rollback()
            raise
        session.commit()


def test_the_overview_lists_her_visits_patients_and_who_is_free(session_factory, frozen_now, world):
    with session_factory() as session:
        overview = deactivation_overview(session, world.nurse_id, now=frozen_now)
        assert [c.appointment.start_at for c in overview.visits] == [local(TUESDAY, 10)]
        assert overview.visits[0].nurses == {world.other_nurse_id: None}  # free then
        assert sorted(p.assignment.patient_id for p in overview.primaries) == sorted(
            [world.patient_id, world.other_patient_id]
        )
        assert [n.id for n in overview.candidates] == [world.other_nurse_id]


def test_handing_over_moves_the_visit_and_patients_then_deactivates(
    session_factory, frozen_now, world
):
    with session_factory() as session:
        visit_id = _visit(session, world.nurse_id).id
    michael = str(world.other_nurse_id)
    _deactivate(
        session_factory,
        frozen_now,
        world,
        patients={world.patient_id: michael, world.other_patient_id: michael},
        visits={visit_id: michael},
    )
    with session_factory() as session:
        assert session.get(Nurse, world.nurse_id).active is False
        old = session.get(Appointment, visit_id)
        new = _visit(session, world.other_nurse_id)
        assert old.status == AppointmentStatus.CANCELLED and old.cancel_reason == "rescheduled"
        assert (new.start_at, new.rescheduled_from_id) == (old.start_at, old.id)
        for patient_id in (world.patient_id, world.other_patient_id):
            primary = active_assignment(session, patient_id, on=TUESDAY)
            assert primary is not None and primary.nurse_id == world.other_nurse_id
        told = session.scalars(
            select(Notification.event).where(
                Notification.appointment_id == new.id, Notification.recipient_kind == "patient"
            )
        ).all()
        assert "appointment_rescheduled" in told


def test_a_cancelled_visit_tells_the_patient(session_factory, frozen_now, world):
    with session_factory() as session:
        visit_id = _visit(session, world.nurse_id).id
    michael = str(world.other_nurse_id)
    _deactivate(
        session_factory,
        frozen_now,
        world,
        patients={world.patient_id: michael, world.other_patient_id: michael},
        visits={visit_id: CANCEL_VISIT},
    )
    with session_factory() as session:
        visit = session.get(Appointment, visit_id)
        assert (visit.status, visit.cancel_reason) == ("cancelled", "nurse_unavailable")
        assert session.scalar(
            select(Notification.id).where(
                Notification.appointment_id == visit_id,
                Notification.event == "appointment_cancelled",
                Notification.recipient_kind == "patient",
            )
        )


def _unchanged(session_factory, world, before) -> None:
    assert counts(session_factory) == before
    with session_factory() as session:
        assert session.get(Nurse, world.nurse_id).active is True
        assert _visit(session, world.nurse_id).status == AppointmentStatus.SCHEDULED
        primary = active_assignment(session, world.patient_id, on=TUESDAY)
        assert primary is not None and primary.nurse_id == world.nurse_id


def test_a_visit_without_a_choice_stops_everything(session_factory, frozen_now, world):
    before = counts(session_factory)
    michael = str(world.other_nurse_id)
    with pytest.raises(ValidationError) as refused:
        _deactivate(
            session_factory,
            frozen_now,
            world,
            patients={world.patient_id: michael, world.other_patient_id: michael},
            visits={},
        )
    assert refused.value.field.startswith("visit-")
    _unchanged(session_factory, world, before)


def test_a_patient_can_be_left_to_the_backup_nurse_who_takes_the_visit(
    session_factory, frozen_now, world
):
    with session_factory() as session:
        visit_id = _visit(session, world.nurse_id).id
        assign_backup(session, world.patient_id, world.other_nurse_id, frozen_now)
        session.commit()
    michael = str(world.other_nurse_id)
    _deactivate(
        session_factory,
        frozen_now,
        world,
        patients={world.patient_id: BACKUP_COVERS, world.other_patient_id: michael},
        visits={visit_id: michael},
    )
    with session_factory() as session:
        assert active_assignment(session, world.patient_id, on=TUESDAY) is None
        backup = active_assignment(session, world.patient_id, on=TUESDAY, role="backup")
        assert backup is not None and backup.nurse_id == world.other_nurse_id
        assert _visit(session, world.other_nurse_id).patient_id == world.patient_id


def test_a_nurse_not_assigned_to_the_patient_cannot_take_the_visit(
    session_factory, frozen_now, world
):
    with session_factory() as session:
        visit_id = _visit(session, world.nurse_id).id
        third = Nurse(first_name="Rosa", last_name="Diaz", time_zone="UTC", created_at=frozen_now)
        session.add(third)
        session.commit()
        third_id = third.id
    before = counts(session_factory)
    michael = str(world.other_nurse_id)
    with pytest.raises(NotAssigned) as refused:
        _deactivate(
            session_factory,
            frozen_now,
            world,
            patients={world.patient_id: michael, world.other_patient_id: michael},
            visits={visit_id: str(third_id)},
        )
    assert refused.value.field == f"visit-{visit_id}"
    _unchanged(session_factory, world, before)


def test_a_busy_nurse_cannot_take_the_visit_and_nothing_changes(session_factory, frozen_now, world):
    with session_factory() as session:
        visit_id = _visit(session, world.nurse_id).id
        assign_backup(session, world.other_patient_id, world.other_nurse_id, frozen_now)
        book_appointment(
            session,
            patient_id=world.other_patient_id,
            nurse_id=world.other_nurse_id,
            start=local(TUESDAY, 10),
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
    before = counts(session_factory)
    michael = str(world.other_nurse_id)
    with pytest.raises(InvalidState, match="cannot take this visit"):
        _deactivate(
            session_factory,
            frozen_now,
            world,
            patients={world.patient_id: michael, world.other_patient_id: michael},
            visits={visit_id: michael},
        )
    _unchanged(session_factory, world, before)
