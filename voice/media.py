"""WS /media-stream: authenticate Twilio's media stream, then hand it to a CallSession.

A Quart websocket route like any other: Quart accepts the upgrade, queues each received
message for `websocket.receive()`, and cancels the handler when Twilio disconnects (the
CallSession then closes its model socket and stores the call, shielded from that cancel).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from quart import Blueprint, current_app, websocket
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.db import transaction
from core.models import Call
from core.services import calls
from voice import (
    get_database,
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
    MEDIA_STREAM_PATH,
    media_stream_url,
    read_stream_token,
    simulator_signature_ok,
    twilio_signature_ok,
)
from voice.session import MODEL_RECYCLE_SECONDS, CallSession
from voice.tools import CallContext, ToolBox

logger = logging.getLogger(__name__)

bp = Blueprint("media", __name__)

START_TIMEOUT_SECONDS = 10
MAX_FRAMES_BEFORE_START = 20
POLICY_VIOLATION = 1008


class TwilioStream:
    """The Twilio side of one call: this request's Quart websocket."""

    def __init__(self) -> None:
        # Bound once: each message then skips the context-local proxy lookup.
        self._receive = websocket.receive
        self._send = websocket.send

    async def receive(self) -> str | bytes:
        """The next message (the handler is cancelled once Twilio has gone)."""
        return await self._receive()

    async def send(self, data: str) -> None:
        """One text message to Twilio."""
        await self._send(data)


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
        except (TimeoutError, ProtocolError):
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


@bp.websocket(MEDIA_STREAM_PATH)
async def media_stream() -> tuple[str, int] | None:
    """Twilio's bidirectional media stream for one call."""
    settings = get_settings(current_app)
    simulated = bool(current_app.config.get("SIMULATED"))
    signature = websocket.headers.get("X-Twilio-Signature")
    url = media_stream_url(settings)
    if not twilio_signature_ok(settings, url, {}, signature, simulated=simulated) and not (
        simulator_running(current_app) and simulator_signature_ok(settings, url, {}, signature)
    ):
        logger.warning("refused a media stream: missing or invalid Twilio signature")
        return "Forbidden", 403  # an HTTP answer to the upgrade: it is never accepted
    database = get_database(current_app)
    if database is None:
        return "Unavailable", 503
    await websocket.accept()
    await _bridge(TwilioStream(), settings, database.sessions)
    return None  # Quart closes the socket (1000) unless _bridge closed it already


async def _bridge(
    twilio: TwilioStream, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    start = await _wait_for_start(twilio)
    if start is None:
        logger.warning("media stream closed: no valid start message")
        await websocket.close(POLICY_VIOLATION)
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
        await websocket.close(POLICY_VIOLATION)
        return
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
    await session.run()
    logger.info("call %s: media stream ended", context.call_id)
