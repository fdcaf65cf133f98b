"""Group commit for conversation lines: every line waiting is stored in one transaction.

Each call stores its transcript lines and tool calls as they complete. With a transaction per
line, 100 concurrent calls mean well over a hundred commits a second, each queueing for the
database's write lock and each paying the ORM's per-transaction cost. One writer thread takes
whatever lines are waiting when it is free, inserts them with one statement and commits: a
lone line is written at once (there is no timer), and under load lines share commits. A line is
durable milliseconds after it is said, and the dashboard's live view sees it then.

When the database is briefly unavailable (a restart, a failover, a dropped connection), the
writer keeps trying for about half a minute, while new lines wait behind, instead of losing
what was said in the meantime.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.db import (
    RETRY_DELAYS_SECONDS,
    connection_transaction,
    retry_transient,
    transient_failure,
)
from core.logs import log_failure
from core.services import calls

logger = logging.getLogger(__name__)

MAX_LINES_PER_COMMIT = 500

_STOP = object()


def store_lines(
    sessions: sessionmaker[Session], rows: list[dict[str, Any]], *, skip_stored: bool = False
) -> None:
    """Store conversation lines now, in one transaction (blocking; see `append_logs`)."""
    with connection_transaction(sessions) as connection:
        calls.append_logs(connection, rows, skip_stored=skip_stored)


class LogWriter:
    """A thread storing conversation lines (rows built by `core.services.calls.log_row`)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        retry_delays: tuple[float, ...] = RETRY_DELAYS_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.retry_delays = retry_delays
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="conversation-log", daemon=True)
        self._thread.start()

    def submit(self, row: dict[str, Any]) -> Future[None]:
        """Queue one line; the future resolves once it is committed (or fails)."""
        done: Future[None] = Future()
        self._queue.put((row, done))
        return done

    def stop(self, timeout: float = 10) -> None:
        """Store what is queued, then end the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stopping = False
            while len(batch) < MAX_LINES_PER_COMMIT:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)
            if stopping:
                return

    def _write(self, batch: list[tuple[dict[str, Any], Future[None]]]) -> None:
        rows = [row for row, _ in batch]
        try:
            retry_transient(
                lambda attempt: store_lines(self.sessions, rows, skip_stored=attempt > 0),
                self.retry_delays,
                on_retry=_database_unavailable,
            )
        except Exception as error:
            if len(batch) == 1 or transient_failure(error):
                log_failure(logger, "could not store %d conversation line(s)", len(batch))
                for _, done in batch:
                    done.set_exception(RuntimeError("conversation line not stored"))
                return
            # One bad line must not cost the others theirs: store them one at a time.
            for line in batch:
                self._write([line])
            return
        for _, done in batch:
            done.set_result(None)


def _database_unavailable(error: BaseException) -> None:
    logger.warning("conversation lines wait for the database (%s)", type(error).__name__)
