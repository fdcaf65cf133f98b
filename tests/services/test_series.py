"""Recurring visits on a real database (SQLite and PostgreSQL): checked by the booking
engine, booked all or free-only, cancelled and moved occurrence by occurrence."""

from __future__ import annotations

import threading
from datetime import date, datetime
from itertools import pairwise

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import NotFound, SlotUnavailable, ValidationError
from core.models import (
    Appointment,
    AppointmentSeries,
    AppointmentStatus,
    AuditEvent,
    Notification,
    SeriesBookMode,
    SeriesScope,
)
from core.operations import SeriesDetails
from core.services.booking import book_appointment, cancel_appointment
from core.services.series import (
    MoveRefused,
    SeriesRefused,
    book_series,
    cancel_occurrences,
    move_following,
    move_occurrence,
    plan_series,
)
from tests.services.world import ACTOR, away, build_world, counts, local

TUESDAY = date(2025, 3, 4)


def details(patient_id: int, **changes: object) -> SeriesDetails:
    """Tuesdays and Thursdays at 10:00 New York, four visits, from TUESDAY."""
    data: dict[str, object] = {
        "patient_id": patient_id,
        "start": local(TUESDAY, 10).isoformat(),
        "weekdays": ["tue", "thu"],
        "count": 4,
    }
    data.update(changes)
    return SeriesDetails.model_validate(data)


def scheduled(session: Session) -> list[Appointment]:
    return list(
        session.scalars(
            select(Appointment)
            .where(Appointment.status == AppointmentStatus.SCHEDULED)
            .order_by(Appointment.start_at)
        )
    )


