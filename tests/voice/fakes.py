"""Loopback fakes that speak the real wire protocols: Twilio (webhooks, media stream, REST) and
the OpenAI Realtime API (GA events, served by the product's simulator, voice.simulator), plus a
helper serving any ASGI app as production does.

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
from voice.simulator import ModelSession, RealtimeServer, Script, silence

__all__ = ["FakeModelSession", "FakeRealtime", "Script", "silence"]

CLIENT_EVENTS: TypeAdapter[Any] = TypeAdapter(RealtimeClientEvent)
FRAME_MS = 20
# A call may be in flight a while before its instance drains (a test's crash and restart first).
WIND_DOWN_PATIENCE_SECONDS = 120.0
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


# The product's simulator serves the protocol; the tests add the SDK's type checks to it.
FakeModelSession = ModelSession


class FakeRealtime(RealtimeServer):
    """The simulator's Realtime server with every client event checked against the openai
    SDK's types (an event they refuse is a protocol error the test reports)."""

    def __init__(self, script: Script) -> None:
        super().__init__(script, validate=validate_client_event)

    async def __aenter__(self) -> FakeRealtime:
        await self.start()
        return self


async def greet_then_idle(model: FakeModelSession) -> None:
    """Handshake, say hello, then wait for the bridge to close the socket."""
    await model.handshake()
    await model.say("Hello, this is the Carematix scheduling assistant.")
    await model.closed.wait()


async def idle(model: FakeModelSession) -> None:
    """A script that only completes the handshake and then waits."""
    await model.handshake()
    await model.closed.wait()


async def greet_then_say_goodbye_when_asked(model: FakeModelSession) -> None:
    """Greets; when asked to speak again (the wind-down), however late, says goodbye."""
    await model.handshake()
    await model.say("Hello, this is the Carematix scheduling assistant.")
    await model.next("response.create", timeout=WIND_DOWN_PATIENCE_SECONDS)
    await model.say(
        "I have to end our call now; a coordinator will call you back. Goodbye.",
        wait_for_create=False,
    )
    await model.closed.wait()


@dataclass
class Answer:
    """What /incoming-call answered."""

    status: int
    body: str
    stream_url: str = ""
    params: dict[str, str] = field(default_factory=dict)
