"""Booking that helps: waiving notice or horizon with a reason (single visits and series), and
the next free times across a patient's care team and matching nurses (each test on SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.errors import SlotUnavailable, ValidationError
from core.models import Appointment, AuditEvent, Nurse, Patient, SeriesBookMode, Weekday
from core.operations import SeriesDetails
from core.services.availability import set_weekly_availability
from core.services.booking import book_appointment, reschedule_appointment
from core.services.openings import Relation, next_available
from core.services.people import create_nurse
from core.services.series import book_series, plan_series
from tests.services.world import ACTOR, NY, World, assign_backup, away, build_world, local, weekdays

MONDAY = date(2025, 3, 3)  # frozen_now is 08:00 UTC (03:00 in New York) that day


@pytest.fixture
def world(session_factory: sessionmaker[Session], frozen_now: datetime) -> World:
    """Nurses with a day's minimum notice and a 30-day horizon."""
    return build_world(session_factory, frozen_now, min_notice=24 * 60, horizon_days=30)


def _book(factory: sessionmaker[Session], now: datetime, start: datetime, **kw: object) -> int:
    with factory() as session:
        patient_id = session.scalar(select(Patient.id).where(Patient.last_name == "Smith"))
        appointment = book_appointment(
            session, patient_id=patient_id, start=start, actor=ACTOR, now=now, **kw
        )
        session.commit()
        return appointment.id


@pytest.mark.parametrize(
    ("start", "rule"),
    [(local(MONDAY, 10), "too_soon"), (local(MONDAY + timedelta(days=35), 10), "beyond_horizon")],
)
def test_a_coordinator_books_inside_notice_or_past_the_horizon_with_a_reason_that_is_audited(
    session_factory: sessionmaker[Session], frozen_now: datetime, world: World, start, rule
) -> None:
    with pytest.raises(SlotUnavailable) as refused:
        _book(session_factory, frozen_now, start)
    assert refused.value.reason == rule
    with pytest.raises(ValidationError) as blank:
        _book(session_factory, frozen_now, start, override_reason="   ")
    assert blank.value.field == "override_reason"
    appointment_id = _book(session_factory, frozen_now, start, override_reason="Wound check")
    with session_factory() as session:
        event = session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "appointment.booked", AuditEvent.entity_id == appointment_id
            )
        )
        assert event is not None
        assert event.details["rule_waived"] == rule
        assert event.details["override_reason"] == "Wound check"


def test_a_reason_waives_only_notice_and_horizon_never_hours_time_off_or_another_visit(
    session_factory: sessionmaker[Session], frozen_now: datetime, world: World
) -> None:
    tuesday = MONDAY + timedelta(days=1)
    with session_factory() as session:
        away(session, world.nurse_id, tuesday, tuesday, frozen_now)
        session.commit()
    taken = _book(session_factory, frozen_now, local(MONDAY, 11), override_reason="Urgent")
    for start, reason in [
        (local(MONDAY, 7), "outside_hours"),
        (local(tuesday, 10), "time_off"),
        (local(MONDAY, 11), "conflict"),
        (datetime(2025, 3, 3, 7, 0, tzinfo=frozen_now.tzinfo), "in_the_past"),
    ]:
        with pytest.raises(SlotUnavailable) as refused:
            _book(session_factory, frozen_now, start, override_reason="Urgent")
        assert refused.value.reason == reason
    with session_factory() as session:
        assert session.scalar(select(Appointment.id).where(Appointment.id != taken)) is None


def test_moving_a_visit_inside_the_notice_needs_a_reason_too(
    session_factory: sessionmaker[Session], frozen_now: datetime, world: World
) -> None:
    visit = _book(session_factory, frozen_now, local(MONDAY + timedelta(days=3), 10))
    with session_factory() as session, pytest.raises(SlotUnavailable):
        reschedule_appointment(
            session, visit, new_start=local(MONDAY, 15), actor=ACTOR, now=frozen_now
        )
    with session_factory() as session:
        moved = reschedule_appointment(
            session,
            visit,
            new_start=local(MONDAY, 15),
            actor=ACTOR,
            now=frozen_now,
            override_reason="Nurse is nearby today",
        )
        session.commit()
        event = session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "appointment.rescheduled", AuditEvent.entity_id == moved.id
            )
        )
        assert event is not None and event.details["rule_waived"] == "too_soon"


