"""Time-off requests: asked by a nurse, approved into an override or declined (both databases)."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import InvalidState, ValidationError
from core.models import NurseAvailabilityOverride, TimeOffRequest, TimeOffStatus
from core.services.booking import book_appointment, free_slots
from core.services.time_off import (
    approve_time_off,
    decline_time_off,
    pending_requests,
    request_time_off,
    would_collide,
)
from tests.services.world import ACTOR, World, build_world, local

TUESDAY = date(2025, 3, 4)


@pytest.fixture
def world(session_factory: sessionmaker[Session], frozen_now: datetime) -> World:
    """Nurses, patients, hours and assignments, committed."""
    return build_world(session_factory, frozen_now)


def ask(factory: sessionmaker[Session], now: datetime, nurse_id: int, **kwargs: object) -> int:
    with factory() as session:
        request = request_time_off(
            session, nurse_id, actor=ACTOR, now=now, reason="Course", **kwargs
        )
        session.commit()
        return request.id


def test_a_request_changes_no_hours_until_approved(session_factory, frozen_now, world):
    request_id = ask(session_factory, frozen_now, world.nurse_id, start_date=TUESDAY)
    with session_factory() as session:
        assert [r.id for r in pending_requests(session)] == [request_id]
        assert session.scalar(select(NurseAvailabilityOverride.id)) is None
        slots = free_slots(
            session, world.nurse_id, start=local(TUESDAY, 0), end=local(TUESDAY, 23), now=frozen_now
        )
        assert slots  # she is still bookable that day


def test_approval_adds_the_override_and_names_the_colliding_visits(
    session_factory, frozen_now, world
):
    with session_factory() as session:
        visit = book_appointment(
            session,
            patient_id=world.patient_id,
            start=local(TUESDAY, 13),
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
    request_id = ask(
        session_factory,
        frozen_now,
        world.nurse_id,
        start_date=TUESDAY,
        start_time=time(12),
        end_time=time(14),
    )
    with session_factory() as session:
        previewed = would_collide(session, session.get(TimeOffRequest, request_id))
        assert [c.appointment_id for c in previewed] == [visit.id]
        _, collisions = approve_time_off(session, request_id, actor=ACTOR, now=frozen_now)
        session.commit()
        assert [c.appointment_id for c in collisions] == [visit.id]
    with session_factory() as session:
        stored = session.get(TimeOffRequest, request_id)
        override = session.get(NurseAvailabilityOverride, stored.override_id)
        assert stored.status == TimeOffStatus.APPROVED and stored.decided_at == frozen_now
        assert (override.kind, override.start_time, override.end_time) == (
            "time_off",
            time(12),
            time(14),
        )
        assert pending_requests(session) == []


def test_a_request_is_decided_once(session_factory, frozen_now, world):
    request_id = ask(session_factory, frozen_now, world.nurse_id, start_date=TUESDAY)
    with session_factory() as session:
        decline_time_off(session, request_id, actor=ACTOR, now=frozen_now, note="Short-staffed")
        session.commit()
    with session_factory() as session, pytest.raises(InvalidState, match="already declined"):
        approve_time_off(session, request_id, actor=ACTOR, now=frozen_now)
    with session_factory() as session:
        assert session.scalar(select(NurseAvailabilityOverride.id)) is None
        assert session.get(TimeOffRequest, request_id).decision_note == "Short-staffed"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start_date": date(2025, 3, 2)}, "start_date"),  # yesterday in New York
        ({"start_date": TUESDAY, "end_date": date(2025, 3, 3)}, "end_date"),
        ({"start_date": TUESDAY, "start_time": time(12)}, "end_time"),
        ({"start_date": TUESDAY, "start_time": time(14), "end_time": time(12)}, "end_time"),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_written(
    session_factory, frozen_now, world, kwargs, field
):
    with session_factory() as session, pytest.raises(ValidationError) as refused:
        request_time_off(session, world.nurse_id, actor=ACTOR, now=frozen_now, reason="x", **kwargs)
    assert refused.value.field == field
    with session_factory() as session:
        assert session.scalar(select(TimeOffRequest.id)) is None


def test_a_request_needs_a_reason(session_factory, frozen_now, world):
    with session_factory() as session, pytest.raises(ValidationError) as refused:
        request_time_off(
            session, world.nurse_id, actor=ACTOR, now=frozen_now, start_date=TUESDAY, reason=" "
        )
    assert refused.value.field == "reason"
