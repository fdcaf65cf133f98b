"""Nurses, patients, weekly hours, overrides, assignments, matching, users and demo data."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from core.errors import InvalidState, NotFound, ValidationError
from core.models import (
    Appointment,
    AssignmentRole,
    AuditEvent,
    Nurse,
    NurseAvailability,
    Patient,
    PatientNurseAssignment,
    User,
)
from core.security import verify_password
from core.seed import seed_demo
from core.services.assignments import (
    active_assignment,
    assign_nurse,
    auto_assign_best,
    rank_nurses,
    remove_assignment,
    set_condition_mapping,
)
from core.services.availability import (
    WeeklyWindowInput,
    add_override,
    set_weekly_availability,
    visits_outside_hours,
)
from core.services.booking import free_slots
from core.services.common import Actor
from core.services.people import create_nurse, create_patient, update_nurse
from core.services.users import create_user
from tests.services.world import ACTOR, NY, assign_backup, build_world, weekdays


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"first_name": "  "}, "first_name"),
        ({"visit_minutes": 0}, "visit_minutes"),
        ({"email": "not-an-email"}, "email"),
        ({"phone": "12345"}, "phone"),
    ],
)
def test_bad_nurse_details_are_refused_and_nothing_written(session, frozen_now, changes, field):
    values = {"first_name": "Alice", "last_name": "Wilson", "time_zone": NY} | changes
    with pytest.raises(ValidationError) as refused:
        create_nurse(session, actor=ACTOR, now=frozen_now, **values)
    assert refused.value.field == field
    assert count(session, Nurse) == 0
    assert count(session, AuditEvent) == 0


def test_patients_phones_are_stored_in_e164_and_unique(session, frozen_now):
    patient = create_patient(
        session,
        actor=ACTOR,
        now=frozen_now,
        first_name="John",
        last_name="Smith",
        date_of_birth=date(1958, 4, 12),
        phone="+1 (202) 555-0101",
        time_zone=NY,
    )
    assert patient.phone == "+12025550101"
    with pytest.raises(ValidationError) as refused:
        create_patient(
            session,
            actor=ACTOR,
            now=frozen_now,
            first_name="Jane",
            last_name="Smith",
            date_of_birth=date(1960, 1, 1),
            phone="+12025550101",
            time_zone=NY,
        )
    assert refused.value.field == "phone"
    assert count(session, Patient) == 1


def test_a_date_of_birth_in_the_future_is_refused(session, frozen_now):
    with pytest.raises(ValidationError):
        create_patient(
            session,
            actor=ACTOR,
            now=frozen_now,
            first_name="John",
            last_name="Smith",
            date_of_birth=date(2030, 1, 1),
            phone="+12025550101",
            time_zone=NY,
        )


def test_overlapping_weekly_rules_are_refused_and_the_old_hours_kept(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        with pytest.raises(ValidationError) as refused:
            set_weekly_availability(
                session,
                world.nurse_id,
                [WeeklyWindowInput(0, time(9), time(13)), WeeklyWindowInput(0, time(12), time(17))],
                actor=ACTOR,
                now=frozen_now,
            )
        assert "Monday" in refused.value.message
        session.rollback()
    with session_factory() as session:
        rows = session.scalars(
            select(NurseAvailability).where(NurseAvailability.nurse_id == world.nurse_id)
        ).all()
        assert len(rows) == 5


def test_an_end_before_the_start_is_refused(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    with session_factory() as session, pytest.raises(ValidationError) as refused:
        set_weekly_availability(
            session,
            world.nurse_id,
            [WeeklyWindowInput(1, time(17), time(9))],
            actor=ACTOR,
            now=frozen_now,
        )
    assert "after the start" in refused.value.message


def test_rules_with_separate_validity_periods_may_share_a_weekday(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        set_weekly_availability(
            session,
            world.nurse_id,
            [
                WeeklyWindowInput(1, time(9), time(12), valid_to=date(2025, 3, 10)),
                WeeklyWindowInput(1, time(13), time(17), valid_from=date(2025, 3, 11)),
            ],
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
        first_week = free_slots(
            session,
            world.nurse_id,
            start=frozen_now,
            end=frozen_now + timedelta(days=2),
            now=frozen_now,
        )
        second_week = free_slots(
            session,
            world.nurse_id,
            start=frozen_now + timedelta(days=7),
            end=frozen_now + timedelta(days=9),
            now=frozen_now,
        )
    assert {s.start.astimezone(first_week[0].start.tzinfo).hour for s in first_week} <= {
        14,
        15,
        16,
    }  # 09:00-11:30 New York is 14:00-16:30 UTC
    assert min(s.start for s in second_week).hour == 17  # 13:00 EDT


def test_extra_hours_on_a_free_saturday_add_slots(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    saturday = date(2025, 3, 8)
    with session_factory() as session:
        add_override(
            session,
            world.nurse_id,
            kind="extra_hours",
            start_date=saturday,
            start_time=time(10),
            end_time=time(12),
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
        slots = free_slots(
            session,
            world.nurse_id,
            start=frozen_now,
            end=frozen_now + timedelta(days=7),
            now=frozen_now,
        )
    saturday_slots = [s for s in slots if s.start.date() == saturday]
    assert len(saturday_slots) == 7  # 10:00 to 11:30 every 15 minutes


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "holiday"}, "kind"),
        ({"end_date": date(2025, 3, 1)}, "end_date"),
        ({"start_time": time(12)}, "end_time"),
        ({"start_time": time(14), "end_time": time(12)}, "end_time"),
    ],
)
def test_bad_overrides_are_refused(session_factory, frozen_now, kwargs, field):
    world = build_world(session_factory, frozen_now)
    values = {"kind": "time_off", "start_date": date(2025, 3, 4)} | kwargs
    with session_factory() as session, pytest.raises(ValidationError) as refused:
        add_override(session, world.nurse_id, actor=ACTOR, now=frozen_now, **values)
    assert refused.value.field == field


def test_a_new_primary_ends_the_previous_one(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        assign_nurse(
            session,
            patient_id=world.patient_id,
            nurse_id=world.other_nurse_id,
            valid_from=date(2025, 3, 10),
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
        assert (
            active_assignment(session, world.patient_id, on=date(2025, 3, 9)).nurse_id
            == world.nurse_id
        )
        assert (
            active_assignment(session, world.patient_id, on=date(2025, 3, 10)).nurse_id
            == world.other_nurse_id
        )
        open_primaries = session.scalar(
            select(func.count())
            .select_from(PatientNurseAssignment)
            .where(
                PatientNurseAssignment.patient_id == world.patient_id,
                PatientNurseAssignment.role == "primary",
                PatientNurseAssignment.valid_to.is_(None),
            )
        )
        assert open_primaries == 1


def test_the_same_nurse_cannot_be_primary_and_backup(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    with session_factory() as session, pytest.raises(ValidationError):
        assign_nurse(
            session,
            patient_id=world.patient_id,
            nurse_id=world.nurse_id,
            role="backup",
            actor=ACTOR,
            now=frozen_now,
        )


def test_an_inactive_nurse_cannot_be_assigned(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        update_nurse(session, world.other_nurse_id, active=False, actor=ACTOR, now=frozen_now)
        with pytest.raises(ValidationError):
            assign_nurse(
                session,
                patient_id=world.patient_id,
                nurse_id=world.other_nurse_id,
                actor=ACTOR,
                now=frozen_now,
            )


def _matching_world(session, now: datetime) -> tuple[int, dict[str, int]]:
    nurses = {}
    for last, specialties in [
        ("Wilson", ["General Care"]),
        ("Chen", ["Cardiology"]),
        ("Garcia", ["Mental Health"]),
    ]:
        nurse = create_nurse(
            session,
            actor=ACTOR,
            now=now,
            first_name="N",
            last_name=last,
            time_zone=NY,
            specializations=specialties,
            min_notice_minutes=0,
        )
        set_weekly_availability(session, nurse.id, weekdays(), actor=ACTOR, now=now)
        nurses[last] = nurse.id
    for condition, specialization in [
        ("heart disease", "cardiology"),
        ("hypertension", "cardiology"),
        ("anxiety", "mental health"),
    ]:
        set_condition_mapping(
            session, condition=condition, specializations=[specialization], actor=ACTOR, now=now
        )
    patient = create_patient(
        session,
        actor=ACTOR,
        now=now,
        first_name="Robert",
        last_name="Brown",
        date_of_birth=date(1949, 1, 30),
        phone="+12025550103",
        time_zone=NY,
        conditions=["Heart Disease", "Hypertension"],
    )
    return patient.id, nurses


def test_matching_ranks_by_condition_coverage_and_explains_why(session, frozen_now):
    patient_id, nurses = _matching_world(session, frozen_now)
    ranked = rank_nurses(session, patient_id, now=frozen_now)
    assert ranked[0].nurse_id == nurses["Chen"]
    assert ranked[0].coverage == 1.0
    assert ranked[0].reasons[0] == (
        "Covers 2 of 2 conditions: Heart Disease (cardiology), Hypertension (cardiology)"
    )
    assert ranked[-1].coverage == 0.0


def test_matching_prefers_the_lighter_load_between_equal_specialists(session, frozen_now):
    patient_id, nurses = _matching_world(session, frozen_now)
    rival = create_nurse(
        session,
        actor=ACTOR,
        now=frozen_now,
        first_name="R",
        last_name="Ng",
        time_zone=NY,
        specializations=["Cardiology"],
        min_notice_minutes=0,
    )
    set_weekly_availability(session, rival.id, weekdays(), actor=ACTOR, now=frozen_now)
    busy = create_patient(
        session,
        actor=ACTOR,
        now=frozen_now,
        first_name="B",
        last_name="P",
        date_of_birth=date(1950, 1, 1),
        phone="+12025550109",
        time_zone=NY,
    )
    assign_nurse(session, patient_id=busy.id, nurse_id=nurses["Chen"], actor=ACTOR, now=frozen_now)
    ranked = rank_nurses(session, patient_id, now=frozen_now)
    assert [m.nurse_id for m in ranked[:2]] == [rival.id, nurses["Chen"]]


def test_the_agent_auto_assigns_the_best_match_and_says_so(session, frozen_now):
    patient_id, nurses = _matching_world(session, frozen_now)
    assignment = auto_assign_best(session, patient_id, actor=Actor.agent(4), now=frozen_now)
    assert assignment.nurse_id == nurses["Chen"]
    assert assignment.source == "agent"
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "assignment.created"))
    assert event.actor == "agent:call:4"
    # A second call finds the existing primary instead of assigning again.
    assert auto_assign_best(session, patient_id, actor=Actor.agent(4), now=frozen_now) is assignment


def test_staff_logins_need_a_unique_email_a_valid_role_and_a_long_password(session, frozen_now):
    user = create_user(
        session,
        email="Admin@Example.test",
        password="correct horse",
        role="admin",
        actor=ACTOR,
        now=frozen_now,
    )
    assert user.email == "admin@example.test"
    assert verify_password(user.password_hash, "correct horse")
    assert not verify_password(user.password_hash, "wrong horse")
    for kwargs, field in [
        ({"email": "admin@example.test"}, "email"),
        ({"role": "superuser"}, "role"),
        ({"password": "short"}, "password"),
        ({"role": "nurse"}, "nurse_id"),
    ]:
        values = {
            "email": "other@example.test",
            "password": "long enough pw",
            "role": "coordinator",
        } | kwargs
        with pytest.raises(ValidationError) as refused:
            create_user(session, actor=ACTOR, now=frozen_now, **values)
        assert refused.value.field == field
    assert count(session, User) == 1


def test_unknown_records_are_reported_as_not_found(session, frozen_now):
    with pytest.raises(NotFound):
        set_weekly_availability(session, 404, [], actor=ACTOR, now=frozen_now)
    with pytest.raises(NotFound):
        rank_nurses(session, 404, now=frozen_now)


def test_demo_data_is_created_once_with_bookable_visits(session_factory, frozen_now):
    with session_factory() as session:
        result = seed_demo(session, now=frozen_now, password="demo password 1")
        session.commit()
    assert result.created
    assert len(result.logins) == 7
    with session_factory() as session:
        assert count(session, Nurse) == 5
        assert count(session, Patient) == 4
        assert count(session, Appointment) >= 4
        assert seed_demo(session, now=frozen_now, password=None).created is False
        assert count(session, Nurse) == 5
        conditions = {p.full_name: set(p.conditions) for p in session.scalars(select(Patient))}
        assert conditions == {  # the product brief's sample patients
            "John Smith": {"Diabetes", "Hypertension"},
            "Sarah Johnson": {"Asthma", "Allergies"},
            "Robert Brown": {"Heart Disease", "Arthritis"},
            "Emily Davis": {"Anxiety", "Depression"},
        }
        nurses = {n.display_name: n for n in session.scalars(select(Nurse))}
        specialisations = {name: set(n.specializations) for name, n in nurses.items()}
        assert {name: {s.lower() for s in skills} for name, skills in specialisations.items()} == {
            "Dr. Alice Wilson": {"general care"},
            "Dr. Michael Chen": {"cardiology"},
            "Dr. Lisa Rodriguez": {"pediatrics"},
            "Dr. James Thompson": {"geriatrics"},
            "Dr. Maria Garcia": {"mental health"},
        }
        for nurse in nurses.values():  # Mon-Fri 9 AM-5 PM, Sat-Sun 10 AM-2 PM
            hours = sorted((w.weekday, w.start_time, w.end_time) for w in nurse.availability)
            assert hours == [(d, time(9), time(17)) for d in range(5)] + [
                (d, time(10), time(14)) for d in (5, 6)
            ], nurse.display_name
        for patient in session.scalars(select(Patient)):  # each has a primary nurse
            assert active_assignment(session, patient.id, on=frozen_now.date()) is not None


def test_demo_data_goes_into_a_used_database_only_when_asked(session, frozen_now):
    create_nurse(
        session, actor=ACTOR, now=frozen_now, first_name="Bulk", last_name="Loaded", time_zone=NY
    )
    create_patient(
        session,
        actor=ACTOR,
        now=frozen_now,
        first_name="Bulk",
        last_name="Patient",
        date_of_birth=date(1970, 1, 1),
        phone="+12025550199",
        time_zone=NY,
    )
    assert seed_demo(session, now=frozen_now, password="demo password 1").created is False
    assert count(session, Nurse) == 1
    added = seed_demo(session, now=frozen_now, password="demo password 1", alongside_data=True)
    assert added.created
    assert count(session, Nurse) == 6


def test_removing_a_nurse_from_the_care_team_keeps_history_and_takes_effect_today(
    session_factory, frozen_now
):
    world = build_world(session_factory, frozen_now - timedelta(days=10))  # primary since then
    with session_factory() as session:
        primary = active_assignment(session, world.patient_id, on=frozen_now.date())
        assert primary is not None
        assign_backup(session, world.patient_id, world.other_nurse_id, frozen_now)
        backup = active_assignment(
            session, world.patient_id, on=frozen_now.date(), role=AssignmentRole.BACKUP
        )
        assert backup is not None
        remove_assignment(session, world.patient_id, primary.id, actor=ACTOR, now=frozen_now)
        remove_assignment(session, world.patient_id, backup.id, actor=ACTOR, now=frozen_now)
        session.commit()
        today = frozen_now.astimezone(ZoneInfo(NY)).date()
        assert active_assignment(session, world.patient_id, on=today) is None
        ended = session.get(PatientNurseAssignment, primary.id)
        assert ended is not None and ended.valid_to == today - timedelta(days=1)  # history kept
        assert session.get(PatientNurseAssignment, backup.id) is None  # never took effect
        with pytest.raises(InvalidState):
            remove_assignment(session, world.patient_id, primary.id, actor=ACTOR, now=frozen_now)
        with pytest.raises(NotFound):  # another patient's assignment, through this patient
            remove_assignment(
                session, world.other_patient_id, primary.id, actor=ACTOR, now=frozen_now
            )


def test_visits_outside_new_weekly_hours_are_found_and_past_ones_left_alone(
    session_factory, frozen_now
):
    world = build_world(session_factory, frozen_now - timedelta(days=7))
    with session_factory() as session:

        def visit(start: datetime) -> Appointment:
            return Appointment(
                nurse_id=world.nurse_id,
                patient_id=world.patient_id,
                start_at=start,
                end_at=start + timedelta(minutes=30),
                created_at=frozen_now,
            )

        past = visit(frozen_now - timedelta(days=6))
        morning = visit(datetime(2025, 3, 4, 15, 0, tzinfo=UTC))  # Tuesday 10:00 in New York
        afternoon = visit(datetime(2025, 3, 4, 19, 0, tzinfo=UTC))  # Tuesday 14:00 in New York
        session.add_all([past, morning, afternoon])
        session.flush()
        assert visits_outside_hours(session, world.nurse_id, frozen_now) == []
        set_weekly_availability(
            session, world.nurse_id, weekdays(time(13), time(17)), actor=ACTOR, now=frozen_now
        )
        outside = visits_outside_hours(session, world.nurse_id, frozen_now)
        assert [c.appointment_id for c in outside] == [morning.id]
