"""The conversation-log writer: every line stored, lines sharing commits, a bad line alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, wait
from datetime import UTC, datetime

from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.db import transaction
from core.models import Call, ConversationLog
from core.services import calls
from voice.log_writer import LogWriter

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
