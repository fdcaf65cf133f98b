"""The agent's turns: running its tool calls and asking for its answer once they are done.

The model calls a tool (`response.function_call_arguments.done`); the tool runs off the event
loop (voice.tools.ToolBox), its output goes back to the model, and only when no tool is still
running and no answer is being generated is the model asked to answer (`response.create`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from core.metrics import TOOL_SECONDS
from voice import protocol
from voice.protocol import ProtocolError
from voice.tools import TOOLS, ToolBox
from voice.transcript import TranscriptWriter

logger = logging.getLogger(__name__)

SendEvent = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class ResponseTurn:
    """Whether the model is answering, and whether it should once it may."""

    active: bool = False  # response.create sent or response.created seen, not yet done
    current: str | None = None  # the id of the latest response.created
    needed: bool = False
    instructions: str | None = None  # for the next response.create only

    @property
    def generating(self) -> str | None:
        """The response the model is still producing (None when it is not answering)."""
        return self.current if self.active else None


class ToolRunner:
    """Runs one call's tool calls and asks for the model's answer when the turn allows it."""

    def __init__(
        self,
        *,
        toolbox: ToolBox,
        transcript: TranscriptWriter,
        send: SendEvent,
        model_listening: Callable[[], bool],
        spawn: Callable[[Awaitable[Any]], None],
        after_tool: Callable[[], None],
    ) -> None:
        self.tools = toolbox
        self.transcript = transcript
        self.send = send
        # Whether outputs can go to the model (there is a socket, and the call is not closing).
        self.model_listening = model_listening
        self.spawn = spawn
        # Called after each tool finishes (a pending hang-up or transfer may now start).
        self.after_tool = after_tool
        self.turn = ResponseTurn()
        self.running = 0
        self.in_model: set[str] = set()  # function calls the current model session knows

    @property
    def busy(self) -> bool:
        """The agent is answering, about to, or waiting on a tool."""
        return self.turn.active or self.turn.needed or self.running > 0

    def start(self, event: dict[str, Any]) -> None:
        """The model called a tool: run it in the background."""
        call_id = str(event.get("call_id") or "")
        name = str(event.get("name") or "")
        raw = event.get("arguments")
        position = self.transcript.tool_called(event.get("item_id") or "", call_id, name, raw)
        try:
            arguments: dict[str, Any] | None = protocol.function_arguments(raw)
        except ProtocolError:
            arguments = None
        self.in_model.add(call_id)
        self.running += 1
        self.spawn(self._run(call_id, name, arguments, position))

    async def _run(
        self, call_id: str, name: str, arguments: dict[str, Any] | None, position: int
    ) -> None:
        try:
            if arguments is None:
                result: dict[str, Any] = {
                    "error": "invalid_argument",
                    "message": "The arguments were not a JSON object.",
                }
            else:
                began = time.monotonic()
                result = await self.tools.run(name, arguments, tool_call_id=call_id)
                # The model names the tool: only the product's own names become labels.
                label = name if name in TOOLS else "unknown"
                TOOL_SECONDS.labels(tool=label).observe(time.monotonic() - began)
            logger.info(
                "call %s: tool %s -> %s", self.transcript.call_id, name, result.get("error", "ok")
            )
            turn = self.transcript.history.get(position)
            if turn is not None:
                turn.result = result
            if self.model_listening():
                if call_id not in self.in_model and turn is not None:
                    # The session was replaced while the tool ran: it has never seen the call.
                    await self.send(protocol.function_call_item(call_id, name, turn.arguments))
                    self.in_model.add(call_id)
                await self.send(protocol.function_output(call_id, result))
                if name != "end_call":
                    self.turn.needed = True
            # Logged once the model has its answer: whatever the tool changed is already
            # committed, and the caller should not wait on a second write.
            self.transcript.log(
                self.tools.log_row(name, arguments or {}, call_id, position, result)
            )
        finally:
            self.running -= 1
        await self.maybe_answer()
        self.after_tool()

    async def ask(self, instructions: str | None = None) -> None:
        """Have the model answer (with one-off `instructions`) once any answer under way is done."""
        self.turn.instructions = instructions
        self.turn.needed = True
        await self.maybe_answer()

    async def maybe_answer(self) -> None:
        """Send response.create if an answer is needed and nothing stands in its way."""
        turn = self.turn
        if turn.needed and not turn.active and self.running == 0:
            turn.needed = False
            turn.active = True  # until response.created/done say otherwise
            instructions, turn.instructions = turn.instructions, None
            await self.send(protocol.response_create(instructions))

    def response_created(self, response_id: str | None) -> None:
        """The model started an answer."""
        self.turn.active = True
        self.turn.current = response_id

    def response_done(self) -> None:
        """The model finished (or cancelled) its answer."""
        self.turn.active = False

    def new_model_session(self, replayed: set[str]) -> None:
        """A fresh model session knows the `replayed` calls and is not answering."""
        self.in_model = replayed
        self.turn.active = False
