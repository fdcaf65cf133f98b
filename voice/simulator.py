"""A stand-in for the OpenAI Realtime API: the product's simulator, and the one fake server
the tests and the benchmark build on.

`RealtimeServer` speaks the real GA protocol over a loopback WebSocket (the bridge connects to
it through the official SDK, exactly as to OpenAI) and runs a script per connection against a
`ModelSession`, which says things, calls tools and lets the caller speak as the API would.

With no OpenAI key the service runs `SimulatedRealtime`, whose script is a demo call: a demo
patient (picked by whoever places the call, see voice.simulate_call) asks for something, the
agent verifies them and looks at their upcoming visits; a visit already booked is mentioned
and the caller keeps, moves or cancels it, or a new visit is checked, read back and booked on
an explicit yes; then the agent hangs up. Calls served by it are recorded with Call.simulated
set.

The simulated caller's audio carries a cue naming who calls and what for (a simulated call
has no voice to recognise): the script reads it from the first audio the bridge relays.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import websockets
from openai import AsyncOpenAI

from core.config import Settings
from core.seed import PATIENTS

logger = logging.getLogger(__name__)

MS_PER_CHARACTER = 55  # roughly how long a sentence takes to say
CHUNK_MS = 200
DEFAULT_PATIENCE_SECONDS = 5.0
# How long the demo waits for the bridge (a slow machine, a tool's first run).
DEMO_PATIENCE_SECONDS = 60.0


# ------------------------------------------------------------------ the protocol


def silence(ms: int, byte: int = 0xFF) -> str:
    """Base64 mu-law audio of `ms` milliseconds."""
    return base64.b64encode(bytes([byte]) * (ms * 8)).decode()


class ModelSession:
    """One Realtime connection as the server sees it; a script drives it."""

    def __init__(self, ws: Any, server: RealtimeServer, index: int) -> None:
        self.ws = ws
        self.server = server
        self.index = index
        self.patience = server.patience
        self.received: list[dict[str, Any]] = []
        self.errors: list[str] = []
        # Client events the API would refuse with an `error` event (not in `received`).
        self.refused: list[dict[str, Any]] = []
        self.audio_bytes: set[int] = set()
        self.appended_ms = 0.0
        self.cue: CallerPlan | None = None  # what the simulated caller's audio said
        self.active_response: str | None = None
        self.call_ids: set[str] = set()  # function calls in this session's conversation
        self.closed_at: float | None = None
        self.closed = asyncio.Event()
        self.changed = asyncio.Event()
        self._cursor: dict[str, int] = {}
        self._seq = 0

    def new_id(self, prefix: str) -> str:
        """A fresh id like the API's (item_..., resp_...)."""
        self._seq += 1
        return f"{prefix}_{self.index}_{self._seq}"

    async def send(self, event: dict[str, Any]) -> None:
        """Emit one server event."""
        event.setdefault("event_id", self.new_id("event"))
        # The conversation state the real API keeps, for the checks in `accept`.
        if event["type"] == "response.created":
            self.active_response = event["response"]["id"]
        elif event["type"] == "response.done":
            self.active_response = None
        elif event["type"] == "response.function_call_arguments.done":
            self.call_ids.add(event["call_id"])
        await self.ws.send(json.dumps(event))

    async def refuse(self, event: dict[str, Any], code: str, message: str) -> None:
        """Answer a client event the API would refuse with its `error` event."""
        self.refused.append(event)
        self.errors.append(f"{event['type']}: {code}")
        error = {"type": "invalid_request_error", "code": code, "message": message}
        if event.get("event_id"):
            error["event_id"] = event["event_id"]
        await self.send({"type": "error", "error": error})

    async def accept(self, event: dict[str, Any]) -> bool:
        """Whether the API would take this client event; refuses it as the API does."""
        kind = event.get("type")
        if kind == "response.create" and self.active_response is not None:
            await self.refuse(
                event,
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: "
                f"{self.active_response}. Wait until the response is finished.",
            )
            return False
        if kind == "response.cancel" and self.active_response is None:
            await self.refuse(event, "response_cancel_not_active", "No active response.")
            return False
        if kind == "conversation.item.create":
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                if not item.get("call_id") or item["call_id"] in self.call_ids:
                    await self.refuse(event, "invalid_value", "Bad or repeated call_id.")
                    return False
                self.call_ids.add(item["call_id"])
            elif (
                item.get("type") == "function_call_output" and item["call_id"] not in self.call_ids
            ):
                await self.refuse(event, "invalid_value", "No function call with that call_id.")
                return False
        return True

    def hear(self, audio: bytes) -> None:
        """Caller audio the bridge appended."""
        self.audio_bytes.update(audio)
        self.appended_ms += len(audio) / 8
        if self.cue is None:
            self.cue = CallerPlan.heard(audio)

    def keep(self, event: dict[str, Any]) -> None:
        """Record an accepted client event for `next` and `of_type`."""
        self.received.append(event)
        self.changed.set()

    async def next(
        self,
        type_: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """The next client event of `type_` (after the last one returned) matching `predicate`."""
        deadline = time.monotonic() + (self.patience if timeout is None else timeout)
        while True:
            start = self._cursor.get(type_, 0)
            for index in range(start, len(self.received)):
                event = self.received[index]
                if event["type"] == type_ and (predicate is None or predicate(event)):
                    self._cursor[type_] = index + 1
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed.is_set():
                raise TimeoutError(f"no {type_} received (connection {self.index})")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.2))

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        """Every client event of one type received so far."""
        return [e for e in self.received if e["type"] == type_]

    async def handshake(self) -> dict[str, Any]:
        """session.created, then wait for session.update and confirm it; returns the session."""
        await self.send({"type": "session.created", "session": {"type": "realtime"}})
        update = await self.next("session.update")
        await self.send({"type": "session.updated", "session": update["session"]})
        return dict(update["session"])

    async def say(
        self,
        text: str,
        *,
        chunks: int = 3,
        chunk_ms: int = 100,
        pause: float = 0.0,
        wait_for_create: bool = True,
        done: bool = True,
    ) -> tuple[str, str]:
        """One spoken response: audio deltas then its transcript; returns (response, item) ids."""
        if wait_for_create:
            await self.next("response.create")
        response_id, item_id = self.new_id("resp"), self.new_id("item")
        await self.send(
            {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}
        )
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": {"id": item_id, "type": "message", "role": "assistant"},
            }
        )
        words, said = text.split(" "), 0
        for chunk in range(chunks):
            await self.send(
                {
                    "type": "response.output_audio.delta",
                    "response_id": response_id,
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": silence(chunk_ms, self.server.audio_byte(self.index)),
                }
            )
            # Its transcript comes in pieces alongside: the words this chunk speaks.
            spoken = words[said : len(words) * (chunk + 1) // chunks]
            if spoken:
                await self.send(
                    {
                        "type": "response.output_audio_transcript.delta",
                        "response_id": response_id,
                        "item_id": item_id,
                        "output_index": 0,
                        "content_index": 0,
                        "delta": (" " if said else "") + " ".join(spoken),
                    }
                )
                said += len(spoken)
            if pause:
                await asyncio.sleep(pause)
        if done:
            await self.finish(response_id, item_id, text)
        return response_id, item_id

    async def finish(self, response_id: str, item_id: str, text: str) -> None:
        """The end of a spoken response: audio done, transcript done, response done."""
        common = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        await self.send({"type": "response.output_audio.done", **common, "content_index": 0})
        await self.send(
            {
                "type": "response.output_audio_transcript.done",
                **common,
                "content_index": 0,
                "transcript": text,
            }
        )
        await self.send(
            {"type": "response.done", "response": {"id": response_id, "status": "completed"}}
        )

    def tool_call_sent(self, call_id: str, name: str) -> None:
        """Called as a function call's arguments go out (the benchmark times round trips)."""

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        wait_for_create: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """A response that calls one function; returns the output the bridge sends back."""
        if wait_for_create:
            await self.next("response.create")
        response_id, item_id = self.new_id("resp"), self.new_id("item")
        call_id = self.new_id("call")
        await self.send(
            {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}
        )
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": {"id": item_id, "type": "function_call", "call_id": call_id, "name": name},
            }
        )
        done = {
            "type": "response.function_call_arguments.done",
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "call_id": call_id,
            "name": name,
            "arguments": json.dumps(arguments),
        }
        self.tool_call_sent(call_id, name)
        await self.send(done)
        await self.send(
            {"type": "response.done", "response": {"id": response_id, "status": "completed"}}
        )
        output = await self.next(
            "conversation.item.create", lambda e: e["item"].get("call_id") == call_id, timeout
        )
        result: dict[str, Any] = json.loads(output["item"]["output"])
        return result

    async def user_says(self, text: str, *, after: float = 0.15) -> str:
        """The caller speaks (server VAD) and the transcription completes; returns the item id.

        `after` seconds pass first, so the agent's last words have played (speaking earlier
        is a barge-in).
        """
        await asyncio.sleep(after)
        item_id = self.new_id("item")
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": 1000,
                "item_id": item_id,
            }
        )
        await self.send(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 2000, "item_id": item_id}
        )
        await self.send(
            {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": None}
        )
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": text,
            }
        )
        return item_id


