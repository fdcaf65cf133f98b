"""A scripted stand-in for the OpenAI Realtime API, for running and demonstrating the product
with no credentials at all.

It speaks the real GA protocol over a loopback WebSocket (the bridge connects to it through
the official SDK, exactly as to OpenAI), so a simulated call exercises the whole service:
the caller (the first demo patient) asks for a visit, the agent verifies them, finds their
nurse, checks a time, reads it back, books it on an explicit yes and hangs up. Calls served by
it are recorded with Call.simulated set.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
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


class DemoCaller:
    """Who the simulated caller is: the first demo patient of `make seed`."""

    first_name, last_name, born, phone, time_zone = (
        PATIENTS[0][0],
        PATIENTS[0][1],
        PATIENTS[0][2],
        PATIENTS[0][3],
        PATIENTS[0][4],
    )

    @classmethod
    def full_name(cls) -> str:
        """First and last name."""
        return f"{cls.first_name} {cls.last_name}"


def _visit_day(time_zone: str) -> date:
    day = datetime.now(ZoneInfo(time_zone)).date() + timedelta(days=2)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


class _Conversation:
    """One simulated model session (one call)."""

    def __init__(self, ws: Any, pace: float) -> None:
        self.ws = ws
        self.pace = pace
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.closed = False
        self._cursor: dict[str, int] = {}
        self._seq = 0

    def _id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}_sim_{self._seq}"

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", self._id("event"))
        await self.ws.send(json.dumps(event))

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                event = json.loads(raw)
                if event.get("type") != "input_audio_buffer.append":
                    self.events.append(event)
                    self.changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed = True
            self.changed.set()

    async def next(self, type_: str, call_id: str | None = None) -> dict[str, Any]:
        while True:
            for index in range(self._cursor.get(type_, 0), len(self.events)):
                event = self.events[index]
                if event.get("type") != type_:
                    continue
                if call_id is not None and (event.get("item") or {}).get("call_id") != call_id:
                    continue
                self._cursor[type_] = index + 1
                return event
            if self.closed:
                raise ConnectionError("the bridge closed the session")
            self.changed.clear()
            await self.changed.wait()

    async def say(self, text: str) -> None:
        """Answer a response.create with audio (mu-law silence) and its transcript."""
        await self.next("response.create")
        response_id, item_id = self._id("resp"), self._id("item")
        await self.send({"type": "response.created", "response": {"id": response_id}})
        total_ms = min(len(text) * MS_PER_CHARACTER, 6000)
        sent = 0
        while sent < total_ms:
            ms = min(CHUNK_MS, total_ms - sent)
            sent += ms
            await self.send(
                {
                    "type": "response.output_audio.delta",
                    "response_id": response_id,
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": base64.b64encode(b"\xff" * (ms * 8)).decode(),
                }
            )
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
        await self.send({"type": "response.done", "response": {"id": response_id}})
        # Let the caller hear it before they answer (speaking earlier would be a barge-in).
        await asyncio.sleep((total_ms / 1000 + 0.3) * self.pace)

    async def caller_says(self, text: str) -> None:
        item_id = self._id("item")
        await self.send({"type": "input_audio_buffer.speech_started", "item_id": item_id})
        await self.send({"type": "input_audio_buffer.speech_stopped", "item_id": item_id})
        await self.send({"type": "input_audio_buffer.committed", "item_id": item_id})
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": text,
            }
        )

    async def tool(
        self, name: str, arguments: dict[str, Any], *, after_response_create: bool = True
    ) -> dict[str, Any]:
        """Call one function and return the bridge's output for it."""
        if after_response_create:
            await self.next("response.create")
        response_id, item_id, call_id = self._id("resp"), self._id("item"), self._id("call")
        await self.send({"type": "response.created", "response": {"id": response_id}})
        await self.send(
            {
                "type": "response.function_call_arguments.done",
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "call_id": call_id,
                "name": name,
                "arguments": json.dumps(arguments),
            }
        )
        await self.send({"type": "response.done", "response": {"id": response_id}})
        output = await self.next("conversation.item.create", call_id=call_id)
        result: dict[str, Any] = json.loads(output["item"]["output"])
        return result

    async def run(self) -> None:
        await self.send({"type": "session.created", "session": {"type": "realtime"}})
        update = await self.next("session.update")
        await self.send({"type": "session.updated", "session": update.get("session", {})})
        if any(e.get("type") == "conversation.item.create" for e in self.events):
            await self.say("Sorry about that, we had a short interruption. Where were we?")
            return
        caller = DemoCaller
        await self.say("Hello, this is the Carematix scheduling assistant. How can I help you?")
        await self.caller_says(
            f"Hi, this is {caller.full_name()}, born {caller.born:%B} {caller.born.day}, "
            f"{caller.born.year}. I'd like to book a nurse visit."
        )
        verified = await self.tool(
            "verify_patient",
            {"date_of_birth": caller.born.isoformat(), "full_name": caller.full_name()},
            after_response_create=False,
        )
        if "error" in verified:
            await self.say("I'm sorry, I could not verify your details.")
            await self.tool(
                "transfer_to_staff",
                {"reason": "verification failed (simulated)"},
                after_response_create=False,
            )
            await self.say("A care coordinator will call you back. Goodbye.")
            await self.tool("end_call", {}, after_response_create=False)
            return
        nurse = await self.tool("get_assigned_nurse", {})
        day = _visit_day(str(verified.get("time_zone") or caller.time_zone))
        check = await self.tool("check_availability", {"date": day.isoformat(), "time": "10:00"})
        start, spoken = f"{day.isoformat()}T10:00", check.get("spoken", "")
        if not check.get("available"):
            alternatives = check.get("alternatives") or []
            if not alternatives:
                await self.say("I'm sorry, nothing is free soon.")
                await self.tool(
                    "transfer_to_staff",
                    {"reason": "no free time (simulated)"},
                    after_response_create=False,
                )
                await self.say("A care coordinator will call you back. Goodbye.")
                await self.tool("end_call", {}, after_response_create=False)
                return
            start, spoken = alternatives[0]["start"][:16], alternatives[0]["spoken"]
        await self.say(
            f"{nurse.get('nurse_name', 'Your nurse')} can see you on {spoken}. "
            "Shall I book that for you?"
        )
        await self.caller_says("Yes, please.")
        booked = await self.tool(
            "book_appointment",
            {"start": start, "reason": "Routine visit (simulated call)"},
            after_response_create=False,
        )
        if "error" in booked:
            await self.say("I'm sorry, that time was just taken. A coordinator will call you.")
        else:
            await self.say(f"You're booked for {booked['spoken']}. Goodbye!")
        await self.tool("end_call", {}, after_response_create=False)


class SimulatedRealtime:
    """The scripted Realtime peer, served on a free loopback port while the service runs."""

    def __init__(self, pace: float = 1.0) -> None:
        self.pace = pace
        self._server: Any = None
        self.port = 0
        self.connections = 0
        self._client: AsyncOpenAI | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL that reaches this peer."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await websockets.serve(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.warning(
            "OPENAI_API_KEY is empty: simulated calls are answered by the built-in SIMULATOR"
        )

    async def stop(self) -> None:
        """Stop listening and drop every simulated session."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def connect(self, settings: Settings) -> Any:
        """Open a model socket to the simulator through the official SDK."""
        if self._client is None:
            self._client = AsyncOpenAI(api_key="simulated", base_url=self.base_url, max_retries=0)
        return await self._client.realtime.connect(model=settings.openai_realtime_model).enter()

    async def _handle(self, ws: Any) -> None:
        self.connections += 1
        conversation = _Conversation(ws, self.pace)
        reader = asyncio.create_task(conversation.read())
        try:
            await conversation.run()
            await reader
        except (ConnectionError, websockets.ConnectionClosed):
            pass
        except Exception as exc:
            logger.error("simulator: script failed (%s)", type(exc).__name__)
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
