"""Audit events record what changed, old and new, for the changed fields only."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.models import AuditEvent, Nurse
from core.services.assignments import assign_nurse
from core.services.booking import mark_completed
from core.services.common import field_changes
from core.services.people import update_nurse, update_patient
from tests.notifications.helpers import book
from tests.services.world import ACTOR, build_world

EDITABLE = (
    "first_name",
    "last_name",
    "title",
    "specializations",
    "phone",
    "email",
    "time_zone",
    "visit_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "min_notice_minutes",
    "horizon_days",
    "slot_step_minutes",
    "daily_cap",
    "active",
)


def _latest(session: Session, action: str) -> AuditEvent:
    event = session.scalar(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc())
    )
    assert event is not None
    return event


def test_saving_a_whole_nurse_form_with_one_field_changed_records_only_that_field(
    session_factory: sessionmaker[Session], frozen_now
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        nurse = session.get(Nurse, world.nurse_id)
        assert nurse is not None
        form = {name: getattr(nurse, name) for name in EDITABLE}  # all 15, as the form sends
        update_nurse(
            session, nurse.id, actor=ACTOR, now=frozen_now, **{**form, "visit_minutes": 45}
        )
        session.commit()
        before = form["visit_minutes"]
        assert before != 45
        event = _latest(session, "nurse.updated")
    assert event.details == {"changes": {"visit_minutes": [before, 45]}}


def test_a_patients_notes_are_recorded_as_changed_without_their_text(
    session_factory: sessionmaker[Session], frozen_now
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        update_patient(
            session,
            world.patient_id,
            actor=ACTOR,
            now=frozen_now,
            notes="Knee pain since the fall",
            date_of_birth=date(1950, 5, 17),
        )
        session.commit()
        event = _latest(session, "patient.updated")
    changes = event.details["changes"]
    assert changes["notes"] is None
    assert changes["date_of_birth"][1] == "1950-05-17"
    assert "Knee pain" not in str(event.details)


def test_a_first_primary_nurse_records_no_replaced_nurse_and_a_new_one_names_the_old(
    session_factory: sessionmaker[Session], frozen_now
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        assign_nurse(
            session,
            patient_id=world.other_patient_id,
            nurse_id=world.other_nurse_id,
            role="backup",
            actor=ACTOR,
            now=frozen_now,
        )
        assign_nurse(
            session,
            patient_id=world.patient_id,
            nurse_id=world.other_nurse_id,
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "assignment.created")
            .order_by(AuditEvent.id.desc())
            .limit(2)
        ).all()
    replaced, first_backup = events
    assert first_backup.details["changes"] == {"backup_nurse_id": [None, world.other_nurse_id]}
    assert replaced.details["changes"] == {
        "primary_nurse_id": [world.nurse_id, world.other_nurse_id]
    }
    assert all("replaced_nurse_id" not in event.details for event in events)


def test_a_status_change_records_the_old_and_new_status(
    session_factory: sessionmaker[Session], frozen_now
) -> None:
    world = build_world(session_factory, frozen_now)
    visit = book(session_factory, frozen_now, world.patient_id)
    with session_factory() as session:
        appointment = mark_completed(
            session, visit, actor=ACTOR, now=frozen_now.replace(year=2026), note="went well"
        )
        session.commit()
        event = _latest(session, "appointment.completed")
    assert appointment.status == "completed"
    assert event.details["changes"] == {"status": ["scheduled", "completed"]}
    assert "went well" not in str(event.details)


def test_field_changes_leaves_out_equal_values_however_they_are_typed() -> None:
    assert field_changes({"a": 1, "b": ["x"], "c": None}, {"a": 1, "b": ("x",), "c": None}) == {}
    assert field_changes({"a": None}, {"a": ""}) == {"a": [None, ""]}
