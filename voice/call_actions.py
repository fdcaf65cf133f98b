"""What the service asks Twilio to do to a live call: transfer it, hang it up.

A transfer or hang-up the agent arranged (end_call, transfer_to_staff) waits until its last
words have played, so the caller hears the goodbye; a deadline acts anyway if Twilio never
confirms them. The REST calls block, so they run in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from core.config import Settings
from core.logs import log_failure
from voice.call_state import CallLifecycle, CallState
from voice.prompts import SORRY_CALLBACK, SORRY_TRANSFER
from voice.tools import PendingAction, ToolBox
from voice.twilio_rest import TwilioRest

logger = logging.getLogger(__name__)

# After end_call or a transfer, act at the latest this long after the tool ran.
ACTION_DEADLINE_SECONDS = 20.0


class CallActions:
    """Transfers and hang-ups of one call, through Twilio's REST API."""

    def __init__(
        self,
        *,
        settings: Settings,
        rest: TwilioRest,
        toolbox: ToolBox,
        lifecycle: CallLifecycle,
        end_stream: asyncio.Event,
        simulated: bool,
        spawn: Callable[[Awaitable[Any]], None],
    ) -> None:
        self.settings = settings
        self.rest = rest
        self.tools = toolbox
        self.lifecycle = lifecycle
        # Set to end the media stream ourselves (Twilio then moves past <Connect>: the call ends).
        self.end_stream = end_stream
        self.simulated = simulated
        self.call_id = toolbox.context.call_id
        self.call_sid = toolbox.context.call_sid
        self.spawn = spawn  # runs a coroutine as one of the call's tasks
        self._deadline: asyncio.Future[None] | None = None

    def run_pending_when_heard(self, *, busy: bool) -> None:
        """Start the agent's pending action unless the agent is `busy` (talking, or heard yet)."""
        action = self.tools.pending_action
        if action is None or busy or not self.lifecycle.move_if_allowed(CallState.HANDING_OVER):
            return
        self.spawn(self._run(action))

    async def start(self, action: PendingAction) -> None:
        """Start `action` now (nothing if one has started or the call is closing)."""
        if self.lifecycle.move_if_allowed(CallState.HANDING_OVER):
            await self._run(action)

    def watch_deadline(self) -> None:
        """A pending action exists: make sure it happens even if Twilio never echoes the marks."""
        if self.tools.pending_action is not None and self._deadline is None:
            self._deadline = asyncio.ensure_future(self._act_at_deadline())

    async def _act_at_deadline(self) -> None:
        await asyncio.sleep(ACTION_DEADLINE_SECONDS)
        action = self.tools.pending_action
        if action is not None and self.lifecycle.move_if_allowed(CallState.HANDING_OVER):
            logger.info("call %s: %s forced after the deadline", self.call_id, action.kind)
            await self._run(action)

    async def _run(self, action: PendingAction) -> None:
        if self.simulated:
            # No telephone network behind a simulated call: ending the stream is the hang-up.
            logger.info("call %s: simulated %s", self.call_id, action.kind)
            self.end_stream.set()
            return
        try:
            if action.kind == "transfer":
                await asyncio.to_thread(self.rest.transfer, self.call_sid, action.number)
            else:
                await asyncio.to_thread(self.rest.hang_up, self.call_sid)
            logger.info("call %s: %s requested", self.call_id, action.kind)
        except Exception:
            log_failure(logger, "call %s: Twilio %s failed", self.call_id, action.kind)
            self.end_stream.set()

    async def hand_over_without_model(self) -> None:
        """The model is gone for good: hand the caller to a person (or record a callback)."""
        try:
            result = await asyncio.to_thread(self.tools.transfer, "voice agent connection lost")
            if self.simulated:
                return
            if "transferring" in result:
                await asyncio.to_thread(
                    self.rest.transfer,
                    self.call_sid,
                    self.settings.staff_phone_number,
                    say=SORRY_TRANSFER,
                )
            else:
                await asyncio.to_thread(self.rest.say_and_hang_up, self.call_sid, SORRY_CALLBACK)
        except Exception:
            log_failure(logger, "call %s: could not hand over after losing the model", self.call_id)

    def stop_deadline(self) -> None:
        """The call is closing: no action will be forced any more."""
        if self._deadline is not None:
            self._deadline.cancel()
