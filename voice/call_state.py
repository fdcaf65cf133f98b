"""The states of one call and the moves allowed between them.

A call opens its model socket, greets, converses (the model socket may be replaced once on
loss), may be handed over (transfer or hang-up) or lose its model for good, then closes.
Whether the agent is speaking or a tool is running is not a call state but a turn's: see
voice.tool_runner.ResponseTurn and voice.playout.
"""

from __future__ import annotations

import logging
from enum import StrEnum

logger = logging.getLogger(__name__)


class CallState(StrEnum):
    """Where one call is in its life."""

    CONNECTING = "connecting"  # opening and configuring the model socket
    GREETING = "greeting"  # configured: the greeting goes once the model confirms it
    CONVERSING = "conversing"  # the agent and the caller talk, tools run
    RECONNECTING = "reconnecting"  # the socket dropped: a fresh one is being told the call
    HANDING_OVER = "handing_over"  # a transfer or hang-up has been asked of Twilio
    MODEL_LOST = "model_lost"  # no model for good: the caller goes to staff
    CLOSING = "closing"  # the stream ended: sockets closing, last lines being stored
    ENDED = "ended"  # the transcript is assembled


ALLOWED_MOVES: dict[CallState, frozenset[CallState]] = {
    CallState.CONNECTING: frozenset({CallState.GREETING, CallState.MODEL_LOST, CallState.CLOSING}),
    CallState.GREETING: frozenset(
        {
            CallState.CONVERSING,
            CallState.RECONNECTING,
            CallState.HANDING_OVER,
            CallState.MODEL_LOST,
            CallState.CLOSING,
        }
    ),
    CallState.CONVERSING: frozenset(
        {CallState.RECONNECTING, CallState.HANDING_OVER, CallState.MODEL_LOST, CallState.CLOSING}
    ),
    CallState.RECONNECTING: frozenset(
        {CallState.CONVERSING, CallState.HANDING_OVER, CallState.MODEL_LOST, CallState.CLOSING}
    ),
    CallState.HANDING_OVER: frozenset({CallState.CLOSING}),
    CallState.MODEL_LOST: frozenset({CallState.CLOSING}),
    CallState.CLOSING: frozenset({CallState.ENDED}),
    CallState.ENDED: frozenset(),
}

# The model hears the caller in these states (in the others there is no socket to hear them,
# or a fresh one is still being told the conversation).
HEARING_STATES = frozenset({CallState.GREETING, CallState.CONVERSING, CallState.HANDING_OVER})


class IllegalMove(RuntimeError):
    """A move the call's state table does not allow (a bug in the orchestrator)."""


class CallLifecycle:
    """The state of one call; refuses the moves ALLOWED_MOVES does not list."""

    def __init__(self, call_id: int | str) -> None:
        self.call_id = call_id
        self.state = CallState.CONNECTING

    def can_move(self, to: CallState) -> bool:
        """Whether the call may move to `to` from where it is."""
        return to in ALLOWED_MOVES[self.state]

    def move(self, to: CallState) -> None:
        """Move to `to`; IllegalMove (and nothing changed) if the table does not allow it."""
        if not self.can_move(to):
            raise IllegalMove(f"call {self.call_id}: {self.state} -> {to} is not allowed")
        logger.debug("call %s: %s -> %s", self.call_id, self.state, to)
        self.state = to

    def move_if_allowed(self, to: CallState) -> bool:
        """Move to `to` when allowed (for moves that race with the call's end); False if not."""
        if not self.can_move(to):
            return False
        self.move(to)
        return True

    @property
    def closing(self) -> bool:
        """The stream has ended (or the call has finished)."""
        return self.state in (CallState.CLOSING, CallState.ENDED)

    @property
    def hearing(self) -> bool:
        """The model is listening to the caller."""
        return self.state in HEARING_STATES

    @property
    def handing_over(self) -> bool:
        """A transfer or hang-up has started."""
        return self.state is CallState.HANDING_OVER
