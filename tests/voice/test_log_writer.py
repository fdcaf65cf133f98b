"""The conversation-log writer: every line stored, lines sharing commits, a bad line alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine, create_engine, event, func, make_url, pool, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_session_factory, transaction
from core.models import Call, ConversationLog
from core.services import calls
from voice.log_writer import LogWriter, store_lines

NOW = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)


def _call(factory: sessionmaker[Session], sid: str = "CA" + "1" * 32) -> int:
    with transaction(factory) as session:
        call = calls.answer_call(
            session,
            call_sid=sid,
            from_number="+12025550101",
            to_number="+12025550100",
            outbound=False,
            now=NOW,
            stream_nonce="n",
        )
        return call.id


def _row(call_id: int, position: int) -> dict[str, object]:
    return calls.log_row(
        call_id=call_id, position=position, role="user", text=f"line {position}", now=NOW
    )


def _stored(factory: sessionmaker[Session]) -> list[int]:
    with factory() as session:
        return list(session.scalars(select(ConversationLog.position).order_by("position")))


def test_lines_from_many_threads_are_all_stored_sharing_commits(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    call_id = _call(session_factory)
    commits = 0

    def count(_: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(engine, "commit", count)
    writer = LogWriter(session_factory)
    futures: list[Future[None]] = []
    lock = threading.Lock()

    def speak(first: int) -> None:
        for position in range(first, first + 50):
            submitted = writer.submit(_row(call_id, position))
            with lock:
                futures.append(submitted)

    threads = [threading.Thread(target=speak, args=(n * 50,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done, _ = wait(futures, timeout=30)
    writer.stop()
    event.remove(engine, "commit", count)

    assert all(f.exception() is None for f in done) and len(done) == 400
    assert _stored(session_factory) == list(range(400))
    assert commits < 400  # lines waiting together went in together


def test_a_bad_line_fails_alone_and_the_rest_are_stored(
    session_factory: sessionmaker[Session],
) -> None:
    call_id = _call(session_factory)
    writer = LogWriter(session_factory)
    with transaction(session_factory) as session:
        # Hold the call row: the writer's first insert waits, the next lines queue behind it
        # and then go in as one batch, with the bad line among them.
        session.execute(select(Call.id).where(Call.id == call_id).with_for_update())
        first = writer.submit(_row(call_id, 0))
        time.sleep(0.2)
        rest = [writer.submit(_row(999_999, 1)), writer.submit(_row(call_id, 2))]  # no call 999999
        time.sleep(0.2)
    wait([first, *rest], timeout=30)
    writer.stop()

    assert [f.exception() is None for f in (first, *rest)] == [True, False, True]
    assert _stored(session_factory) == [0, 2]


def test_stop_stores_what_is_queued(session_factory: sessionmaker[Session]) -> None:
    call_id = _call(session_factory)
    writer = LogWriter(session_factory)
    for position in range(20):
        writer.submit(_row(call_id, position))
    writer.stop()
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(ConversationLog)) == 20


@contextmanager
def _refusing_connections(url: str) -> Iterator[None]:
    """PostgreSQL as during a restart: open connections cut, new ones refused, until exit."""
    target = make_url(url)
    admin = create_engine(
        target.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=pool.NullPool
    )
    name = target.database
    with admin.connect() as connection:
        connection.exec_driver_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        try:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            yield
        finally:
            connection.exec_driver_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    admin.dispose()


def test_lines_said_while_postgresql_is_away_are_stored_once_it_is_back(pg_url: str) -> None:
    engine = make_engine(pg_url)  # the product's pool: pre-ping, reconnects
    factory = make_session_factory(engine)
    call_id = _call(factory)
    writer = LogWriter(factory)
    impatient = LogWriter(factory, retry_delays=(0.05, 0.05))
    try:
        writer.submit(_row(call_id, 0)).result(10)  # the writer holds a pooled connection
        with _refusing_connections(pg_url):
            said = [writer.submit(_row(call_id, position)) for position in (1, 2, 3)]
            given_up = impatient.submit(_row(call_id, 9))
            wait([given_up], timeout=10)
            time.sleep(0.3)
            waiting = [f.done() for f in said]
        wait(said, timeout=30)
    finally:
        writer.stop()
        impatient.stop()
        engine.dispose()

    assert waiting == [False, False, False]  # kept trying while the database was away
    assert [f.exception() for f in said] == [None, None, None]
    assert isinstance(given_up.exception(), RuntimeError)  # a budget spent is a failure
    assert _stored(factory) == [0, 1, 2, 3]


def test_a_retry_stores_only_the_lines_not_stored_yet(
    session_factory: sessionmaker[Session],
) -> None:
    call_id = _call(session_factory)
    rows = [_row(call_id, position) for position in range(3)]
    store_lines(session_factory, rows[:2])  # a commit whose answer never arrived
    store_lines(session_factory, rows, skip_stored=True)
    store_lines(session_factory, rows, skip_stored=True)
    assert _stored(session_factory) == [0, 1, 2]
    store_lines(session_factory, rows[2:])  # without the check, a line goes in again
    assert _stored(session_factory) == [0, 1, 2, 2]
