"""WS /media-stream: authenticate Twilio's media stream, then hand it to a CallSession."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from quart import Blueprint, Response, current_app, websocket
from sqlalchemy.orm import Session, sessionmaker

from core.db import transaction
from core.models import Call
from core.services import calls
from voice import get_database, get_preopened_models, get_settings, get_twilio
from voice.protocol import Connected, Media, ProtocolError, Start, parse_twilio
from voice.security import media_stream_url, read_stream_token, twilio_signature_ok
from voice.session import MODEL_RECYCLE_SECONDS, CallSession
from voice.tools import CallContext, ToolBox

logger = logging.getLogger(__name__)

bp = Blueprint("media", __name__)

START_TIMEOUT_SECONDS = 10
MAX_FRAMES_BEFORE_START = 20
POLICY_VIOLATION = 1008


async def _wait_for_start() -> Start | None:
    """The stream's `start` message; None if something else (or nothing) comes first."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    for _ in range(MAX_FRAMES_BEFORE_START):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            frame = await asyncio.wait_for(websocket.receive(), remaining)
            event = parse_twilio(frame)
        except (TimeoutError, ProtocolError):
            return None
        if isinstance(event, Start):
            return event
        if not isinstance(event, Connected | Media):
            return None
        # `connected`, and any audio before `start` (it has no stream yet), are skipped.
    return None


def _load_context(sessions: sessionmaker[Session], call_sid: str, nonce: str) -> CallContext | None:
    """Consume the stream token (once) and describe the call for its tools."""
    with transaction(sessions) as session:
        if not calls.consume_stream_token(
            session, call_sid=call_sid, nonce=nonce, now=datetime.now(UTC)
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
        )


@bp.websocket("/media-stream")
async def media_stream() -> Response | None:
    """Twilio's bidirectional media stream for one call."""
    settings = get_settings(current_app)
    signature = websocket.headers.get("X-Twilio-Signature")
    simulated = bool(current_app.config.get("SIMULATED"))
    if not twilio_signature_ok(
        settings, media_stream_url(settings), {}, signature, simulated=simulated
    ):
        logger.warning("refused a media stream: missing or invalid Twilio signature")
        return Response("Forbidden", status=403, mimetype="text/plain")
    database = get_database(current_app)
    if database is None:
        return Response("Unavailable", status=503, mimetype="text/plain")
    await websocket.accept()
    start = await _wait_for_start()
    if start is None:
        logger.warning("media stream closed: no valid start message")
        await websocket.close(POLICY_VIOLATION)
        return None
    claim = read_stream_token(
        settings, start.custom_parameters.get("token"), call_sid=start.call_sid
    )
    context = None
    if claim is not None:
        context = await asyncio.to_thread(
            _load_context, database.sessions, claim.call_sid, claim.nonce
        )
    if context is None:
        logger.warning("media stream closed: missing, invalid, expired or reused token")
        await websocket.close(POLICY_VIOLATION)
        return None
    toolbox = ToolBox(
        database.sessions,
        context,
        staff_phone_number=settings.staff_phone_number,
        can_transfer=bool(settings.twilio_account_sid and settings.twilio_auth_token),
    )
    session = CallSession(
        settings=settings,
        sessions=database.sessions,
        twilio=websocket._get_current_object(),  # type: ignore[attr-defined]
        stream_sid=start.stream_sid,
        toolbox=toolbox,
        rest=get_twilio(current_app),
        connect=current_app.config["REALTIME_CONNECT"],
        preopened=get_preopened_models(current_app).take(context.call_sid),
        recycle_after=current_app.config.get("MODEL_RECYCLE_SECONDS", MODEL_RECYCLE_SECONDS),
        simulated=bool(current_app.config.get("SIMULATED")),
    )
    logger.info("call %s: media stream started", context.call_id)
    await session.run()
    logger.info("call %s: media stream ended", context.call_id)
    return None
