"""The model side of one call: its OpenAI Realtime socket, opened, configured, replaced, closed.

The socket itself is voice.model_connection's (aiohttp's public WebSocket client). This part
opens it (or takes the one pre-opened while /incoming-call was answered), sends the call's
`session.update`, replaces it by a fresh session told the conversation so far (once after a
drop; and periodically, before the provider's session limit), and closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from core.config import Settings
from core.models import LogRole
from voice import protocol
from voice.model_connection import (
    MODEL_CLOSE_TIMEOUT_SECONDS,
    ModelConnection,
    PreopenedModel,
    close_model,
)
from voice.prompts import resumed_note, session_update_text
from voice.transcript import Turn

logger = logging.getLogger(__name__)

# Realtime sessions are capped at 60 minutes; recycle well before.
MODEL_RECYCLE_SECONDS = 55 * 60
# A recycle waits this long at most (in steps of RECYCLE_POLL_SECONDS) for a pause between turns.
RECYCLE_POLL_SECONDS = 0.1
RECYCLE_POLLS = 300

Connect = Callable[[Settings], Awaitable[ModelConnection]]


@dataclass
class Replacement:
    """A fresh model session swapped in, and the old one still to be closed."""

    replayed: set[str]  # the function calls (with outputs) the fresh session was told
    old: ModelConnection | None


def replay_events(turn: Turn, heard_share: float | None) -> list[dict[str, Any]]:
    """The items that tell a fresh session about one turn (none for an unheard answer)."""
    if turn.role == LogRole.TOOL:
        if turn.result is None:
            return []  # still running: its output brings the call along (voice.tool_runner)
        return [
            protocol.function_call_item(turn.call_id, turn.name, turn.arguments),
            protocol.function_output(turn.call_id, turn.result),
        ]
    text = turn.text
    if turn.role == LogRole.ASSISTANT and heard_share is not None:
        # The old session kept only the heard audio of a truncated answer: so does this.
        text = protocol.heard_part(text, heard_share)
    return [protocol.text_message(turn.role, text)] if text else []


class ModelLink:
    """One call's model socket (at most one at a time) and how it is replaced."""

    def __init__(
        self,
        *,
        settings: Settings,
        call_id: int,
        direction: str,
        connect: Connect,
        preopened: asyncio.Task[PreopenedModel] | None = None,
    ) -> None:
        self.settings = settings
        self.call_id = call_id
        self.direction = direction
        self.connect = connect
        self.preopened = preopened
        self.model: ModelConnection | None = None
        self.replaced_after_drop = False  # a call gets one fresh session after a drop

    def session_update(self) -> str:
        """This call's session.update, as sent on the socket."""
        return session_update_text(self.settings, self.direction)

    async def open(self) -> None:
        """Open (or take the pre-opened) socket and configure it for this call."""
        preopened, self.preopened = self.preopened, None
        ready: PreopenedModel | None = None
        if preopened is not None:
            try:
                ready = await preopened
            except Exception as exc:  # fall back to connecting now
                logger.info(
                    "call %s: pre-opened model socket failed (%s)", self.call_id, type(exc).__name__
                )
        self.model = ready.connection if ready else await self.connect(self.settings)
        update = self.session_update()
        if ready is None or ready.session_update != update:
            # Not configured while the webhook ran (or not as this call needs): the greeting
            # waits for this round trip. Otherwise its session.updated is already on its way,
            # queued on the socket until the pump reads it.
            await self.model.send_raw(update)

    async def send(self, event: dict[str, Any]) -> None:
        """Send one event (dropped when there is no socket; a failure is only logged)."""
        model = self.model
        if model is None:
            return
        try:
            await model.send_raw(json.dumps(event))
        except Exception as exc:
            logger.info("call %s: model send failed (%s)", self.call_id, type(exc).__name__)

    async def send_audio(self, payload: str) -> None:
        """Relay one frame of the caller's audio."""
        model = self.model
        if model is None:
            return
        # A failed send means the model dropped: the pump reading it notices and reconnects.
        with contextlib.suppress(Exception):
            await model.send_raw(protocol.audio_append(payload))

    async def replace(
        self, turns: list[Turn], heard_share: Callable[[str], float | None], *, verified: bool
    ) -> Replacement | None:
        """Open a fresh session, tell it the conversation, and swap it in (None if that failed).

        The old socket stays open (see `retire`) so that outputs of tools that finished
        meanwhile can go to the fresh one first.
        """
        new: ModelConnection | None = None
        try:
            new = await self.connect(self.settings)
            await new.send_raw(self.session_update())
            replayed: set[str] = set()
            for turn in turns:
                for event in replay_events(turn, heard_share(turn.item_id)):
                    await new.send_raw(json.dumps(event))
                if turn.role == LogRole.TOOL and turn.result is not None:
                    replayed.add(turn.call_id)
            note = resumed_note(verified=verified)
            await new.send_raw(json.dumps(protocol.text_message("system", note)))
        except asyncio.CancelledError:
            # The call ended during the replay: the fresh socket must not outlive it.
            await self.retire(new)
            raise
        except Exception as exc:
            logger.error("call %s: model reconnect failed (%s)", self.call_id, type(exc).__name__)
            await self.retire(new)
            return None
        old, self.model = self.model, new
        return Replacement(replayed, old)

    @staticmethod
    async def retire(old: ModelConnection | None) -> None:
        """Close a replaced socket (without waiting long)."""
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.close(), MODEL_CLOSE_TIMEOUT_SECONDS)

    async def close(self) -> None:
        """Close the socket, waiting at most MODEL_CLOSE_TIMEOUT_SECONDS."""
        model, self.model = self.model, None
        if model is None:
            return
        if not await close_model(model):
            logger.info("call %s: model socket did not close cleanly", self.call_id)


async def recycle_periodically(
    every: float,
    *,
    between_turns: Callable[[], bool],
    closing: Callable[[], bool],
    recycle: Callable[[], Awaitable[bool]],
    call_id: int,
) -> None:
    """Swap in a fresh model session every `every` seconds (the provider closes it at 60 min)."""
    while not closing():
        await asyncio.sleep(every)
        # Between turns, so no answer is cut off: nothing playing, generating or running.
        for _ in range(RECYCLE_POLLS):
            if between_turns():
                break
            await asyncio.sleep(RECYCLE_POLL_SECONDS)
        if closing():
            return
        if await recycle():
            logger.info("call %s: model session recycled", call_id)
