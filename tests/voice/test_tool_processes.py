"""Read-only tools in worker processes: same answers as in the service, and a dead worker is
replaced without a caller noticing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_session_factory
from core.models import Patient, PatientNurseAssignment
from core.services.common import Actor
from core.services.people import create_patient
from tests.services.world import build_world
from tests.voice.test_tools import _next_weekday, _toolbox
from voice.tool_processes import ToolProcesses
from voice.tools import ToolBox

JOHN_BORN = "1958-04-12"


def _verified(factory: sessionmaker[Session], processes: ToolProcesses | None) -> ToolBox:
    build_world(factory, datetime.now(UTC))
    box = _toolbox(factory, processes=processes)
    assert box.dispatch_sync("verify_patient", {"date_of_birth": JOHN_BORN}, "verify")["verified"]
    return box


@contextlib.asynccontextmanager
async def _workers(count: int, database_url: str | None = None) -> AsyncIterator[ToolProcesses]:
    """`count` tool workers, started (and warmed on `database_url`), stopped afterwards."""
    processes = ToolProcesses(count)
    await processes.start(database_url)
    try:
        yield processes
    finally:
        await processes.close()


def _read_calls() -> list[tuple[str, dict[str, object]]]:
    day = _next_weekday().isoformat()
    return [
        ("check_availability", {"date": day, "time": "10:00"}),
        ("check_availability", {"date": day}),
        ("check_availability", {"date": "2001-01-01"}),
        ("check_availability", {"date": day, "time": "25:99"}),
        ("list_appointments", {}),
        ("get_assigned_nurse", {}),
    ]


def test_read_only_tools_answer_from_a_worker_exactly_as_in_the_service(
    session_factory: sessionmaker[Session],
) -> None:
    async def scenario() -> None:
        async with _workers(1) as processes:
            box = _verified(session_factory, processes)
            (worker,) = processes.workers
            assert worker.process.pid != os.getpid() and worker.process.is_alive()
            for name, arguments in _read_calls():
                here = box.dispatch_sync(name, arguments, "here")
                there = await box.run(name, arguments, tool_call_id="there")
                assert there == here, name
            assert len(worker.waiting) == 0
            # Requests from many calls at once share the worker and each gets its own answer.
            answers = await asyncio.gather(
                *(box.run(name, args, tool_call_id=name) for name, args in _read_calls())
            )
            assert answers == [box.dispatch_sync(n, a, "here") for n, a in _read_calls()]
        assert not worker.process.is_alive()

    asyncio.run(scenario())


def test_a_patient_without_a_nurse_is_assigned_one_by_the_service_not_the_worker(
    session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    """The worker only reads: it hands the assignment back, and the service writes it."""
    now = datetime.now(UTC)
    build_world(session_factory, now)
    with session_factory() as session:
        create_patient(
            session, actor=Actor.system(), now=now, first_name="Ann", last_name="Lee",
            date_of_birth=date(1970, 1, 2), phone="+12025550177", time_zone="America/New_York",
        )  # fmt: skip
        session.commit()

    async def scenario() -> tuple[dict[str, object], dict[str, object], int]:
        async with _workers(1) as processes:
            box = _toolbox(session_factory, "+12025550177", processes=processes)
            verified = await box.run(
                "verify_patient", {"date_of_birth": "1970-01-02"}, tool_call_id="v"
            )
            assert verified["verified"] is True
            (worker,) = processes.workers
            first = await box.run("get_assigned_nurse", {}, tool_call_id="first")
            second = await box.run("get_assigned_nurse", {}, tool_call_id="second")
            return first, second, worker._next_id

    with caplog.at_level(logging.WARNING):
        first, second, worker_requests = asyncio.run(scenario())
    assert first["newly_assigned"] is True and first["nurse_name"]
    assert {k: v for k, v in second.items() if k != "newly_assigned"} == {
        k: v for k, v in first.items() if k != "newly_assigned"
    }
    assert second["newly_assigned"] is False
    assert worker_requests == 2  # both asked the worker; the first came back for a write
    with session_factory() as session:
        assignments = session.scalars(
            select(PatientNurseAssignment).join(Patient).where(Patient.phone == "+12025550177")
        ).all()
    assert [a.source for a in assignments] == ["agent"]
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_killed_worker_costs_no_answer_and_is_replaced(
    session_factory: sessionmaker[Session],
) -> None:
    async def scenario() -> None:
        async with _workers(1) as processes:
            box = _verified(session_factory, processes)
            name, arguments = _read_calls()[0]
            expected = box.dispatch_sync(name, arguments, "here")
            (first,) = processes.workers
            os.kill(first.process.pid, signal.SIGKILL)
            for _ in range(200):  # the service notices when the socket closes
                if not first.alive:
                    break
                await asyncio.sleep(0.01)
            # The answer comes from a thread of the service while a new worker starts.
            assert await box.run(name, arguments, tool_call_id="after") == expected
            for _ in range(500):
                (current,) = processes.workers
                if current is not first and current.alive:
                    break
                await asyncio.sleep(0.01)
            assert current is not first and current.process.pid != first.process.pid
            assert await current.run(box.read_call(name, arguments, "new worker")) == expected

    asyncio.run(scenario())


def test_workers_warm_up_on_the_database_before_the_first_call(pg_url: str) -> None:
    """Each worker connects and runs the read tools once at start (no caller pays for it)."""
    engine = make_engine(pg_url)
    factory = make_session_factory(engine)
    build_world(factory, datetime.now(UTC))
    count = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")

    def connections() -> int:
        with factory() as session:
            return int(session.scalar(count) or 0)

    async def scenario() -> tuple[int, int]:
        before = connections()
        async with _workers(2, pg_url):
            return before, connections()

    try:
        before, after = asyncio.run(scenario())
    finally:
        engine.dispose()
    assert after == before + 2  # one pooled connection kept by each worker


def test_workers_start_quietly_on_an_empty_database(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With nobody to warm up on, the warm-up does nothing: no failure, workers running."""

    async def scenario() -> bool:
        async with _workers(1, sqlite_url) as processes:
            return all(worker.alive for worker in processes.workers)

    with caplog.at_level(logging.WARNING, logger="voice.tool_processes"):
        assert asyncio.run(scenario())
    assert not [r.getMessage() for r in caplog.records if r.name == "voice.tool_processes"]