def test_next_available_puts_the_care_team_first_then_nurses_who_cover_the_needs(
    session_factory: sessionmaker[Session], frozen_now: datetime, world: World
) -> None:
    with session_factory() as session:
        assign_backup(session, world.patient_id, world.other_nurse_id, frozen_now)
        diabetes = create_nurse(
            session,
            actor=ACTOR,
            now=frozen_now,
            first_name="Dana",
            last_name="Reyes",
            time_zone=NY,
            specializations=["Diabetes"],
            min_notice_minutes=24 * 60,
        )
        set_weekly_availability(
            session, diabetes.id, weekdays(time(7), time(9)), actor=ACTOR, now=frozen_now
        )
        idle = create_nurse(  # covers the need but has no hours: left out
            session,
            actor=ACTOR,
            now=frozen_now,
            first_name="Omar",
            last_name="Idle",
            time_zone=NY,
            specializations=["diabetes"],
        )
        # The primary is away all week: her first times are next Monday.
        away(session, world.nurse_id, MONDAY, MONDAY + timedelta(days=6), frozen_now)
        session.commit()
        found = next_available(session, world.patient_id, now=frozen_now)
    assert [(o.nurse.id, o.relation) for o in found] == [
        (world.nurse_id, Relation.PRIMARY),
        (world.other_nurse_id, Relation.BACKUP),
        (diabetes.id, Relation.MATCHING),
    ]
    assert idle.id not in {o.nurse.id for o in found}
    primary, backup, matching = found
    assert primary.slots[0].start == local(MONDAY + timedelta(days=7), 9)
    # A day's notice: the backup's first time is Tuesday 09:00 (03:00 Monday + 24 h = 03:00).
    assert backup.slots[0].start == local(MONDAY + timedelta(days=1), 9)
    # The first three starts on the booking grid (15-minute steps) after her day's notice.
    assert [s.start for s in matching.slots] == [
        local(MONDAY + timedelta(days=1), 7),
        local(MONDAY + timedelta(days=1), 7, 15),
        local(MONDAY + timedelta(days=1), 7, 30),
    ]
    assert matching.covers == ["Diabetes"] and not matching.on_care_team
    with session_factory() as session:  # nothing was written by looking
        assert session.scalar(select(Appointment.id)) is None
        session.execute(update(Nurse).values(active=False))
        session.commit()
        assert next_available(session, world.patient_id, now=frozen_now) == []


def _weekly(patient_id: int, count: int, start: datetime) -> SeriesDetails:
    return SeriesDetails.model_validate(
        {
            "patient_id": patient_id,
            "start": start.isoformat(),
            "weekdays": [list(Weekday)[start.weekday()].value],
            "count": count,
        }
    )


def test_a_series_past_the_horizon_books_with_a_reason_for_the_visits_waived(
    session_factory: sessionmaker[Session], frozen_now: datetime, world: World
) -> None:
    weekly = _weekly(world.patient_id, 8, local(MONDAY + timedelta(days=8), 10))  # to day 57
    with session_factory() as session:
        plan = plan_series(session, weekly, now=frozen_now)
        assert [o.refusal for o in plan.refused] == ["beyond_horizon"] * 4  # past day 30
        with pytest.raises(ValidationError) as unexplained:
            book_series(session, weekly, actor=ACTOR, now=frozen_now, waive=True)
        assert unexplained.value.field == "override_reason"
        only_one = book_series(
            session,
            weekly,
            actor=ACTOR,
            now=frozen_now,
            mode=SeriesBookMode.FREE_ONLY,
            waive=[5],
            override_reason="Post-surgery care plan",
        )
        assert [a.series_index for a in only_one.booked] == [0, 1, 2, 3, 5]
        assert [o.index for o in only_one.refused] == [4, 6, 7]
        session.rollback()
        whole = book_series(
            session, weekly, actor=ACTOR, now=frozen_now, waive=True, override_reason="Care plan"
        )
        session.commit()
        assert len(whole.booked) == 8
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "series.booked"))
        assert event is not None
        assert event.details["rule_waived"] == ["beyond_horizon"]
        assert event.details["waived_visits"] == [4, 5, 6, 7]
        assert event.details["override_reason"] == "Care plan"


def test_waiving_for_a_series_never_books_outside_the_nurses_hours(
    session_factory: sessionmaker[Session], frozen_now: datetime, world: World
) -> None:
    weekly = _weekly(world.patient_id, 6, local(MONDAY + timedelta(days=8), 7))  # 07:00
    with session_factory() as session:
        plan = plan_series(session, weekly, now=frozen_now, waive=True)
        assert {o.refusal for o in plan.occurrences} == {"outside_hours"}
        assert not any(o.waived for o in plan.occurrences)
