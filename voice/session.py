"""One live call: the Twilio media stream bridged to an OpenAI Realtime session.

Each call gets its own `CallSession` (its own model socket, playout accounting, tools and
verification state); nothing here is shared between calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.db import RETRY_DELAYS_SECONDS, retry_transient, transaction
from core.logs import log_failure
from core.models import LogRole
from core.services import calls
from voice import protocol
from voice.log_writer import LogWriter, store_lines
from voice.model_connection import (
    MODEL_CLOSE_TIMEOUT_SECONDS,
    ModelConnection,
    PreopenedModel,
    close_model,
    connect_model,
)
from voice.prompts import (
    SORRY_CALLBACK,
    SORRY_TRANSFER,
    TELL_CALLBACK,
    agent_instructions,
    resumed_note,
    session_update_text,
)
from voice.protocol import Dtmf, Mark, Media, ProtocolError, Stop
from voice.tools import PendingAction, ToolBox
from voice.twilio_rest import TwilioRest

logger = logging.getLogger(__name__)

# A mark goes after at most this much audio (and at the end of each answer). Twilio echoes it
# once played, so barge-in truncates at the last echoed mark: never more than this much short
# of what was heard, at a fifth of the messages of marking every 20 ms delta.
MARK_INTERVAL_MS = 100.0
MAX_BAD_FRAMES = 20
# After end_call or a transfer, act at the latest this long after the tool ran.
ACTION_DEADLINE_SECONDS = 20.0
# Realtime sessions are capped at 60 minutes; recycle well before.
MODEL_RECYCLE_SECONDS = 55 * 60
# A finished call waits this long for its last lines, which the writer keeps trying to store
# through a database blip, before it assembles the transcript.
LAST_LINES_WAIT_SECONDS = sum(RETRY_DELAYS_SECONDS) + 5
NON_FATAL_ERRORS = frozenset(
    {"conversation_already_has_active_response", "response_cancel_not_active"}
)


@dataclass
class Turn:
    """One item of the conversation, kept to replay into a fresh model session."""

    role: str  # a LogRole; TOOL for a function call
    text: str = ""
    item_id: str = ""
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    result: dict[str, Any] | None = None  # a function call's output, once it has one


class TwilioSocket(Protocol):
    """The Twilio side of the bridge (a Quart websocket)."""

    async def send(self, data: str) -> None: ...
    async def receive(self) -> str | bytes: ...


class CallSession:
    """Bridges one call: relays audio both ways, runs tools, keeps the transcript."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: sessionmaker[Session],
        twilio: TwilioSocket,
        stream_sid: str,
        toolbox: ToolBox,
        rest: TwilioRest,
        connect: Callable[[Settings], Awaitable[ModelConnection]] = connect_model,
        preopened: asyncio.Task[PreopenedModel] | None = None,
        recycle_after: float | None = MODEL_RECYCLE_SECONDS,
        simulated: bool = False,
        finishing: set[asyncio.Task[None]] | None = None,
        log_writer: LogWriter | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.twilio = twilio
        self.stream_sid = stream_sid
        self.tools = toolbox
        self.rest = rest
        self.connect = connect
        self.preopened = preopened
        self.recycle_after = recycle_after
        self.simulated = simulated
        # Where this call's closing bookkeeping registers, so a stopping server can wait for it.
        self.finishing = finishing if finishing is not None else set()
        self.log_writer = log_writer
        self.call_id = toolbox.context.call_id
        self.call_sid = toolbox.context.call_sid
        self.model: ModelConnection | None = None
        self._send_audio: Callable[[str], Awaitable[None]] | None = None
        self.model_ready = False
        self.greeted = False
        self.closing = False
        self.reconnected = False
        # Conversation order: a position is reserved when an item first appears.
        self._positions: dict[str, int] = {}
        self._next_position = 0
        self.history: dict[int, Turn] = {}
        # An answer's transcript arrives whole only at its end: what was generated before a
        # cut-off (a barge-in, a dropped socket) is kept from the deltas.
        self.partial_text: dict[str, list[str]] = {}
        self.partial_response: dict[str, str | None] = {}
        # Of an interrupted answer, the share of its audio the caller heard (for the replay).
        self.heard_share: dict[str, float] = {}
        self.calls_in_model: set[str] = set()  # function calls the current session knows
        # Playout accounting for barge-in (per assistant item, in ms of mu-law audio).
        self.sent_ms: dict[str, float] = {}
        self.played_ms: dict[str, float] = {}
        self.marks: dict[str, tuple[str, float]] = {}
        self._mark_counter = 0
        self._unmarked_item: str | None = None  # audio sent since the last mark, and its item
        self._unmarked_ms = 0.0
        self.current_item: str | None = None
        self.current_response: str | None = None
        self.item_response: dict[str, str | None] = {}
        self.response_active = False
        self.needs_response = False
        self.response_instructions: str | None = None  # for the next response.create only
        self.keypresses = 0
        self.keypad_transfer: asyncio.Task[None] | None = None
        self.dropped_responses: set[str] = set()
        self.dropped_items: set[str] = set()
        self.interrupted_items: set[str] = set()
        self.stored_assistant_items: set[str] = set()
        self.tools_running = 0
        self.action_started = False
        self._deadline: asyncio.Future[None] | None = None
        self.ended = asyncio.Event()
        self.bad_frames = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._db_tasks: set[asyncio.Future[Any]] = set()

    # ------------------------------------------------------------ lifecycle

    def instructions(self) -> str:
        """The agent's instructions for this call."""
        return agent_instructions(self.settings, self.tools.context.direction)

    async def run(self) -> None:
        """Bridge until the stream stops (or the Twilio socket goes), then close everything."""
        try:
            try:
                await self._open_model()
            except Exception as exc:
                logger.error(
                    "call %s: model connection failed (%s)", self.call_id, type(exc).__name__
                )
                await self._model_lost()
                return
            twilio_task = asyncio.create_task(self._pump_twilio())
            model_task = asyncio.create_task(self._pump_model())
            ended_task = asyncio.create_task(self.ended.wait())
            tasks = [twilio_task, model_task, ended_task]
            if self.recycle_after:
                tasks.append(asyncio.create_task(self._recycle_periodically()))
            try:
                await asyncio.wait(
                    {twilio_task, model_task, ended_task}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                self.closing = True
                for task in tasks:
                    task.cancel()
                await self._close_model()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self.closing = True
            # Shielded: a cancelled connection (server shutdown) must not lose the transcript.
            finish = asyncio.ensure_future(self._finish())
            self.finishing.add(finish)
            finish.add_done_callback(self.finishing.discard)
            await asyncio.shield(finish)

    async def _open_model(self) -> None:
        preopened, self.preopened = self.preopened, None
        ready: PreopenedModel | None = None
        if preopened is not None:
            try:
                ready = await preopened
            except Exception as exc:  # fall back to connecting now
                logger.info(
                    "call %s: pre-opened model socket failed (%s)", self.call_id, type(exc).__name__
                )
        self._use_model(ready.connection if ready else await self.connect(self.settings))
        assert self.model is not None
        update = self._session_update()
        if ready is None or ready.session_update != update:
            # Not configured while the webhook ran (or not as this call needs): the greeting
            # waits for this round trip. Otherwise its session.updated is already on its way,
            # queued on the socket until the pump reads it.
            await self.model.send_raw(update)
        self.model_ready = True

    def _session_update(self) -> str:
        return session_update_text(self.settings, self.tools.context.direction)

    async def _replace_model(self, *, prompt: bool) -> bool:
        """Open a fresh model session, replay the conversation so far, and swap it in.

        Used once after the socket drops (then the agent speaks again at once) and to recycle
        the session before the provider's time limit (then it waits for the caller).
        """
        old = self.model
        new: ModelConnection | None = None
        self._keep_cut_off_answers()  # an answer the drop cut off is part of the conversation
        try:
            new = await self.connect(self.settings)
            await new.send_raw(self._session_update())
            replayed: set[str] = set()
            for position in sorted(self.history):
                turn = self.history[position]
                for event in self._replay(turn):
                    await new.send_raw(json.dumps(event))
                if turn.role == LogRole.TOOL and turn.result is not None:
                    replayed.add(turn.call_id)
            note = resumed_note(verified=self.tools.verified)
            await new.send_raw(json.dumps(protocol.text_message("system", note)))
        except Exception as exc:
            logger.error("call %s: model reconnect failed (%s)", self.call_id, type(exc).__name__)
            if new is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(new.close(), MODEL_CLOSE_TIMEOUT_SECONDS)
            return False
        self._use_model(new)
        self.model_ready = True
        self.calls_in_model = replayed
        for turn in list(self.history.values()):
            if (
                turn.role == LogRole.TOOL
                and turn.result is not None
                and turn.call_id not in replayed
            ):
                # Finished during the replay: its output went to the old socket.
                for event in self._replay(turn):
                    await self._send_model(event)
                self.calls_in_model.add(turn.call_id)
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.close(), MODEL_CLOSE_TIMEOUT_SECONDS)
        self.response_active = False
        self.current_item = None
        self._forget_marks()
        # The old session's item ids mean nothing to the new one: never truncate them there.
        self.sent_ms.clear()
        self.played_ms.clear()
        self.item_response.clear()
        self.greeted = True  # the replayed conversation already has the greeting
        if prompt:
            self.needs_response = True
            await self._maybe_create_response()
        return True

    def _replay(self, turn: Turn) -> list[dict[str, Any]]:
        """The items that tell a fresh session about one turn (none for an unheard answer)."""
        if turn.role == LogRole.TOOL:
            if turn.result is None:
                return []  # still running: its output brings the call along (see _run_tool)
            return [
                protocol.function_call_item(turn.call_id, turn.name, turn.arguments),
                protocol.function_output(turn.call_id, turn.result),
            ]
        text = turn.text
        if turn.role == LogRole.ASSISTANT and turn.item_id in self.heard_share:
            # The old session kept only the heard audio of a truncated answer: so does this.
            text = protocol.heard_part(text, self.heard_share[turn.item_id])
        return [protocol.text_message(turn.role, text)] if text else []

    def _keep_cut_off_answers(self, response_id: str | None = None) -> None:
        """Store what was generated of answers that will never have a whole transcript."""
        for item_id in list(self.partial_text):
            if response_id is not None and self.partial_response.get(item_id) != response_id:
                continue
            text = "".join(self.partial_text.pop(item_id))
            self.partial_response.pop(item_id, None)
            if item_id in self.stored_assistant_items:
                continue
            self.stored_assistant_items.add(item_id)
            self.interrupted_items.add(item_id)
            self._store_line(item_id, LogRole.ASSISTANT, text, interrupted=True)

    async def _recycle_periodically(self) -> None:
        """Swap in a fresh model session before the provider closes this one (60 min in GA)."""
        assert self.recycle_after is not None
        while not self.closing:
            await asyncio.sleep(self.recycle_after)
            # Between turns, so no answer is cut off: nothing playing, generating or running.
            for _ in range(300):
                if not (self.response_active or self.tools_running or self._audio_unheard()):
                    break
                await asyncio.sleep(0.1)
            if self.closing:
                return
            if await self._replace_model(prompt=False):
                logger.info("call %s: model session recycled", self.call_id)

    def _use_model(self, model: ModelConnection) -> None:
        self.model = model
        self._send_audio = model.send_raw

    async def _close_model(self) -> None:
        model, self.model, self.model_ready = self.model, None, False
        self._send_audio = None
        if model is None:
            return
        if not await close_model(model):
            logger.info("call %s: model socket did not close cleanly", self.call_id)

    async def _finish(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._keep_cut_off_answers()  # the caller hung up mid-answer
        pending = list(self._tasks)
        if pending:
            await asyncio.wait(pending, timeout=5)
        if self._db_tasks:
            await asyncio.wait(list(self._db_tasks), timeout=LAST_LINES_WAIT_SECONDS)
        try:
            await asyncio.to_thread(retry_transient, self._finish_sync)
        except Exception:
            log_failure(logger, "call %s: could not assemble the transcript", self.call_id)

    def _finish_sync(self, _attempt: int = 0) -> None:
        # Safe to repeat: the end time and outcome are kept once set, the transcript rebuilt.
        with transaction(self.sessions) as session:
            calls.finish_call(session, self.call_id, now=datetime.now(UTC))

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
                if self.model_ready and self._send_audio is not None:
                    # A failed send means the model dropped: its pump notices and reconnects.
                    with contextlib.suppress(Exception):
                        await self._send_audio(protocol.audio_append(event.payload))
            elif isinstance(event, Mark):
                self._on_mark(event.name)
            elif isinstance(event, Dtmf):
                await self._on_keypress(event.digit)
            elif isinstance(event, Stop):
                return

    def _on_mark(self, name: str) -> None:
        entry = self.marks.pop(name, None)
        if entry is None:
            return  # stale: its audio was cleared by a barge-in
        item_id, ms = entry
        if ms > self.played_ms.get(item_id, 0.0):
            self.played_ms[item_id] = ms
        self._maybe_run_pending_action()

    async def _on_keypress(self, digit: str) -> None:
        """Every key goes into the conversation; 0 asks for a person, even mid-sentence."""
        self.keypresses += 1
        line = f"Caller pressed {digit[:8]}"
        self._store_line(f"keypress {self.keypresses}", LogRole.SYSTEM, line, from_model=False)
        if digit != "0":
            await self._send_model(protocol.text_message(LogRole.SYSTEM, line))
            return
        idle = not (self.response_active or self.needs_response or self._audio_unheard())
        # Like a barge-in, except that nothing cancels the reply for us: server VAD heard no
        # speech.
        cut_off = await self._cut_playout(cancel=True)
        await self._send_model(protocol.text_message(LogRole.SYSTEM, line))
        running = self.keypad_transfer is not None and not self.keypad_transfer.done()
        if running or self.action_started:
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
            if not self.action_started:
                self.action_started = True
                await self._run_action(PendingAction("transfer", self.settings.staff_phone_number))
        elif result.get("callback_requested"):
            await self._tell_callback()

    async def _tell_callback(self) -> None:
        """The agent tells the caller a callback is coming, once any reply under way is done."""
        if self.model is None:
            return
        self.response_instructions = TELL_CALLBACK
        self.needs_response = True
        await self._maybe_create_response()

    # ------------------------------------------------------------ model -> Twilio

    async def _pump_model(self) -> None:
        while True:
            model = self.model
            if model is None:
                return
            try:
                raw = await model.recv_bytes()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.closing:
                    return
                if model is not self.model:
                    continue  # replaced on purpose (recycled): read from the new one
                logger.warning(
                    "call %s: model socket dropped (%s)", self.call_id, type(exc).__name__
                )
                if not self.reconnected:
                    self.reconnected = True
                    self.model_ready = False
                    if await self._replace_model(prompt=True):
                        continue
                await self._model_lost()
                return
            try:
                event = protocol.parse_server_event(raw)
            except ProtocolError:
                logger.warning("call %s: unreadable model event", self.call_id)
                continue
            await self._on_model_event(event)

    async def _model_lost(self) -> None:
        """The model is gone for good: hand the caller to a person (or record a callback)."""
        self.model_ready = False
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

    async def _on_model_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "response.output_audio.delta":
            await self._on_audio_delta(event)
        elif kind == "input_audio_buffer.speech_started":
            await self._on_speech_started(event)
        elif kind == "response.created":
            response = event.get("response") or {}
            self.response_active = True
            self.current_response = response.get("id")
        elif kind in {"response.output_audio.done", "response.done"}:
            await self._flush_mark()
            if kind == "response.done":
                self.response_active = False
                # A cancelled answer may end without its transcript's done event.
                self._keep_cut_off_answers((event.get("response") or {}).get("id"))
                await self._maybe_create_response()
                self._maybe_run_pending_action()
        elif kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("id"):
                self._position(item["id"])
        elif kind in {"input_audio_buffer.committed", "conversation.item.added"}:
            item_id = event.get("item_id") or (event.get("item") or {}).get("id")
            if item_id:
                self._position(item_id)
        elif kind == "conversation.item.input_audio_transcription.completed":
            self._store_line(event.get("item_id") or "", LogRole.USER, event.get("transcript", ""))
        elif kind == "response.output_audio_transcript.delta":
            self._on_transcript_delta(event)
        elif kind == "response.output_audio_transcript.done":
            item_id = event.get("item_id") or ""
            self.partial_text.pop(item_id, None)
            self.partial_response.pop(item_id, None)
            if item_id in self.stored_assistant_items:
                return  # already kept as cut off
            self.stored_assistant_items.add(item_id)
            self._store_line(
                item_id,
                LogRole.ASSISTANT,
                event.get("transcript", ""),
                interrupted=item_id in self.interrupted_items,
            )
        elif kind == "response.function_call_arguments.done":
            self._start_tool(event)
        elif kind == "session.updated":
            if not self.greeted:
                self.greeted = True
                await self._send_model(protocol.response_create())
        elif kind == "error":
            error = event.get("error") or {}
            code = error.get("code") or error.get("type")
            level = logging.INFO if code in NON_FATAL_ERRORS else logging.WARNING
            logger.log(level, "call %s: model error %s", self.call_id, code)

    def _on_transcript_delta(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id") or ""
        delta = event.get("delta")
        if (
            not isinstance(delta, str)
            or not item_id
            or item_id in self.stored_assistant_items
            or event.get("response_id") in self.dropped_responses
        ):
            return  # text of audio the caller was never sent is not part of the call
        self._position(item_id)
        self.partial_text.setdefault(item_id, []).append(delta)
        self.partial_response[item_id] = event.get("response_id")

    async def _on_audio_delta(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id") or ""
        delta = event.get("delta")
        if (
            not isinstance(delta, str)
            or event.get("response_id") in self.dropped_responses
            or item_id in self.dropped_items
        ):
            return
        if self._unmarked_item not in (None, item_id):
            await self._flush_mark()  # a new item: close the previous one's accounting
        self._position(item_id)
        self.current_item = item_id
        self.item_response[item_id] = event.get("response_id")
        ms = protocol.mulaw_ms(delta)
        self.sent_ms[item_id] = self.sent_ms.get(item_id, 0.0) + ms
        await self.twilio.send(protocol.twilio_media(self.stream_sid, delta))
        self._unmarked_item = item_id
        self._unmarked_ms += ms
        if self._unmarked_ms >= MARK_INTERVAL_MS:
            await self._flush_mark()

    async def _flush_mark(self) -> None:
        """Mark the end of the audio sent so far; Twilio echoes it once that has played."""
        item_id = self._unmarked_item
        if item_id is None:
            return
        self._unmarked_item, self._unmarked_ms = None, 0.0
        self._mark_counter += 1
        name = f"a{self._mark_counter}"
        self.marks[name] = (item_id, self.sent_ms.get(item_id, 0.0))
        await self.twilio.send(protocol.twilio_mark(self.stream_sid, name))

    def _forget_marks(self) -> None:
        """Twilio's queue was dropped: the marks it will echo (or not) mean nothing now."""
        self.marks.clear()
        self._unmarked_item, self._unmarked_ms = None, 0.0

    def _audio_unheard(self) -> bool:
        """Audio sent to Twilio that it has not confirmed playing yet."""
        return bool(self.marks) or self._unmarked_item is not None

    async def _on_speech_started(self, event: dict[str, Any]) -> None:
        if event.get("item_id"):
            self._position(event["item_id"])
        # Server VAD cancels the reply itself (interrupt_response): only the audio is ours.
        await self._cut_playout()

    def _unheard_items(self) -> list[str]:
        """Assistant items the caller has not heard in full, in the order they were sent."""
        unheard = []
        for item_id, sent in self.sent_ms.items():
            if item_id in self.dropped_items:
                continue
            still_generating = (
                self.response_active and self.item_response.get(item_id) == self.current_response
            )
            if self.played_ms.get(item_id, 0.0) < sent or still_generating:
                unheard.append(item_id)
        return unheard

    async def _cut_playout(self, *, cancel: bool = False) -> bool:
        """Cut the agent off at what the caller heard (and `cancel` the reply); False if heard."""
        unheard = self._unheard_items()
        if not unheard:
            return False  # everything the agent said has been heard
        await self.twilio.send(protocol.twilio_clear(self.stream_sid))
        if cancel and self.response_active:
            await self._send_model(protocol.response_cancel())
        for item_id in unheard:
            # A reply queued behind another was cleared at Twilio too: its heard part (maybe
            # none) is what the model must keep, or it believes the caller heard it all.
            sent = self.sent_ms[item_id]
            audio_end_ms = int(min(sent, self.played_ms.get(item_id, 0.0)))
            await self._send_model(protocol.truncate(item_id, audio_end_ms))
            self.heard_share[item_id] = audio_end_ms / sent if sent else 0.0
            self.dropped_items.add(item_id)
            self.interrupted_items.add(item_id)
            if item_id in self.stored_assistant_items:
                self._db(self._mark_interrupted_sync, item_id)
        if self.response_active and self.current_response:
            self.dropped_responses.add(self.current_response)
        self._forget_marks()  # Twilio echoes the cleared marks; they are stale now
        self.current_item = None
        return True

    # ------------------------------------------------------------ tools

    def _start_tool(self, event: dict[str, Any]) -> None:
        call_id = str(event.get("call_id") or "")
        name = str(event.get("name") or "")
        position = self._position(event.get("item_id") or call_id)
        raw = event.get("arguments")
        try:
            arguments = protocol.function_arguments(raw)
        except ProtocolError:
            arguments = None
        self.history[position] = Turn(
            LogRole.TOOL,
            call_id=call_id,
            name=name,
            arguments=raw if isinstance(raw, str) else json.dumps(raw),
        )
        self.calls_in_model.add(call_id)
        self.tools_running += 1
        self._spawn(self._run_tool(call_id, name, arguments, position))

    async def _run_tool(
        self, call_id: str, name: str, arguments: dict[str, Any] | None, position: int
    ) -> None:
        try:
            if arguments is None:
                result: dict[str, Any] = {
                    "error": "invalid_argument",
                    "message": "The arguments were not a JSON object.",
                }
            else:
                result = await self.tools.run(name, arguments, tool_call_id=call_id)
            logger.info("call %s: tool %s -> %s", self.call_id, name, result.get("error", "ok"))
            turn = self.history.get(position)
            if turn is not None:
                turn.result = result
            if self.model is not None and not self.closing:
                if call_id not in self.calls_in_model and turn is not None:
                    # The session was replaced while the tool ran: it has never seen the call.
                    await self._send_model(
                        protocol.function_call_item(call_id, name, turn.arguments)
                    )
                    self.calls_in_model.add(call_id)
                await self._send_model(protocol.function_output(call_id, result))
                if name != "end_call":
                    self.needs_response = True
            # Logged once the model has its answer: whatever the tool changed is already
            # committed, and the caller should not wait on a second write.
            self._log(self.tools.log_row(name, arguments or {}, call_id, position, result))
            if self.tools.pending_action is not None and self._deadline is None:
                self._deadline = asyncio.ensure_future(self._action_deadline())
        finally:
            self.tools_running -= 1
        await self._maybe_create_response()
        self._maybe_run_pending_action()

    async def _maybe_create_response(self) -> None:
        if self.needs_response and not self.response_active and self.tools_running == 0:
            self.needs_response = False
            self.response_active = True  # until response.created/done say otherwise
            instructions, self.response_instructions = self.response_instructions, None
            await self._send_model(protocol.response_create(instructions))

    def _maybe_run_pending_action(self) -> None:
        action = self.tools.pending_action
        if (
            action is None
            or self.action_started
            or self.response_active
            or self.needs_response
            or self.tools_running
            or self._audio_unheard()
        ):
            return
        self.action_started = True
        self._spawn(self._run_action(action))

    async def _run_action(self, action: PendingAction) -> None:
        if self.simulated:
            # No telephone network behind a simulated call: ending the stream is the hang-up.
            logger.info("call %s: simulated %s", self.call_id, action.kind)
            self.ended.set()
            return
        try:
            if action.kind == "transfer":
                await asyncio.to_thread(self.rest.transfer, self.call_sid, action.number)
            else:
                await asyncio.to_thread(self.rest.hang_up, self.call_sid)
            logger.info("call %s: %s requested", self.call_id, action.kind)
        except Exception:
            log_failure(logger, "call %s: Twilio %s failed", self.call_id, action.kind)
            # Ending the stream ourselves makes Twilio move past <Connect>: the call ends.
            self.ended.set()

    async def _action_deadline(self) -> None:
        """Hang up (or transfer) even if Twilio never echoes the last marks."""
        await asyncio.sleep(ACTION_DEADLINE_SECONDS)
        action = self.tools.pending_action
        if action is not None and not self.action_started and not self.closing:
            logger.info("call %s: %s forced after the deadline", self.call_id, action.kind)
            self.action_started = True
            await self._run_action(action)

    # ------------------------------------------------------------ helpers

    def _position(self, key: str) -> int:
        if key not in self._positions:
            self._positions[key] = self._next_position
            self._next_position += 1
        return self._positions[key]

    async def _send_model(self, event: dict[str, Any]) -> None:
        if self.model is None:
            return
        try:
            await self.model.send_raw(json.dumps(event))
        except Exception as exc:
            logger.info("call %s: model send failed (%s)", self.call_id, type(exc).__name__)

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _db(self, function: Callable[..., Any], *args: Any) -> None:
        task = asyncio.ensure_future(asyncio.to_thread(function, *args))
        self._db_tasks.add(task)
        task.add_done_callback(self._db_tasks.discard)

    def _store_line(
        self,
        item_id: str,
        role: str,
        text: str,
        *,
        interrupted: bool = False,
        from_model: bool = True,
    ) -> None:
        """Store one line at the place of `item_id` (a key of ours when not `from_model`)."""
        if not isinstance(text, str):
            text = ""
        position = self._position(item_id)
        self.history[position] = Turn(role, text, item_id if from_model else "")
        self._log(
            calls.log_row(
                call_id=self.call_id,
                position=position,
                role=role,
                text=text,
                item_id=(item_id or None) if from_model else None,
                interrupted=interrupted,
                now=datetime.now(UTC),
            )
        )

    def _log(self, row: dict[str, Any]) -> None:
        """Store one conversation line (through the shared writer when there is one)."""
        if self.log_writer is None:
            self._db(store_lines, self.sessions, [row])
            return
        stored = asyncio.wrap_future(self.log_writer.submit(row))
        self._db_tasks.add(stored)
        stored.add_done_callback(self._line_stored)

    def _line_stored(self, stored: asyncio.Future[None]) -> None:
        self._db_tasks.discard(stored)
        if not stored.cancelled() and stored.exception() is not None:
            logger.error("call %s: a conversation line was not stored", self.call_id)

    def _mark_interrupted_sync(self, item_id: str) -> None:
        with transaction(self.sessions) as session:
            calls.mark_interrupted(session, call_id=self.call_id, item_id=item_id)
