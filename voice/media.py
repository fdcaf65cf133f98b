"""WS /media-stream[/<instance>]: authenticate Twilio's media stream, then hand it to a CallSession.

The stream is served as a plain ASGI route in front of Quart (`MediaStreamRoute`, wrapped
around `app.asgi_app` as Quart documents for ASGI middleware), on uvicorn's stock protocol.
Each call relays about a hundred WebSocket messages a second. Quart's websocket wrapper moves
each one through a task of its own into an unbounded queue: measured side by side, that hop
raised the relay's p99 from 6 ms to 160-1,050 ms at 50 calls, and, since the queue drains
uvicorn's as fast as it can, a busy service no longer stops reading its sockets
(docs/performance.md). Here the handler reads uvicorn's `receive` itself, so uvicorn's flow
control holds. Webhooks and everything else stay Quart routes, and the handler runs inside the
Quart app context like they do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from quart import Quart, current_app
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.db import transaction
from core.logging_setup import CURRENT_CALL_ID
from core.metrics import CALLS_ACTIVE
from core.models import Call
from core.services import calls
from voice import (
    get_database,
    get_drain,
    get_finishing_calls,
    get_instance_name,
    get_log_writer,
    get_preopened_models,
    get_settings,
    get_tool_processes,
    get_twilio,
    realtime_connect,
    simulator_running,
)
from voice.protocol import Connected, Media, ProtocolError, Start, parse_twilio
from voice.security import (
    is_stream_path,
    media_stream_url,
    read_stream_token,
    simulator_signature_ok,
    twilio_signature_ok,
)
from voice.session import MODEL_RECYCLE_SECONDS, CallSession
from voice.tools import CallContext, ToolBox

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 10
MAX_FRAMES_BEFORE_START = 20
POLICY_VIOLATION = 1008
NORMAL_CLOSURE = 1000


class TwilioHungUp(ConnectionError):
    """Twilio closed the media stream (the call ended or the socket dropped)."""


class TwilioStream:
    """The Twilio side of one call: the ASGI WebSocket, spoken to directly."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.closed = False

    def header(self, name: str) -> str | None:
        """A request header of the upgrade (None when absent)."""
        wanted = name.lower().encode("latin-1")
        for key, value in self.scope.get("headers", ()):
            if key.lower() == wanted:
                return bytes(value).decode("latin-1")
        return None

    async def wait_for_connect(self) -> bool:
        """The upgrade request's `websocket.connect` (False if the client left already)."""
        message = await self._receive()
        return message["type"] == "websocket.connect"

    async def refuse(self, status: int, body: str) -> None:
        """Answer the upgrade with an HTTP error instead of accepting it."""
        self.closed = True
        if "websocket.http.response" in self.scope.get("extensions", {}):
            await self._send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await self._send({"type": "websocket.http.response.body", "body": body.encode()})
        else:
            await self._send({"type": "websocket.close", "code": POLICY_VIOLATION})  # a 403

    async def accept(self) -> None:
        """Complete the WebSocket handshake."""
        await self._send({"type": "websocket.accept"})

    async def receive(self) -> str | bytes:
        """The next frame; TwilioHungUp once the stream is gone."""
        message = await self._receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            return text if text is not None else (message.get("bytes") or b"")
        self.closed = True
        raise TwilioHungUp("media stream closed")

    async def send(self, data: str) -> None:
        """One text frame to Twilio."""
        await self._send({"type": "websocket.send", "text": data})

    async def close(self, code: int = NORMAL_CLOSURE) -> None:
        """Close the stream (once)."""
        if not self.closed:
            self.closed = True
            await self._send({"type": "websocket.close", "code": code})


