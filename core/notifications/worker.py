"""The delivery worker process: `python -m core.notifications.worker`.

Each pass queues due reminders and nurse agendas, lapses expired waitlist holds and forgets
day-old API answers kept under idempotency keys (idempotent sweeps), flags dead leases, then
claims and sends a batch. SIGTERM or SIGINT finishes the current batch and exits cleanly.
"""

from __future__ import annotations

import logging
import logging.config
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType

from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.db import make_engine, make_session_factory, transaction
from core.logging_setup import logging_config
from core.logs import log_failure
from core.notifications.delivery import RunReport, new_worker_id, run_once
from core.notifications.providers import Provider, providers_from_settings
from core.notifications.reminders import queue_daily_agendas, queue_upcoming_reminders
from core.notifications.settings import NotifySettings
from core.services.api_idempotency import forget_old_answers
from core.services.waitlist import lapse_expired

log = logging.getLogger("core.notifications.worker")

SWEEP_EVERY = timedelta(minutes=1)


def utcnow() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


class Worker:
    """A polling delivery loop that stops between batches when asked to."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        providers: dict[str, Provider],
        config: NotifySettings,
        *,
        clock: Callable[[], datetime] = utcnow,
        worker_id: str | None = None,
    ) -> None:
        self.factory = factory
        self.providers = providers
        self.config = config
        self.clock = clock
        self.worker_id = worker_id or new_worker_id()
        self._stopping = threading.Event()
        self._last_sweep: datetime | None = None

    def stop(self) -> None:
        """Ask the loop to exit after the current batch."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Whether stop() was called."""
        return self._stopping.is_set()

    def sweep(self, now: datetime) -> None:
        """Queue reminders and agendas that have come due, pass lapsed waitlist holds to the
        next in line, and forget day-old API answers (at most once a minute)."""
        if self._last_sweep is not None and now - self._last_sweep < SWEEP_EVERY:
            return
        with transaction(self.factory) as session:
            reminders = queue_upcoming_reminders(session, now)
            agendas = queue_daily_agendas(session, now, agenda_time=self.config.agenda_time)
        if reminders or agendas:
            log.info("queued %s reminders and %s agendas", reminders, len(agendas))
        # Its own transaction: a hold that cannot be passed on never holds up the reminders.
        with transaction(self.factory) as session:
            lapsed, expired = lapse_expired(session, now)
        if lapsed or expired:
            log.info("waitlist: %s holds lapsed, %s entries expired", lapsed, expired)
        with transaction(self.factory) as session:
            forgotten = forget_old_answers(session, now)
        if forgotten:
            log.info("forgot %s API answers kept under idempotency keys", forgotten)
        self._last_sweep = now

    def tick(self) -> RunReport:
        """One pass: sweep, then deliver one batch."""
        now = self.clock()
        self.sweep(now)
        return run_once(
            self.factory, now, self.providers, config=self.config, worker_id=self.worker_id
        )

    def run(self) -> None:
        """Loop until stopped; a failing pass is logged and retried after the poll interval."""
        log.info("notification worker %s started", self.worker_id)
        while not self.stopping:
            try:
                report = self.tick()
            except Exception:
                log_failure(log, "notification worker pass failed; retrying")
                self._stopping.wait(self.config.poll_seconds)
                continue
            if report.claimed < self.config.batch_size:
                self._stopping.wait(self.config.poll_seconds)
        log.info("notification worker %s stopped", self.worker_id)


def main() -> int:
    """Entry point of the worker process."""
    # Our format (LOG_FORMAT), with httpx's request URLs (phone numbers) held back.
    logging.config.dictConfig(logging_config())
    settings = Settings.from_env()
    config = NotifySettings.from_env(settings)
    engine = make_engine(settings.database_url)
    providers = providers_from_settings(config)
    worker = Worker(make_session_factory(engine), providers, config)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s received: finishing the current batch", signum)
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        worker.run()
    finally:
        for provider in providers.values():
            close = getattr(provider, "close", None)
            if callable(close):
                close()
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
