"""Loopback fakes that speak the real wire protocols: Twilio (webhooks, media stream, REST) and
the OpenAI Realtime API (GA events), plus a helper serving any ASGI app as production does.

Nothing of the product is mocked: the voice service runs under uvicorn, configured by
`voice.server` as in production, on a free port, and
every byte between it and these fakes crosses a real socket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

import uvicorn
import websockets
from openai.types.realtime import RealtimeClientEvent
from pydantic import BaseModel, TypeAdapter
from quart import Quart, request
from twilio.request_validator import RequestValidator

from voice.server import bound_socket, server_config

CLIENT_EVENTS: TypeAdapter[Any] = TypeAdapter(RealtimeClientEvent)
FRAME_MS = 20
FRAME_BYTES = 160


# ------------------------------------------------------------------ serving an ASGI app


@contextlib.asynccontextmanager
async def served(app: Any, **overrides: Any) -> AsyncIterator[str]:
    """Serve `app` with the production server settings (plus `overrides`) on a free loopback
    port; yields its http:// base URL."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    options = {"timeout_graceful_shutdown": 1, "log_level": "warning", **overrides}
    server = uvicorn.Server(server_config(app, port=port, **options))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            if task.done():
                task.result()
                raise RuntimeError("the server stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)  # calls still finishing are waited for
        sock.close()


# ------------------------------------------------------------------ Twilio signatures


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature for `url` and POST `params`, as Twilio computes it."""
    return RequestValidator(auth_token).compute_signature(url, params)


def twiml_verbs(xml: str) -> list[tuple[str, str, dict[str, str]]]:
    """The verbs of a TwiML document in order: (name, text, attributes)."""
    root = ElementTree.fromstring(xml)
    assert root.tag == "Response", xml
    return [(verb.tag, (verb.text or "").strip(), dict(verb.attrib)) for verb in root]


def parse_stream_twiml(xml: str) -> tuple[str, dict[str, str]]:
    """The <Stream url> and its <Parameter>s from an answer TwiML."""
    root = ElementTree.fromstring(xml)
    stream = root.find("./Connect/Stream")
    assert stream is not None, xml
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), params


# ------------------------------------------------------------------ Twilio REST


@dataclass
class RestCall:
    """One request the fake Twilio REST API received."""

    path: str
    form: dict[str, str]


class FakeTwilioRest:
    """Twilio's Calls API on loopback: records requests; hang-ups and transfers end the call."""

    def __init__(self) -> None:
        self.requests: list[RestCall] = []
        self.created: list[str] = []  # CallSids handed out by Calls create, in order
        self.on_update: dict[str, Callable[[dict[str, str]], Awaitable[None]]] = {}
        self.app = Quart("fake_twilio_rest")
        self.app.add_url_rule(
            "/2010-04-01/Accounts/<account>/Calls.json", view_func=self._create, methods=["POST"]
        )
        self.app.add_url_rule(
            "/2010-04-01/Accounts/<account>/Calls/<sid>.json",
            view_func=self._update,
            methods=["POST"],
        )

    async def _create(self, account: str) -> tuple[dict[str, Any], int]:
        form = dict((await request.form).items())
        self.requests.append(RestCall(request.path, form))
        sid = "CA" + uuid.uuid4().hex
        self.created.append(sid)
        return {"sid": sid, "account_sid": account, "status": "queued", "to": form.get("To")}, 201

    async def _update(self, account: str, sid: str) -> dict[str, Any]:
        form = dict((await request.form).items())
        self.requests.append(RestCall(request.path, form))
        handler = self.on_update.get(sid)
        if handler is not None:
            asyncio.get_running_loop().create_task(handler(form))
        return {"sid": sid, "account_sid": account, "status": form.get("Status", "in-progress")}

    def updates(self, sid: str) -> list[dict[str, str]]:
        """The update requests made for one call."""
        return [r.form for r in self.requests if r.path.endswith(f"/Calls/{sid}.json")]


# ------------------------------------------------------------------ Twilio media stream


class FakeTwilioCall:
    """Twilio's side of a bidirectional media stream.

    Sends `connected`, `start` and 20 ms `media` frames; plays received audio through a
    playout buffer (at `speed` times real time, or only when `play()` is called), echoing each
    mark once the audio before it has played; honours `clear` (drops queued audio and echoes
    its marks at once, as Twilio does); sends `stop`.
    """

    def __init__(self, ws_url: str, *, audio_byte: int = 0x7F, speed: float = 10.0) -> None:
        self.ws_url = ws_url
        self.audio_byte = audio_byte
        self.speed = speed
        self.auto_play = True
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.ws: Any = None
        self.received: list[dict[str, Any]] = []
        self.buffer: list[tuple[str, Any]] = []  # ("audio", ms) or ("mark", name)
        self.played_ms = 0.0
        self.audio_received_ms = 0.0
        self.audio_bytes: set[int] = set()
        self.clears = 0
        self.media_after_clear = 0
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._sending_audio = False

    async def connect(self, signature: str | None) -> None:
        """Open the WebSocket (raises InvalidStatus when the upgrade is refused)."""
        headers = {"X-Twilio-Signature": signature} if signature is not None else {}
        self.ws = await websockets.connect(self.ws_url, additional_headers=headers)
        self._tasks.append(asyncio.create_task(self._receive()))
        self._tasks.append(asyncio.create_task(self._playout()))

    async def start(self, call_sid: str, parameters: dict[str, str]) -> None:
        """Send `connected` and `start`, then caller audio every 20 ms."""
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": self.stream_sid,
                "start": {
                    "streamSid": self.stream_sid,
                    "accountSid": "AC" + "0" * 32,
                    "callSid": call_sid,
                    "tracks": ["inbound"],
                    "customParameters": parameters,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
        self._sending_audio = True
        self._tasks.append(asyncio.create_task(self._send_audio()))

    async def send(self, message: dict[str, Any] | str) -> None:
        """Send one frame (a dict is JSON-encoded)."""
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def dtmf(self, digit: str) -> None:
        """The caller presses a key."""
        await self.send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": "5",
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def probe(self, byte: int) -> None:
        """One media frame of `byte`: once the model has it, the bridge has read all before it."""
        payload = base64.b64encode(bytes([byte]) * FRAME_BYTES).decode()
        await self.send(
            {
                "event": "media",
                "sequenceNumber": "0",
                "streamSid": self.stream_sid,
                "media": {"track": "inbound", "chunk": "0", "timestamp": "0", "payload": payload},
            }
        )

    async def stop(self) -> None:
        """The call ends: Twilio sends `stop` and closes the socket."""
        self._sending_audio = False
        with contextlib.suppress(Exception):
            await self.send(
                {
                    "event": "stop",
                    "streamSid": self.stream_sid,
                    "stop": {"accountSid": "AC" + "0" * 32, "callSid": "CA"},
                }
            )
        await self.close()

    async def close(self) -> None:
        """Close the socket and stop the background tasks."""
        self._sending_audio = False
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def play(self, ms: float) -> None:
        """Manual playout: play `ms` of queued audio, echoing the marks reached."""
        await self._play(ms)

    async def wait_closed(self, timeout: float = 5) -> None:
        """Until the service closes the socket."""
        await asyncio.wait_for(self.closed.wait(), timeout)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5) -> None:
        """Poll until `predicate()` holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met")
            await asyncio.sleep(0.01)

    async def _send_audio(self) -> None:
        payload = base64.b64encode(bytes([self.audio_byte]) * FRAME_BYTES).decode()
        chunk = 0
        while self._sending_audio:
            chunk += 1
            with contextlib.suppress(Exception):
                await self.send(
                    {
                        "event": "media",
                        "sequenceNumber": str(chunk + 1),
                        "streamSid": self.stream_sid,
                        "media": {
                            "track": "inbound",
                            "chunk": str(chunk),
                            "timestamp": str(chunk * FRAME_MS),
                            "payload": payload,
                        },
                    }
                )
            await asyncio.sleep(FRAME_MS / 1000)

    async def _receive(self) -> None:
        try:
            async for frame in self.ws:
                message = json.loads(frame)
                self.received.append(message)
                event = message.get("event")
                assert message.get("streamSid") == self.stream_sid, message
                if event == "media":
                    audio = base64.b64decode(message["media"]["payload"])
                    self.audio_bytes.update(set(audio))
                    ms = len(audio) / 8
                    self.audio_received_ms += ms
                    if self.clears:
                        self.media_after_clear += 1
                    self.buffer.append(("audio", ms))
                elif event == "mark":
                    assert message["mark"]["name"]
                    self.buffer.append(("mark", message["mark"]["name"]))
                    await self._play(0)
                elif event == "clear":
                    self.clears += 1
                    marks = [value for kind, value in self.buffer if kind == "mark"]
                    self.buffer.clear()
                    for name in marks:
                        await self._echo(name)
        except websockets.ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd else None
        finally:
            if self.ws is not None and self.ws.close_code is not None:
                self.close_code = self.close_code or self.ws.close_code
            self.closed.set()

    async def _playout(self) -> None:
        while True:
            await asyncio.sleep(FRAME_MS / 1000)
            if self.auto_play:
                await self._play(FRAME_MS * self.speed)

    async def _play(self, ms: float) -> None:
        budget = ms
        while self.buffer:
            kind, value = self.buffer[0]
            if kind == "mark":
                self.buffer.pop(0)
                await self._echo(value)
                continue
            if budget <= 0:
                break
            played = min(budget, value)
            budget -= played
            self.played_ms += played
            if played >= value:
                self.buffer.pop(0)
            else:
                self.buffer[0] = ("audio", value - played)

    async def _echo(self, name: str) -> None:
        with contextlib.suppress(Exception):
            await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    def sent_events(self, event: str) -> list[dict[str, Any]]:
        """Messages of one kind the service sent to this call."""
        return [m for m in self.received if m.get("event") == event]


# ------------------------------------------------------------------ OpenAI Realtime


def _extra_fields(model: Any, path: str = "") -> list[str]:
    """Fields the SDK's types do not define, anywhere in a validated event (typos, beta names)."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        for key in model.model_extra or {}:
            found.append(f"{path}.{key}")
        for name in type(model).model_fields:
            found += _extra_fields(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list | tuple):
        for index, value in enumerate(model):
            found += _extra_fields(value, f"{path}[{index}]")
    elif isinstance(model, dict):
        for key, value in model.items():
            found += _extra_fields(value, f"{path}.{key}")
    return found


def validate_client_event(raw: str | bytes) -> dict[str, Any]:
    """A client event checked against the openai SDK's typed definitions; raises ValueError."""
    event = json.loads(raw)
    model = CLIENT_EVENTS.validate_python(event)
    extra = _extra_fields(model)
    if extra:
        raise ValueError(f"{event.get('type')}: fields unknown to the SDK: {extra}")
    if event["type"] == "input_audio_buffer.append":
        base64.b64decode(event["audio"], validate=True)
    if (
        event["type"] == "conversation.item.create"
        and event["item"]["type"] == "function_call_output"
    ):
        json.loads(event["item"]["output"])
    return event


def silence(ms: int, byte: int = 0xFF) -> str:
    """Base64 mu-law audio of `ms` milliseconds."""
    return base64.b64encode(bytes([byte]) * (ms * 8)).decode()


class FakeModelSession:
    """One Realtime connection as the fake server sees it; scripts drive it."""

    def __init__(self, ws: Any, server: FakeRealtime, index: int) -> None:
        self.ws = ws
        self.server = server
        self.index = index
        self.received: list[dict[str, Any]] = []
        self.errors: list[str] = []
        # Client events the API would refuse with an `error` event (not in `received`).
        self.refused: list[dict[str, Any]] = []
        self.audio_bytes: set[int] = set()
        self.appended_ms = 0.0
        self.active_response: str | None = None
        self.call_ids: set[str] = set()  # function calls in this session's conversation
        self.closed_at: float | None = None
        self.closed = asyncio.Event()
        self._cursor: dict[str, int] = {}
        self._changed = asyncio.Event()
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
        """Whether the API would take this (valid) client event; refuses it as the API does."""
        kind = event["type"]
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
            item = event["item"]
            if item["type"] == "function_call":
                if not item.get("call_id") or item["call_id"] in self.call_ids:
                    await self.refuse(event, "invalid_value", "Bad or repeated call_id.")
                    return False
                self.call_ids.add(item["call_id"])
            elif item["type"] == "function_call_output" and item["call_id"] not in self.call_ids:
                await self.refuse(event, "invalid_value", "No function call with that call_id.")
                return False
        return True

    async def next(
        self,
        type_: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 5,
    ) -> dict[str, Any]:
        """The next client event of `type_` (after the last one returned) matching `predicate`."""
        deadline = time.monotonic() + timeout
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
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        """Every client event of one type received so far."""
        return [e for e in self.received if e["type"] == type_]

    async def handshake(self) -> dict[str, Any]:
        """session.created, then wait for session.update and confirm it; returns the session."""
        await self.send({"type": "session.created", "session": {"type": "realtime"}})
        update = await self.next("session.update")
        await self.send({"type": "session.updated", "session": update["session"]})
        return update["session"]

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
        timeout: float = 5,
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
        return json.loads(output["item"]["output"])

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


Script = Callable[[FakeModelSession], Awaitable[None]]


class FakeRealtime:
    """A Realtime API server on loopback that the official SDK connects to via base_url."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.sessions: list[FakeModelSession] = []
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

    async def __aenter__(self) -> FakeRealtime:
        self.server = await websockets.serve(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    @property
    def errors(self) -> list[str]:
        """Every protocol violation seen on any connection."""
        return [e for s in self.sessions for e in s.errors]

    async def _handle(self, ws: Any) -> None:
        self.paths.append(ws.request.path)
        session = FakeModelSession(ws, self, len(self.sessions))
        self.sessions.append(session)
        if not ws.request.path.startswith("/v1/realtime?model="):
            session.errors.append(f"bad path {ws.request.path}")
        if not (ws.request.headers.get("Authorization") or "").startswith("Bearer "):
            session.errors.append("no bearer key")
        reader = asyncio.create_task(self._read(ws, session))
        try:
            await self.script(session)
        except websockets.ConnectionClosed:
            pass
        except BaseException as exc:  # reported by the test
            self.script_errors.append(exc)
        await reader

    async def _read(self, ws: Any, session: FakeModelSession) -> None:
        try:
            async for raw in ws:
                try:
                    event = validate_client_event(raw)
                except Exception as exc:
                    session.errors.append(str(exc)[:500])
                    continue
                if not await session.accept(event):
                    continue
                if event["type"] == "input_audio_buffer.append":
                    audio = base64.b64decode(event["audio"])
                    session.audio_bytes.update(set(audio))
                    session.appended_ms += len(audio) / 8
                session.received.append(event)
                session._changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            session.closed_at = time.monotonic()
            session.closed.set()
            session._changed.set()


async def idle(model: FakeModelSession) -> None:
    """A script that only completes the handshake and then waits."""
    await model.handshake()
    await model.closed.wait()


@dataclass
class Answer:
    """What /incoming-call answered."""

    status: int
    body: str
    stream_url: str = ""
    params: dict[str, str] = field(default_factory=dict)
