"""One live call: the Twilio media stream bridged to an OpenAI Realtime session.

`CallSession` orchestrates a call's parts, one job each; nothing here is shared between calls:

- voice.call_state: the call's state (CallLifecycle), and the moves allowed between states;
- voice.model_link: the model socket (open, configure, replace and replay, recycle, close);
- voice.playout: what was sent to Twilio and heard by the caller, what to cut on barge-in;
- voice.transcript: the conversation in order, each line stored as it completes;
- voice.tool_runner: the agent's tool calls, and asking for its answer when they are done;
- voice.call_actions: transfers and hang-ups through Twilio's REST API;
- voice.prompts: what the agent is told.

This module reads both sockets and routes each event to the part whose job it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.logging_setup import CURRENT_CALL_ID
from core.metrics import MODEL_RECONNECTS
from core.models import LogRole
from voice import protocol
from voice.call_actions import CallActions
from voice.call_state import CallLifecycle, CallState
from voice.log_writer import LogWriter
from voice.model_connection import PreopenedModel, connect_model
from voice.model_link import (
    MODEL_RECYCLE_SECONDS,
    Connect,
    ModelLink,
    recycle_periodically,
    replay_events,
)
from voice.playout import PlayoutTracker
from voice.prompts import TELL_CALLBACK, WIND_DOWN
from voice.protocol import Dtmf, Mark, Media, ProtocolError, Stop
from voice.reply_timer import ReplyTimer
from voice.tool_runner import ToolRunner
from voice.tools import PendingAction, ToolBox
from voice.transcript import TranscriptWriter
from voice.twilio_rest import TwilioRest

__all__ = ["MODEL_RECYCLE_SECONDS", "CallSession", "TwilioSocket"]

logger = logging.getLogger(__name__)

MAX_BAD_FRAMES = 20
# A finished call waits this long for its tools and Twilio actions before storing its end.
TASKS_WAIT_SECONDS = 5
NON_FATAL_ERRORS = frozenset(
    {"conversation_already_has_active_response", "response_cancel_not_active"}
)


class TwilioSocket(Protocol):
    """The Twilio side of the bridge (voice.media.TwilioStream)."""

    async def send(self, data: str) -> None: ...
    async def receive(self) -> str | bytes: ...


class CallSession:
    """Bridges one call: relays audio both ways, and hands each event to the part it concerns."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: sessionmaker[Session],
        twilio: TwilioSocket,
        stream_sid: str,
        toolbox: ToolBox,
        rest: TwilioRest,
        connect: Connect = connect_model,
        preopened: asyncio.Task[PreopenedModel] | None = None,
        recycle_after: float | None = MODEL_RECYCLE_SECONDS,
        simulated: bool = False,
        finishing: set[asyncio.Task[None]] | None = None,
        log_writer: LogWriter | None = None,
    ) -> None:
        self.settings = settings
        self.twilio = twilio
        self.stream_sid = stream_sid
        self.tools = toolbox
        self.recycle_after = recycle_after
        # Where this call's closing bookkeeping registers, so a stopping server can wait for it.
        self.finishing = finishing if finishing is not None else set()
        self.call_id = toolbox.context.call_id
        self.lifecycle = CallLifecycle(self.call_id)
        self.ended = asyncio.Event()  # set to end the stream from our side
        self._tasks: set[asyncio.Task[Any]] = set()
        self.link = ModelLink(
            settings=settings,
            call_id=self.call_id,
            direction=toolbox.context.direction,
            connect=connect,
            preopened=preopened,
        )
        self.playout = PlayoutTracker()
        self.reply_timer = ReplyTimer()
        self.transcript = TranscriptWriter(self.call_id, sessions, log_writer)
        self.runner = ToolRunner(
            toolbox=toolbox,
            transcript=self.transcript,
            send=self.link.send,
            model_listening=self._model_listening,
            spawn=self._spawn,
            after_tool=self._after_tool,
        )
        self.actions = CallActions(
            settings=settings,
            rest=rest,
            toolbox=toolbox,
            lifecycle=self.lifecycle,
            end_stream=self.ended,
            simulated=simulated,
            spawn=self._spawn,
        )
        self.keypresses = 0
        self.keypad_transfer: asyncio.Task[None] | None = None
        self.bad_frames = 0

    # ------------------------------------------------------------ lifecycle

    @property
    def state(self) -> CallState:
        """Where the call is in its life."""
        return self.lifecycle.state

    async def run(self) -> None:
        """Bridge until the stream stops (or the Twilio socket goes), then close everything."""
        try:
            try:
                await self.link.open()
            except Exception as exc:
                logger.error(
                    "call %s: model connection failed (%s)", self.call_id, type(exc).__name__
                )
                await self._model_lost()
                return
            self.lifecycle.move(CallState.GREETING)
            twilio_task = asyncio.create_task(self._pump_twilio())
            model_task = asyncio.create_task(self._pump_model())
            ended_task = asyncio.create_task(self.ended.wait())
            tasks = [twilio_task, model_task, ended_task]
            if self.recycle_after:
                tasks.append(asyncio.create_task(self._recycle_periodically(self.recycle_after)))
            try:
                await asyncio.wait(
                    {twilio_task, model_task, ended_task}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                self.lifecycle.move_if_allowed(CallState.CLOSING)
                for task in tasks:
                    task.cancel()
                await self.link.close()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self.lifecycle.move_if_allowed(CallState.CLOSING)
            # Shielded: a cancelled connection (server shutdown) must not lose the transcript.
            finish = asyncio.ensure_future(self._finish())
            self.finishing.add(finish)
            finish.add_done_callback(self.finishing.discard)
            await asyncio.shield(finish)

    async def _finish(self) -> None:
        self.actions.stop_deadline()
        self.transcript.keep_cut_off_answers()  # the caller hung up mid-answer
        pending = list(self._tasks)
        if pending:
            await asyncio.wait(pending, timeout=TASKS_WAIT_SECONDS)
        await self.transcript.assemble()
        self.lifecycle.move(CallState.ENDED)

    def _model_listening(self) -> bool:
        return self.link.model is not None and not self.lifecycle.closing

    async def _replace_model(self, *, prompt: bool) -> bool:
        """Swap in a fresh model session told the conversation so far; False if that failed.

        Used once after the socket drops (then the agent speaks again at once) and to recycle
        the session before the provider's time limit (then it waits for the caller).
        """
        self.transcript.keep_cut_off_answers()  # an answer the drop cut off is in the call
        replacement = await self.link.replace(
            self.transcript.turns(), self.playout.heard_share, verified=self.tools.verified
        )
        if replacement is None:
            return False
        MODEL_RECONNECTS.labels(reason="dropped" if prompt else "recycled").inc()
        self.runner.new_model_session(replacement.replayed)
        # The replayed conversation already has the greeting; the caller is heard again.
        if self.state in (CallState.GREETING, CallState.RECONNECTING):
            self.lifecycle.move(CallState.CONVERSING)
        for turn in self.transcript.turns():
            finished = turn.role == LogRole.TOOL and turn.result is not None
            if finished and turn.call_id not in self.runner.in_model:
                # Finished during the replay: its output went to the old socket.
                for event in replay_events(turn, None):
                    await self.link.send(event)
                self.runner.in_model.add(turn.call_id)
        await self.link.retire(replacement.old)
        # Whatever the old session said while it closed, it answers nothing any more.
        self.runner.response_done()
        self.playout.new_model_session()
        if prompt:
            self.runner.turn.needed = True
            await self.runner.maybe_answer()
        return True

    async def _recycle_periodically(self, every: float) -> None:
        await recycle_periodically(
            every,
            between_turns=lambda: (
                not (self.runner.turn.active or self.runner.running or self.playout.audio_unheard())
            ),
            closing=lambda: self.lifecycle.closing,
            recycle=lambda: self._replace_model(prompt=False),
            call_id=self.call_id,
        )

    async def _model_lost(self) -> None:
        """The model is gone for good: hand the caller to a person (or record a callback)."""
        self.lifecycle.move(CallState.MODEL_LOST)
        await self.actions.hand_over_without_model()

    # ------------------------------------------------------------ Twilio -> model

    async def _pump_twilio(self) -> None:
        while True:
            frame = await self.twilio.receive()
            try:
                event = protocol.parse_twilio(frame)
            except ProtocolError as exc:
                self.bad_frames += 1
                logger.warning("call %s: bad Twilio frame (%s)", self.call_id, exc)
                if self.bad_frames > MAX_BAD_FRAMES or str(exc) == "frame too large":
                    return
                continue
            if isinstance(event, Media):
                if self.lifecycle.hearing:
                    await self.link.send_audio(event.payload)
            elif isinstance(event, Mark):
                if self.playout.mark_played(event.name):
                    self._maybe_run_pending_action()
            elif isinstance(event, Dtmf):
                await self._on_keypress(event.digit)
            elif isinstance(event, Stop):
                return

    async def _on_keypress(self, digit: str) -> None:
        """Every key goes into the conversation; 0 asks for a person, even mid-sentence."""
        self.keypresses += 1
        line = f"Caller pressed {digit[:8]}"
        self.transcript.system_line(f"keypress {self.keypresses}", line)
        if digit != "0":
            await self.link.send(protocol.text_message(LogRole.SYSTEM, line))
            return
        idle = not (
            self.runner.turn.active or self.runner.turn.needed or self.playout.audio_unheard()
        )
        # Like a barge-in, except that nothing cancels the reply for us: server VAD heard no
        # speech.
        cut_off = await self._cut_playout(cancel=True)
        await self.link.send(protocol.text_message(LogRole.SYSTEM, line))
        running = self.keypad_transfer is not None and not self.keypad_transfer.done()
        if running or self.lifecycle.handing_over:
            return  # the first press is still being handled, or the call is being handed over
        if self.tools.callback_requested:
            # Asked again after being told (or while being told): say it again, without a
            # second request, and never twice for one press.
            if cut_off or idle:
                await self._tell_callback()
            return
        self.keypad_transfer = asyncio.ensure_future(self._keypad_transfer())
        self._tasks.add(self.keypad_transfer)
        self.keypad_transfer.add_done_callback(self._tasks.discard)

    async def _keypad_transfer(self) -> None:
        result = await asyncio.to_thread(
            self.tools.dispatch_sync, "transfer_to_staff", {"reason": "caller pressed 0"}, "keypad"
        )
        if result.get("transferring"):
            # The caller asked for a person: transfer now, without waiting for the agent.
            await self.actions.start(PendingAction("transfer", self.settings.staff_phone_number))
        elif result.get("callback_requested"):
            await self._tell_callback()

    async def wind_down(self) -> None:
        """End the call politely (the service is draining): a callback is recorded, the agent
        says so and goodbye, then the call hangs up once that has played (or at the deadline)."""
        if self.lifecycle.closing or self.lifecycle.handing_over:
            return
        CURRENT_CALL_ID.set(self.call_id)  # run from the drain's task: log as this call's
        logger.info("call %s: winding down", self.call_id)
        await asyncio.to_thread(self.tools.request_callback, "call ended by a service restart")
        self.tools.pending_action = self.tools.pending_action or PendingAction("hang_up")
        if self.link.model is None:
            await self.actions.start(self.tools.pending_action)
            return
        await self.runner.ask(WIND_DOWN)
        self.actions.watch_deadline()

    async def _tell_callback(self) -> None:
        """The agent tells the caller a callback is coming, once any reply under way is done."""
        if self.link.model is None:
            return
        await self.runner.ask(TELL_CALLBACK)

    # ------------------------------------------------------------ model -> Twilio

    async def _pump_model(self) -> None:
        while True:
            model = self.link.model
            if model is None:
                return
            try:
                raw = await model.recv_bytes()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.lifecycle.closing:
                    return
                if model is not self.link.model:
                    continue  # replaced on purpose (recycled): read from the new one
                logger.warning(
                    "call %s: model socket dropped (%s)", self.call_id, type(exc).__name__
                )
                if self.lifecycle.handing_over:
                    # The caller is leaving the agent anyway: Twilio ends the stream.
                    await self.ended.wait()
                    return
                if not self.link.replaced_after_drop:
                    self.link.replaced_after_drop = True
                    self.lifecycle.move(CallState.RECONNECTING)
                    if await self._replace_model(prompt=True):
                        continue
                if self.lifecycle.handing_over:  # the caller pressed 0 meanwhile
                    await self.ended.wait()
                    return
                await self._model_lost()
                return
            try:
                event = protocol.parse_server_event(raw)
            except ProtocolError:
                logger.warning("call %s: unreadable model event", self.call_id)
                continue
            await self._on_model_event(event)

    async def _on_model_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "response.output_audio.delta":
            await self._on_audio_delta(event)
        elif kind == "input_audio_buffer.speech_stopped":
            self.reply_timer.caller_stopped()
        elif kind == "input_audio_buffer.speech_started":
            if event.get("item_id"):
                self.transcript.position(event["item_id"])
            # Server VAD cancels the reply itself (interrupt_response): only the audio is ours.
            await self._cut_playout()
        elif kind == "response.created":
            self.runner.response_created((event.get("response") or {}).get("id"))
        elif kind in {"response.output_audio.done", "response.done"}:
            await self._send_mark(self.playout.flush())
            if kind == "response.done":
                self.runner.response_done()
                # A cancelled answer may end without its transcript's done event.
                self.transcript.keep_cut_off_answers((event.get("response") or {}).get("id"))
                await self.runner.maybe_answer()
                self._maybe_run_pending_action()
        elif kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("id"):
                self.transcript.position(item["id"])
        elif kind in {"input_audio_buffer.committed", "conversation.item.added"}:
            item_id = event.get("item_id") or (event.get("item") or {}).get("id")
            if item_id:
                self.transcript.position(item_id)
        elif kind == "conversation.item.input_audio_transcription.completed":
            self.transcript.user_said(event.get("item_id") or "", event.get("transcript", ""))
        elif kind == "response.output_audio_transcript.delta":
            item_id = event.get("item_id") or ""
            delta = event.get("delta")
            response_id = event.get("response_id")
            # Text of audio the caller was never sent is not part of the call.
            if (
                isinstance(delta, str)
                and item_id
                and not self.playout.response_dropped(response_id)
            ):
                self.transcript.assistant_delta(item_id, response_id, delta)
        elif kind == "response.output_audio_transcript.done":
            self.transcript.assistant_said(event.get("item_id") or "", event.get("transcript", ""))
        elif kind == "response.function_call_arguments.done":
            self.runner.start(event)
        elif kind == "session.updated":
            if self.state is CallState.GREETING:
                self.lifecycle.move(CallState.CONVERSING)
                await self.link.send(protocol.response_create())
        elif kind == "error":
            error = event.get("error") or {}
            code = error.get("code") or error.get("type")
            level = logging.INFO if code in NON_FATAL_ERRORS else logging.WARNING
            logger.log(level, "call %s: model error %s", self.call_id, code)

    async def _on_audio_delta(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id") or ""
        delta = event.get("delta")
        response_id = event.get("response_id")
        if not isinstance(delta, str) or self.playout.is_dropped(item_id, response_id):
            return
        self.transcript.position(item_id)
        before, after = self.playout.audio_sent(item_id, response_id, protocol.mulaw_ms(delta))
        if before is not None:  # a new item: close the previous one's accounting
            await self._send_mark(before)
        await self.twilio.send(protocol.twilio_media(self.stream_sid, delta))
        self.reply_timer.agent_spoke()
        if after is not None:
            await self._send_mark(after)

    async def _send_mark(self, name: str | None) -> None:
        """Send a mark; Twilio echoes it once the audio before it has played."""
        if name is not None:
            await self.twilio.send(protocol.twilio_mark(self.stream_sid, name))

    async def _cut_playout(self, *, cancel: bool = False) -> bool:
        """Cut the agent off at what the caller heard (and `cancel` the reply); False if heard."""
        generating = self.runner.turn.generating
        cuts = self.playout.cut(generating)
        if not cuts:
            return False  # everything the agent said has been heard
        await self.twilio.send(protocol.twilio_clear(self.stream_sid))
        if cancel and self.runner.turn.active:
            await self.link.send(protocol.response_cancel())
        for cut in cuts:
            await self.link.send(protocol.truncate(cut.item_id, cut.audio_end_ms))
            self.transcript.interrupted(cut.item_id)
        return True

    # ------------------------------------------------------------ helpers

    def _after_tool(self) -> None:
        self.actions.watch_deadline()
        self._maybe_run_pending_action()

    def _maybe_run_pending_action(self) -> None:
        busy = self.runner.busy or self.playout.audio_unheard()
        self.actions.run_pending_when_heard(busy=busy)

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
