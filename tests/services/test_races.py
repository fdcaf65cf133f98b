"""Racing bookings: exactly one wins, the others get a clean conflict (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import date, datetime

import pytest
from sqlalchemy import select

from core.db import make_engine, make_session_factory
from core.errors import SlotUnavailable
from core.models import Appointment, AppointmentStatus
from core.services.booking import book_appointment
from tests.services.world import ACTOR, build_world, local

TUESDAY = date(2025, 3, 4)
THREADS = 20


def _attempt(factory, now: datetime, patient_id: int, start: datetime, minutes: int) -> str:
    """One booking in its own transaction; 'won' or 'conflict' (anything else is a failure)."""
    with factory() as session:
        try:
            book_appointment(
                session,
                patient_id=patient_id,
                start=start,
                actor=ACTOR,
                now=now,
                duration_minutes=minutes,
            )
            session.commit()
            return "won"
        except SlotUnavailable as refused:
            session.rollback()
            assert refused.reason == "conflict"
            return "conflict"


def _race_threads(factory, now, jobs: list[tuple[int, datetime, int]]) -> list[str]:
    barrier = threading.Barrier(len(jobs))
    results: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(patient_id: int, start: datetime, minutes: int) -> None:
        barrier.wait()
        try:
            outcome = _attempt(factory, now, patient_id, start, minutes)
        except BaseException as exc:  # collected: a thread's error must fail the test
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def _scheduled(factory) -> list[Appointment]:
    with factory() as session:
        return list(
            session.scalars(
                select(Appointment).where(Appointment.status == AppointmentStatus.SCHEDULED)
            )
        )


def test_twenty_threads_booking_the_same_slot_give_exactly_one_winner(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    patients = [world.patient_id, world.other_patient_id]
    jobs = [(patients[i % 2], local(TUESDAY, 10), 30) for i in range(THREADS)]
    results = _race_threads(session_factory, frozen_now, jobs)
    assert sorted(results) == ["conflict"] * (THREADS - 1) + ["won"]
    assert len(_scheduled(session_factory)) == 1


def test_twenty_threads_booking_overlapping_slots_of_different_lengths_give_one_winner(
    session_factory, frozen_now
):
    world = build_world(session_factory, frozen_now)
    patients = [world.patient_id, world.other_patient_id]
    # Every job overlaps 10:30-10:45, so at most one can be scheduled.
    shapes = [(10, 0, 60), (10, 15, 30), (10, 30, 15), (10, 30, 45), (9, 45, 60)]
    jobs = [
        (patients[i % 2], local(TUESDAY, shapes[i % 5][0], shapes[i % 5][1]), shapes[i % 5][2])
        for i in range(THREADS)
    ]
    results = _race_threads(session_factory, frozen_now, jobs)
    assert results.count("won") == 1
    assert results.count("conflict") == THREADS - 1
    assert len(_scheduled(session_factory)) == 1


def _process_attempt(
    url: str, now: datetime, patient_id: int, start: datetime, minutes: int, barrier, queue
) -> None:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    barrier.wait(timeout=60)
    try:
        queue.put(_attempt(factory, now, patient_id, start, minutes))
    except BaseException as exc:  # reported to the parent, which fails the test
        queue.put(f"error: {exc!r}")
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize(
    "shapes",
    [[(10, 0, 30), (10, 0, 30)], [(10, 0, 60), (10, 30, 30)]],
    ids=["same-slot", "overlapping"],
)
def test_two_processes_racing_give_exactly_one_winner(db_url, session_factory, frozen_now, shapes):
    world = build_world(session_factory, frozen_now)
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(2), context.Queue()
    processes = [
        context.Process(
            target=_process_attempt,
            args=(
                db_url,
                frozen_now,
                patient_id,
                local(TUESDAY, hour, minute),
                minutes,
                barrier,
                queue,
            ),
        )
        for patient_id, (hour, minute, minutes) in zip(
            [world.patient_id, world.other_patient_id], shapes, strict=True
        )
    ]
    for process in processes:
        process.start()
    results = sorted(queue.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert results == ["conflict", "won"]
    assert len(_scheduled(session_factory)) == 1