Script = Callable[[ModelSession], Awaitable[None]]


class RealtimeServer:
    """A Realtime API server on loopback that the official SDK reaches through base_url.

    Each connection gets a `ModelSession` (or `session_class`) and runs `script` on it.
    `validate` checks each client event's text and returns the event (a ValueError is recorded
    in the session's errors and the event dropped); without it events are only parsed.
    Appended caller audio is kept among the received events only with `keep_audio`, and a
    finished session in `sessions` only with `keep_sessions` (a long-running server drops them).
    """

    session_class: type[ModelSession] = ModelSession

    def __init__(
        self,
        script: Script,
        *,
        validate: Callable[[str | bytes], dict[str, Any]] | None = None,
        keep_audio: bool = True,
        keep_sessions: bool = True,
        patience: float = DEFAULT_PATIENCE_SECONDS,
        **serve_options: Any,
    ) -> None:
        self.script = script
        self.keep_sessions = keep_sessions
        self.validate = validate or json.loads
        self.keep_audio = keep_audio
        self.patience = patience
        self.serve_options = serve_options  # for websockets.serve (compression, backlog ...)
        self.sessions: list[ModelSession] = []
        self.connections = 0
        self.script_errors: list[BaseException] = []
        self.paths: list[str] = []
        self.server: Any = None
        self.port = 0

    def audio_byte(self, index: int) -> int:
        """Each connection speaks its own byte value, so cross-talk would show."""
        return 0x10 + index % 200

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL is set to."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def errors(self) -> list[str]:
        """Every protocol violation seen on any connection."""
        return [e for s in self.sessions for e in s.errors]

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self.server = await websockets.serve(self._handle, "127.0.0.1", 0, **self.serve_options)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every session."""
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 5)
            self.server = None

    async def __aenter__(self) -> RealtimeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def check_connection(self, ws: Any, session: ModelSession) -> None:
        """Record what the API would refuse about how the client connected."""
        path = ws.request.path
        if not path.startswith("/v1/realtime?model="):
            session.errors.append(f"bad path {path}")
        if not (ws.request.headers.get("Authorization") or "").startswith("Bearer "):
            session.errors.append("no bearer key")

    async def _handle(self, ws: Any) -> None:
        if self.keep_sessions:
            self.paths.append(ws.request.path)
        session = self.session_class(ws, self, self.connections)
        self.connections += 1
        self.sessions.append(session)
        self.check_connection(ws, session)
        reader = asyncio.create_task(self._read(ws, session))
        try:
            await self.script(session)
        except websockets.ConnectionClosed:
            pass
        except BaseException as exc:  # a test reports it; the product logs it
            self.script_failed(session, exc)
        await reader
        if not self.keep_sessions:
            self.sessions.remove(session)

    def script_failed(self, session: ModelSession, error: BaseException) -> None:
        """A script raised (other than for its socket closing)."""
        self.script_errors.append(error)

    async def _read(self, ws: Any, session: ModelSession) -> None:
        try:
            async for raw in ws:
                await self.receive(session, raw)
        except websockets.ConnectionClosed:
            pass
        finally:
            session.closed_at = time.monotonic()
            session.closed.set()
            session.changed.set()

    async def receive(self, session: ModelSession, raw: str | bytes) -> None:
        """One client event: checked, refused where the API would, heard or kept."""
        try:
            event = self.validate(raw)
        except ValueError as exc:  # pydantic's and json's errors are ValueErrors
            session.errors.append(str(exc)[:500])
            return
        if not await session.accept(event):
            return
        if event.get("type") == "input_audio_buffer.append":
            session.hear(base64.b64decode(event.get("audio") or ""))
            if not self.keep_audio:
                return
        session.keep(event)


# ------------------------------------------------------------------ the demo caller


class Intent(enum.IntEnum):
    """What the simulated caller wants (its number travels in the caller's audio cue)."""

    BOOK = 1
    MOVE = 2
    CANCEL = 3

    @property
    def phrase(self) -> str:
        """What the caller asks for, as the command line announces it."""
        return {
            Intent.BOOK: "book a nurse visit",
            Intent.MOVE: "move their next visit",
            Intent.CANCEL: "cancel their next visit",
        }[self]


UNKNOWN_CALLER = 255  # the cue of a caller who is no demo patient
CUE_MAGIC = b"CMXSIM"


@dataclass(frozen=True)
class CallerPlan:
    """Who the simulated caller is (an index into the demo patients) and what they want."""

    patient: int
    intent: Intent

    @classmethod
    def for_phone(cls, phone: str, intent: Intent = Intent.BOOK) -> CallerPlan:
        """The demo patient with this phone (an unknown caller if none)."""
        for index, row in enumerate(PATIENTS):
            if row[3] == phone:
                return cls(index, intent)
        return cls(UNKNOWN_CALLER, intent)

    @property
    def known(self) -> bool:
        """Whether the caller is one of the demo patients."""
        return self.patient < len(PATIENTS)

    @property
    def full_name(self) -> str:
        """First and last name ("" for an unknown caller)."""
        return f"{PATIENTS[self.patient][0]} {PATIENTS[self.patient][1]}" if self.known else ""

    @property
    def born(self) -> date:
        """Date of birth (an unknown caller gives one no patient has)."""
        return PATIENTS[self.patient][2] if self.known else date(1900, 1, 1)

    @property
    def phone(self) -> str:
        """The number the call comes from."""
        return str(PATIENTS[self.patient][3]) if self.known else ""

    @property
    def time_zone(self) -> str:
        """The patient's zone."""
        return str(PATIENTS[self.patient][4]) if self.known else "UTC"

    def cue(self, frame_bytes: int) -> bytes:
        """One frame of caller audio that carries this plan."""
        marked = CUE_MAGIC + bytes([self.patient, self.intent.value])
        return marked + b"\xff" * (frame_bytes - len(marked))

    @classmethod
    def heard(cls, audio: bytes) -> CallerPlan | None:
        """The plan a frame of caller audio carries, if it is a cue."""
        if not audio.startswith(CUE_MAGIC) or len(audio) < len(CUE_MAGIC) + 2:
            return None
        patient, intent = audio[len(CUE_MAGIC)], audio[len(CUE_MAGIC) + 1]
        if intent not in {i.value for i in Intent}:
            return None
        return cls(patient, Intent(intent))


def _visit_day(time_zone: str, after: date | None = None) -> date:
    """A weekday at least two days ahead (and after `after`, when given)."""
    day = datetime.now(ZoneInfo(time_zone)).date() + timedelta(days=2)
    if after is not None and after >= day:
        day = after + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


_KIND_WORDS = {"phone": "phone", "video": "video", "home_visit": "home"}


class DemoCall:
    """The agent and the caller of one simulated conversation."""

    def __init__(self, model: ModelSession, pace: float) -> None:
        self.model = model
        self.pace = pace
        # Whether the bridge asks for the agent's next turn (response.create): it does for the
        # greeting and after a tool's output; after the caller speaks, turn detection does.
        self.bridge_asks = True

    async def speak(self, text: str) -> None:
        """The agent says `text` (mu-law silence of about its length, and its transcript)."""
        total_ms = min(len(text) * MS_PER_CHARACTER, 6000)
        chunks = max(1, -(-total_ms // CHUNK_MS))
        await self.model.say(
            text, chunks=chunks, chunk_ms=CHUNK_MS, wait_for_create=self.bridge_asks
        )
        self.bridge_asks = False
        # Let the caller hear it before they answer (speaking earlier would be a barge-in).
        await asyncio.sleep((chunks * CHUNK_MS / 1000 + 0.3) * self.pace)

    async def caller(self, text: str) -> None:
        """The caller speaks; turn detection then starts the agent's answer."""
        await self.model.user_says(text, after=0)
        self.bridge_asks = False

    async def tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """The agent calls a tool and gets its output."""
        result = await self.model.call_tool(name, arguments, wait_for_create=self.bridge_asks)
        self.bridge_asks = name != "end_call"
        return result

    async def goodbye(self, text: str) -> None:
        await self.speak(text)
        await self.tool("end_call", {})

    async def hand_over(self, why: str) -> None:
        await self.tool("transfer_to_staff", {"reason": f"{why} (simulated)"})
        await self.goodbye("A care coordinator will call you back. Goodbye.")

    async def plan(self) -> CallerPlan:
        """Who is calling: the cue in their audio, which the bridge relays from the start."""
        deadline = time.monotonic() + self.model.patience
        while self.model.cue is None and time.monotonic() < deadline:
            if self.model.closed.is_set():
                raise ConnectionError("the bridge closed the session")
            await asyncio.sleep(0.02)
        return self.model.cue or CallerPlan(UNKNOWN_CALLER, Intent.BOOK)

    async def run(self) -> None:
        """The whole conversation, from the greeting to the hang-up."""
        model = self.model
        await model.handshake()
        if model.of_type("conversation.item.create"):
            await self.speak("Sorry about that, we had a short interruption. Where were we?")
            return
        await self.speak("Hello, this is the Carematix scheduling assistant. How can I help you?")
        plan = await self.plan()
        wish = {
            Intent.BOOK: "I'd like to book a nurse visit.",
            Intent.MOVE: "I need to move my next visit.",
            Intent.CANCEL: "I need to cancel my next visit.",
        }[plan.intent]
        who = f"this is {plan.full_name}" if plan.known else "I'm calling about a visit"
        born = f"born {plan.born:%B} {plan.born.day}, {plan.born.year}"
        await self.caller(f"Hi, {who}, {born}. {wish}")
        verified = await self.tool(
            "verify_patient",
            {"date_of_birth": plan.born.isoformat(), "full_name": plan.full_name},
        )
        if "error" in verified:
            await self.speak("I'm sorry, I could not verify your details.")
            await self.hand_over("verification failed")
            return
        time_zone = str(verified.get("time_zone") or plan.time_zone)
        visits = (await self.tool("list_appointments", {})).get("appointments", [])
        if visits:
            await self.existing_visit(plan, visits[0], time_zone)
        elif plan.intent != Intent.BOOK:
            await self.speak("I don't see any upcoming visits for you. Shall I book one?")
            await self.caller("Yes, please.")
            await self.book(time_zone)
        else:
            await self.book(time_zone)

    async def existing_visit(self, plan: CallerPlan, visit: dict[str, Any], time_zone: str) -> None:
        """Mention the visit already booked; keep, move or cancel it as the caller wants."""
        kind = _KIND_WORDS.get(str(visit.get("kind")), "")
        await self.speak(
            f"I see you already have a {kind} visit with {visit['nurse_name']} on "
            f"{visit['spoken']}. Would you like to keep it, move it, or cancel it?"
        )
        if plan.intent == Intent.CANCEL:
            await self.caller("Please cancel it.")
            await self.speak(f"Just to confirm: cancel your visit on {visit['spoken']}?")
            await self.caller("Yes, cancel it.")
            cancelled = await self.tool(
                "cancel_appointment",
                {"appointment_id": visit["appointment_id"], "reason_code": "patient_request"},
            )
            if "error" in cancelled:
                await self.speak("I'm sorry, I could not cancel it.")
                await self.hand_over("cancellation failed")
                return
            await self.goodbye(f"Your visit on {cancelled['spoken']} is cancelled. Goodbye!")
        elif plan.intent == Intent.MOVE:
            await self.caller("Please move it to a later day, same time.")
            await self.move(visit, time_zone)
        else:
            await self.caller("I'll keep that one. I'd like another visit as well.")
            await self.book(time_zone, after=date.fromisoformat(visit["start"][:10]))

    async def free_time(self, day: date, clock: str) -> tuple[str, str] | None:
        """A free start (local YYYY-MM-DDTHH:MM) and its spoken form: the asked time or the
        first alternative the tool offers."""
        check = await self.tool("check_availability", {"date": day.isoformat(), "time": clock})
        if check.get("available"):
            return f"{day.isoformat()}T{clock}", str(check.get("spoken", ""))
        alternatives = check.get("alternatives") or []
        if not alternatives:
            return None
        return alternatives[0]["start"][:16], alternatives[0]["spoken"]

    async def move(self, visit: dict[str, Any], time_zone: str) -> None:
        """Find a later time for the visit, read it back and move it on a yes."""
        later = _visit_day(time_zone, after=date.fromisoformat(visit["start"][:10]))
        found = await self.free_time(later, visit["start"][11:16])
        if found is None:
            await self.speak("I'm sorry, nothing is free soon.")
            await self.hand_over("no free time")
            return
        new_start, spoken = found
        await self.speak(f"I can move it to {spoken}. Shall I do that?")
        await self.caller("Yes, please.")
        moved = await self.tool(
            "reschedule_appointment",
            {"appointment_id": visit["appointment_id"], "new_start": new_start},
        )
        if "error" in moved:
            await self.speak("I'm sorry, that time was just taken.")
            await self.hand_over("reschedule failed")
            return
        await self.goodbye(f"Done: your visit is now on {moved['spoken']}. Goodbye!")

    async def book(self, time_zone: str, *, after: date | None = None) -> None:
        """Find a time with the patient's nurse, read it back and book it on a yes."""
        nurse = await self.tool("get_assigned_nurse", {})
        found = await self.free_time(_visit_day(time_zone, after=after), "10:00")
        if found is None:
            await self.speak("I'm sorry, nothing is free soon.")
            await self.hand_over("no free time")
            return
        start, spoken = found
        await self.speak(
            f"{nurse.get('nurse_name', 'Your nurse')} can see you on {spoken}. "
            "Shall I book that for you?"
        )
        await self.caller("Yes, please.")
        booked = await self.tool(
            "book_appointment", {"start": start, "reason": "Routine visit (simulated call)"}
        )
        if "error" in booked:
            await self.speak("I'm sorry, that time was just taken.")
            await self.hand_over("booking failed")
            return
        await self.goodbye(f"You're booked for {booked['spoken']}. Goodbye!")


class SimulatedRealtime(RealtimeServer):
    """The product's simulator: the demo call on every connection, served on a free loopback
    port while the service runs."""

    def __init__(self, pace: float = 1.0) -> None:
        super().__init__(
            self._demo, keep_audio=False, keep_sessions=False, patience=DEMO_PATIENCE_SECONDS
        )
        self.pace = pace
        self._client: AsyncOpenAI | None = None

    async def start(self) -> None:
        """Listen on a free loopback port."""
        await super().start()
        logger.warning(
            "OPENAI_API_KEY is empty: simulated calls are answered by the built-in SIMULATOR"
        )

    async def connect(self, settings: Settings) -> Any:
        """Open a model socket to the simulator through the official SDK."""
        if self._client is None:
            self._client = AsyncOpenAI(api_key="simulated", base_url=self.base_url, max_retries=0)
        return await self._client.realtime.connect(model=settings.openai_realtime_model).enter()

    async def _demo(self, model: ModelSession) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            await DemoCall(model, self.pace).run()

    def script_failed(self, session: ModelSession, error: BaseException) -> None:
        """Logged by class only: a script's error may quote what the demo caller said."""
        logger.error("simulator: script failed (%s)", type(error).__name__)
