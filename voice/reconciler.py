"""This instance's heartbeat, and the sweep that finalises calls nobody can finish any more."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from core.db import transaction
from core.logs import log_failure
from core.services import call_recovery

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0


class CallReconciler:
    """Registers the instance when serving starts (failing the calls its last run left open),
    then beats and sweeps on a timer until serving stops."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        instance: str,
        *,
        interval: float = HEARTBEAT_SECONDS,
        timings: call_recovery.RecoveryTimings | None = None,
    ) -> None:
        self.sessions = sessions
        self.instance = instance
        self.interval = interval
        self.timings = timings or call_recovery.RecoveryTimings()
        self._task: asyncio.Task[None] | None = None
        # Since when (monotonic) this instance has reached the database without a failure.
        self._reachable_since: float | None = None

    async def start(self) -> None:
        """Register this instance and close its predecessor's calls, then start the timer."""
        try:
            closed = await asyncio.to_thread(self._start_sync)
        except Exception:
            log_failure(logger, "could not register voice instance %s", self.instance)
        else:
            if closed:
                logger.warning("closed %d call(s) left open by the last run", len(closed))
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the timer and unregister (calls in flight have finished by now)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.to_thread(self._stop_sync)
        except Exception:
            log_failure(logger, "could not unregister voice instance %s", self.instance)

    async def sweep(self) -> list[int]:
        """Beat once and finalise the calls that can no longer finish; their ids."""
        try:
            return await asyncio.to_thread(self._sweep_sync)
        except Exception:
            self._reachable_since = None
            raise

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                closed = await self.sweep()
            except Exception:
                log_failure(logger, "call reconciliation failed; trying again")
                continue
            if closed:
                logger.warning("closed %d call(s) that could no longer finish", len(closed))

    def _start_sync(self) -> list[int]:
        with transaction(self.sessions) as session:
            closed = call_recovery.start_instance(session, self.instance, now=datetime.now(UTC))
        self._reachable_since = time.monotonic()
        return closed

    def _sweep_sync(self) -> list[int]:
        now = datetime.now(UTC)
        with transaction(self.sessions) as session:
            call_recovery.heartbeat(session, self.instance, now=now)
        if self._reachable_since is None:
            self._reachable_since = time.monotonic()
        # Other instances are judged only once they have had as long to beat as we have been
        # beating: after a database outage, everyone's heartbeat is old at first.
        settled = (
            time.monotonic() - self._reachable_since >= self.timings.instance_silent.total_seconds()
        )
        with transaction(self.sessions) as session:
            return call_recovery.reconcile(
                session, now=now, timings=self.timings, judge_instances=settled
            )

    def _stop_sync(self) -> None:
        with transaction(self.sessions) as session:
            call_recovery.stop_instance(session, self.instance)
