"""Draining on deploy: take no new calls, let the calls in flight finish, end the rest politely.

On SIGTERM (voice.server) the instance's health turns to "draining", so a proxy sends new calls
to other instances, and a webhook that still arrives is redirected back through the public
address. Calls in flight carry on for up to VOICE_DRAIN_SECONDS; any still going then are wound
down: a callback is recorded, the agent says so and goodbye, and the call hangs up once that has
played. Only then does the server shut down, so every call row is final and nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Iterator
from typing import Protocol

logger = logging.getLogger(__name__)

# Long enough for the goodbye to be said and played, and for the hang-up the deadline forces
# (voice.call_actions.ACTION_DEADLINE_SECONDS) if Twilio never confirms it.
GOODBYE_SECONDS = 25.0


class DrainState(enum.Enum):
    """Where the instance is between serving and shutting down."""

    SERVING = "serving"
    DRAINING = "draining"  # no new calls; calls in flight carry on
    WINDING_DOWN = "winding_down"  # the calls still going are being ended politely
    DRAINED = "drained"  # every call has ended (or the last wait ran out)


class LiveCall(Protocol):
    """A call in flight, as the drain sees it."""

    async def wind_down(self) -> None:
        """End the call politely."""


class Drain:
    """The calls in flight on this instance, and its drain when asked to stop."""

    def __init__(self, grace_seconds: float, goodbye_seconds: float = GOODBYE_SECONDS) -> None:
        self.grace_seconds = grace_seconds
        self.goodbye_seconds = goodbye_seconds
        self.state = DrainState.SERVING
        self.calls: set[LiveCall] = set()
        self._changed = asyncio.Event()

    @property
    def draining(self) -> bool:
        """True once the instance takes no new calls."""
        return self.state is not DrainState.SERVING

    @contextlib.contextmanager
    def live(self, call: LiveCall) -> Iterator[None]:
        """Count `call` as in flight while the block runs."""
        self.calls.add(call)
        try:
            yield
        finally:
            self.calls.discard(call)
            self._changed.set()

    async def run(self) -> None:
        """Drain: wait for the calls in flight, then wind down the ones still going."""
        self.state = DrainState.DRAINING
        logger.info(
            "draining: %d calls in flight, up to %.0f s", len(self.calls), self.grace_seconds
        )
        await self._until_no_calls(self.grace_seconds)
        if self.calls:
            self.state = DrainState.WINDING_DOWN
            logger.info("draining: winding down %d calls", len(self.calls))
            results = await asyncio.gather(
                *(call.wind_down() for call in list(self.calls)), return_exceptions=True
            )
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                logger.error("draining: %d calls could not be wound down", len(failed))
            await self._until_no_calls(self.goodbye_seconds)
        self.state = DrainState.DRAINED
        logger.info("drained: %d calls still open", len(self.calls))

    async def _until_no_calls(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.calls and (remaining := deadline - time.monotonic()) > 0:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
