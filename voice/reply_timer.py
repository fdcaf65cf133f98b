"""How long the caller waits for the agent: end of their speech to the agent's first audio."""

from __future__ import annotations

import time
from collections.abc import Callable

from core.metrics import AGENT_RESPONSE_SECONDS


class ReplyTimer:
    """Times each turn from the model's end-of-speech event to the first audio we relay."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._stopped_at: float | None = None

    def caller_stopped(self) -> None:
        """The model heard the caller stop speaking (server VAD's speech_stopped)."""
        self._stopped_at = self._clock()

    def agent_spoke(self) -> float | None:
        """Audio went to the caller; the wait it ended, once per turn (None if not waiting)."""
        if self._stopped_at is None:
            return None
        waited = self._clock() - self._stopped_at
        self._stopped_at = None
        AGENT_RESPONSE_SECONDS.observe(waited)
        return waited