def test_a_free_series_is_booked_whole_with_reminders_for_each_visit(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        booked = book_series(session, details(world.patient_id), actor=ACTOR, now=frozen_now)
        session.commit()
        series_id = booked.series.id
    with session_factory() as session:
        visits = scheduled(session)
        assert [v.start_at for v in visits] == [
            local(TUESDAY, 10),
            local(date(2025, 3, 6), 10),
            local(date(2025, 3, 11), 10),  # after the change to daylight time: still 10:00
            local(date(2025, 3, 13), 10),
        ]
        assert {v.series_id for v in visits} == {series_id}
        assert [v.series_index for v in visits] == [0, 1, 2, 3]
        reminded = session.scalars(
            select(Notification.appointment_id).where(Notification.event.startswith("reminder"))
        ).all()
        assert sorted(set(reminded)) == sorted(v.id for v in visits)
        actions = session.scalars(select(AuditEvent.action)).all()
        assert actions.count("appointment.booked") == 4
        assert actions.count("series.booked") == 1
        series = session.get(AppointmentSeries, series_id)
        assert series is not None and series.weekdays == [1, 3] and series.count == 4


def test_time_off_inside_a_series_refuses_that_visit_and_books_nothing(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        away(session, world.nurse_id, date(2025, 3, 6), date(2025, 3, 6), frozen_now)
        session.commit()
    before = counts(session_factory)
    with session_factory() as session, pytest.raises(SeriesRefused) as refused:
        book_series(session, details(world.patient_id), actor=ACTOR, now=frozen_now)
    plan = refused.value.plan
    assert [(o.index, o.refusal) for o in plan.refused] == [(1, "time_off")]
    assert [o.index for o in plan.free] == [0, 2, 3]
    alternatives = plan.refused[0].alternatives
    assert alternatives and all(a.start.date() != date(2025, 3, 6) for a in alternatives)
    assert counts(session_factory) == before


def test_free_only_books_the_free_visits_and_reports_the_refused(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        book_appointment(
            session,
            patient_id=world.other_patient_id,
            start=local(date(2025, 3, 11), 10, 15),
            actor=ACTOR,
            now=frozen_now,
        )
        result = book_series(
            session,
            details(world.patient_id),
            actor=ACTOR,
            now=frozen_now,
            mode=SeriesBookMode.FREE_ONLY,
        )
        session.commit()
        assert [a.series_index for a in result.booked] == [0, 1, 3]
        assert [(o.index, o.refusal) for o in result.refused] == [(2, "conflict")]


def test_a_chosen_alternative_is_checked_and_booked_in_the_series(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        away(session, world.nurse_id, date(2025, 3, 6), date(2025, 3, 6), frozen_now)
        plan = plan_series(session, details(world.patient_id), now=frozen_now)
        choice = plan.refused[0].alternatives[0]
        booked = book_series(
            session,
            details(world.patient_id),
            actor=ACTOR,
            now=frozen_now,
            replacements={1: choice.start},
        )
        session.commit()
        assert [a.start_at for a in booked.booked][1] == choice.start
        assert [a.series_index for a in booked.booked] == [0, 1, 2, 3]


def test_skipping_a_refused_visit_books_the_rest(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        away(session, world.nurse_id, date(2025, 3, 6), date(2025, 3, 6), frozen_now)
        booked = book_series(
            session, details(world.patient_id), actor=ACTOR, now=frozen_now, skip={1}
        )
        session.commit()
        assert [a.series_index for a in booked.booked] == [0, 2, 3]


def test_skipping_every_visit_books_nothing_and_says_so(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session, pytest.raises(ValidationError, match="nothing to book"):
        book_series(
            session, details(world.patient_id), actor=ACTOR, now=frozen_now, skip={0, 1, 2, 3}
        )


def test_an_unknown_occurrence_to_move_or_skip_is_refused(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session, pytest.raises(ValidationError):
        plan_series(session, details(world.patient_id), now=frozen_now, skip={7})


def test_a_retried_key_returns_the_first_series(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        first = book_series(
            session, details(world.patient_id), actor=ACTOR, now=frozen_now, idempotency_key="k1"
        )
        session.commit()
        again = book_series(
            session, details(world.patient_id), actor=ACTOR, now=frozen_now, idempotency_key="k1"
        )
        assert again.replayed and again.series.id == first.series.id
        assert len(scheduled(session)) == 4


def test_cancelling_this_visit_keeps_the_others(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        booked = book_series(session, details(world.patient_id), actor=ACTOR, now=frozen_now)
        second = booked.booked[1]
        cancel_occurrences(
            session,
            booked.series.id,
            second.id,
            scope=SeriesScope.THIS,
            actor=ACTOR,
            now=frozen_now,
            reason_code="patient_request",
        )
        session.commit()
        assert [a.series_index for a in scheduled(session)] == [0, 2, 3]
        assert booked.series.ends_on is None


def test_cancelling_this_and_following_ends_the_series_the_day_before(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        booked = book_series(session, details(world.patient_id), actor=ACTOR, now=frozen_now)
        cancelled = cancel_occurrences(
            session,
            booked.series.id,
            booked.booked[2].id,
            scope=SeriesScope.FOLLOWING,
            actor=ACTOR,
            now=frozen_now,
            reason_code="clinical",
        )
        session.commit()
        assert [a.series_index for a in cancelled] == [2, 3]
        assert [a.series_index for a in scheduled(session)] == [0, 1]
        assert booked.series.ends_on == date(2025, 3, 10)
        withdrawn = session.scalars(
            select(Notification.status).where(
                Notification.appointment_id.in_([a.id for a in cancelled]),
                Notification.event.startswith("reminder"),
            )
        ).all()
        assert withdrawn and set(withdrawn) == {"cancelled"}
        assert "series.cancelled_following" in session.scalars(select(AuditEvent.action)).all()


def test_an_appointment_of_another_series_is_not_found_there(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        booked = book_series(session, details(world.patient_id), actor=ACTOR, now=frozen_now)
        single = book_appointment(
            session,
            patient_id=world.patient_id,
            start=local(TUESDAY, 14),
            actor=ACTOR,
            now=frozen_now,
        )
        with pytest.raises(NotFound):
            cancel_occurrences(
                session,
                booked.series.id,
                single.id,
                scope=SeriesScope.THIS,
                actor=ACTOR,
                now=frozen_now,
                reason_code="other",
            )


def test_a_moved_visit_stays_in_its_series_and_goes_through_the_engine(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        booked = book_series(session, details(world.patient_id), actor=ACTOR, now=frozen_now)
        series_id, visit = booked.series.id, booked.booked[1]
        moved = move_occurrence(
            session,
            series_id,
            visit.id,
            new_start=local(date(2025, 3, 7), 11),
            actor=ACTOR,
            now=frozen_now,
        )
        assert (moved.series_id, moved.series_index) == (series_id, 1)
        with pytest.raises(SlotUnavailable):
            move_occurrence(
                session,
                series_id,
                moved.id,
                new_start=local(date(2025, 3, 8), 11),
                actor=ACTOR,
                now=frozen_now,
            )  # a Saturday: the nurse does not work
        session.commit()
        assert [a.start_at for a in scheduled(session) if a.series_index == 1] == [
            local(date(2025, 3, 7), 11)
        ]


def test_cancelling_a_visit_of_a_series_alone_still_uses_the_single_path(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        booked = book_series(session, details(world.patient_id), actor=ACTOR, now=frozen_now)
        cancel_appointment(session, booked.booked[0].id, actor=ACTOR, now=frozen_now)
        session.commit()
        assert len(scheduled(session)) == 3


# ------------------------------------------------------------------ racing


def test_a_series_racing_single_bookings_never_overlaps(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    """Ten threads book single visits on the series' times while one books the series: each
    time ends up with one visit, and the series is booked whole or not at all."""
    world = build_world(session_factory, frozen_now)
    days = [TUESDAY, date(2025, 3, 6), date(2025, 3, 11), date(2025, 3, 13)]
    barrier = threading.Barrier(11)
    outcomes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def single(start: datetime) -> None:
        barrier.wait()
        with session_factory() as session:
            try:
                book_appointment(
                    session,
                    patient_id=world.other_patient_id,
                    start=start,
                    actor=ACTOR,
                    now=frozen_now,
                )
                session.commit()
                result = "single"
            except SlotUnavailable:
                session.rollback()
                result = "single refused"
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return
        with lock:
            outcomes.append(result)

    def series() -> None:
        barrier.wait()
        with session_factory() as session:
            try:
                book_series(session, details(world.patient_id), actor=ACTOR, now=frozen_now)
                session.commit()
                result = "series"
            except (SeriesRefused, SlotUnavailable):
                session.rollback()
                result = "series refused"
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return
        with lock:
            outcomes.append(result)

    starts = [local(days[i % 4], 10, 15 * (i % 2)) for i in range(10)]
    threads = [threading.Thread(target=single, args=(s,)) for s in starts]
    threads.append(threading.Thread(target=series))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(outcomes) == 11
    with session_factory() as session:
        visits = scheduled(session)
        for before, after in pairwise(visits):
            assert before.end_at <= after.start_at, "two scheduled visits overlap"
        in_series = [v for v in visits if v.series_id is not None]
        assert len(in_series) in (0, 4)
        assert ("series" in outcomes) == (len(in_series) == 4)
        # Each of the four times holds exactly one visit, from the series or a single one.
        assert len(visits) == 4


def test_moving_this_and_following_keeps_the_wall_time_across_dst_and_splits_the_series(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        booked = book_series(session, details(world.patient_id), actor=ACTOR, now=frozen_now)
        old_series = booked.series
        # Thursday 6 March and after, a quarter of an hour later: each overlaps its own old time.
        result = move_following(
            session,
            old_series.id,
            booked.booked[1].id,
            new_start=local(date(2025, 3, 6), 10, 15),
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
        visits = scheduled(session)
        # New York moves its clocks on 9 March: 10:15 stays 10:15 on both sides.
        assert [a.start_at for a in visits] == [
            local(TUESDAY, 10),
            local(date(2025, 3, 6), 10, 15),
            local(date(2025, 3, 11), 10, 15),
            local(date(2025, 3, 13), 10, 15),
        ]
        assert [a.series_id for a in visits] == [old_series.id] + [result.series.id] * 3
        assert [a.series_index for a in visits] == [0, 0, 1, 2]
        assert old_series.ends_on == date(2025, 3, 5)
        new = result.series
        assert (new.weekdays, new.count, new.start_date) == ([1, 3], 3, date(2025, 3, 6))
        assert new.wall_time.strftime("%H:%M") == "10:15"
        assert all(a.rescheduled_from_id is not None for a in result.moved)
        actions = session.scalars(select(AuditEvent.action)).all()
        assert "series.moved_following" in actions
        assert actions.count("appointment.rescheduled") == 3
        events = session.scalars(select(Notification.event)).all()
        assert "series_moved" in events


def test_moving_following_a_day_later_moves_the_weekdays_with_them(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        booked = book_series(session, details(world.patient_id), actor=ACTOR, now=frozen_now)
        result = move_following(
            session,
            booked.series.id,
            booked.booked[2].id,
            new_start=local(date(2025, 3, 12), 9),
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
        assert [a.start_at for a in result.moved] == [
            local(date(2025, 3, 12), 9),
            local(date(2025, 3, 14), 9),
        ]
        assert result.series.weekdays == [2, 4]  # Wednesday and Friday


def test_moving_following_is_all_or_nothing_and_says_which_visit_cannot_move(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        booked = book_series(session, details(world.patient_id), actor=ACTOR, now=frozen_now)
        away(session, world.nurse_id, date(2025, 3, 13), date(2025, 3, 13), frozen_now)
        session.commit()
        series_id, first_moved = booked.series.id, booked.booked[1].id
    with session_factory() as session:
        with pytest.raises(MoveRefused) as refused:
            move_following(
                session,
                series_id,
                first_moved,
                new_start=local(date(2025, 3, 6), 11),
                actor=ACTOR,
                now=frozen_now,
            )
        assert [(p.index, p.refusal) for p in refused.value.refused] == [(3, "time_off")]
        assert [p.index for p in refused.value.free] == [1, 2]
        session.rollback()
        assert [
            a.start_at.astimezone(local(TUESDAY, 10).tzinfo).hour for a in scheduled(session)
        ] == [10] * 4
        assert session.scalar(select(AppointmentSeries.ends_on)) is None
        assert len(session.scalars(select(AppointmentSeries)).all()) == 1