class MediaStreamRoute:
    """ASGI middleware: WS /media-stream goes straight to `media_stream`, the rest to Quart."""

    def __init__(self, app: Quart, inner: ASGIApp) -> None:
        self.app = app
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI connection."""
        if scope["type"] == "websocket" and is_stream_path(scope["path"]):
            async with self.app.app_context():
                await media_stream(TwilioStream(scope, receive, send))
            return
        await self.inner(scope, receive, send)


async def _wait_for_start(twilio: TwilioStream) -> Start | None:
    """The stream's `start` message; None if something else (or nothing) comes first."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    for _ in range(MAX_FRAMES_BEFORE_START):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            frame = await asyncio.wait_for(twilio.receive(), remaining)
            event = parse_twilio(frame)
        except (TimeoutError, ProtocolError, TwilioHungUp):
            return None
        if isinstance(event, Start):
            return event
        if not isinstance(event, Connected | Media):
            return None
        # `connected`, and any audio before `start` (it has no stream yet), are skipped.
    return None


def _load_context(
    sessions: sessionmaker[Session], call_sid: str, nonce: str, instance: str
) -> CallContext | None:
    """Consume the stream token (once; this instance now holds the call) and describe the call
    for its tools."""
    with transaction(sessions) as session:
        if not calls.consume_stream_token(
            session, call_sid=call_sid, nonce=nonce, now=datetime.now(UTC), instance=instance
        ):
            return None
        call = calls.get_call_by_sid(session, call_sid)
        assert isinstance(call, Call)
        return CallContext(
            call_id=call.id,
            call_sid=call_sid,
            direction=call.direction,
            from_number=call.from_number,
            to_number=call.to_number,
            simulated=call.simulated,
        )


async def media_stream(twilio: TwilioStream) -> None:
    """Twilio's bidirectional media stream for one call."""
    if not await twilio.wait_for_connect():
        return
    settings = get_settings(current_app)
    simulated = bool(current_app.config.get("SIMULATED"))
    signature = twilio.header("X-Twilio-Signature")
    # Twilio signs the URL it was given, which names the instance that answered the call.
    url = media_stream_url(settings, twilio.scope["path"])
    if not twilio_signature_ok(settings, url, {}, signature, simulated=simulated) and not (
        simulator_running(current_app) and simulator_signature_ok(settings, url, {}, signature)
    ):
        logger.warning("refused a media stream: missing or invalid Twilio signature")
        await twilio.refuse(403, "Forbidden")
        return
    database = get_database(current_app)
    if database is None:
        await twilio.refuse(503, "Unavailable")
        return
    await twilio.accept()
    try:
        await _bridge(twilio, settings, database.sessions)
    finally:
        await twilio.close()


async def _bridge(
    twilio: TwilioStream, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    start = await _wait_for_start(twilio)
    if start is None:
        logger.warning("media stream closed: no valid start message")
        await twilio.close(POLICY_VIOLATION)
        return
    claim = read_stream_token(
        settings, start.custom_parameters.get("token"), call_sid=start.call_sid
    )
    context = None
    if claim is not None:
        context = await asyncio.to_thread(
            _load_context, sessions, claim.call_sid, claim.nonce, get_instance_name(current_app)
        )
    if context is None:
        logger.warning("media stream closed: missing, invalid, expired or reused token")
        await twilio.close(POLICY_VIOLATION)
        return
    # Every log line of this call (and of the tasks it starts) carries its id.
    CURRENT_CALL_ID.set(context.call_id)
    toolbox = ToolBox(
        sessions,
        context,
        staff_phone_number=settings.staff_phone_number,
        can_transfer=bool(settings.twilio_account_sid and settings.twilio_auth_token),
        processes=get_tool_processes(current_app),
    )
    session = CallSession(
        settings=settings,
        sessions=sessions,
        twilio=twilio,
        stream_sid=start.stream_sid,
        toolbox=toolbox,
        rest=get_twilio(current_app),
        # Whether the call is simulated is what its row says, as /incoming-call recorded it.
        connect=realtime_connect(current_app, simulated_call=context.simulated),
        preopened=get_preopened_models(current_app).take(context.call_sid),
        recycle_after=current_app.config.get("MODEL_RECYCLE_SECONDS", MODEL_RECYCLE_SECONDS),
        simulated=context.simulated,
        finishing=get_finishing_calls(current_app),
        log_writer=get_log_writer(current_app),
    )
    logger.info("call %s: media stream started", context.call_id)
    with get_drain(current_app).live(session), CALLS_ACTIVE.track_inprogress():
        await session.run()
    logger.info("call %s: media stream ended", context.call_id)
