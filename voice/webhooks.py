"""Twilio webhooks (/incoming-call, /call-status, texts in and their delivery) and the
dashboard's /make-call.

Every Twilio request is checked against X-Twilio-Signature over the URL rebuilt from
PUBLIC_BASE_URL; an unsigned or forged one gets 403 and nothing is written.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, Response, current_app, g, request

from core.channels import calls_setup
from core.config import Settings
from core.db import transaction
from core.errors import DomainError, InvalidState
from core.logs import log_failure
from core.models import AnsweredBy, Call, CallDirection, CallStatus
from core.notifications.callbacks import apply_status_callback
from core.notifications.settings import STATUS_CALLBACK_PATH
from core.services import calls, waitlist
from voice import (
    SIMULATED_CALLS_EXTENSION,
    get_database,
    get_drain,
    get_instance_name,
    get_preopened_models,
    get_settings,
    get_twilio,
    simulator_running,
)
from voice.prompts import voicemail_message
from voice.security import (
    bearer_ok,
    make_stream_token,
    media_stream_url,
    new_nonce,
    public_url,
    simulator_signature_ok,
    stream_path,
    twilio_signature_ok,
)
from voice.twilio_rest import (
    AMD_STATUS_PATH,
    DIAL_STATUS_PATH,
    hang_up_twiml,
    message_twiml,
    redirect_twiml,
    say_twiml,
    stream_twiml,
)

logger = logging.getLogger(__name__)

# The query parameter marking a call a draining instance sent back through the public address.
REDIRECTED = "redirected"

bp = Blueprint("webhooks", __name__)

XML = "text/xml"
INCOMING_SMS_PATH = "/twilio/incoming-sms"
_TEXT_FAILED = "Carematix: sorry, we could not read your reply just now. Please call us."
_SORRY = "Sorry, Carematix cannot take your call right now. Please call again later."
_CALLBACK_COMING = (
    "Sorry, no one could take your call right now. A care coordinator will call you back soon. "
    "Goodbye."
)


def _forbidden() -> Response:
    return Response("Forbidden", status=403, mimetype="text/plain")


async def _signed_form() -> dict[str, Any] | None:
    """The POST params if the request carries a valid Twilio signature, else None."""
    settings = get_settings(current_app)
    form = await request.form
    url = public_url(settings, request.path, request.query_string.decode("latin-1"))
    signature = request.headers.get("X-Twilio-Signature")
    simulated = bool(current_app.config.get("SIMULATED"))
    if not twilio_signature_ok(settings, url, form, signature, simulated=simulated):
        if not (
            simulator_running(current_app)
            and simulator_signature_ok(settings, url, form, signature)
        ):
            logger.warning("refused %s: missing or invalid Twilio signature", request.path)
            return None
        g.signed_by_simulator = True
    return {key: form.get(key, "") for key in form}


def _simulated_call() -> bool:
    """Whether this webhook's call is simulated: every call is when there is no Twilio account
    and no OpenAI key, otherwise only one our own simulator signed (never a real caller)."""
    return bool(current_app.config.get("SIMULATED") or g.get("signed_by_simulator"))


@bp.post("/incoming-call")
async def incoming_call() -> Response:
    """Answer a call (inbound, or an outbound one we placed) by connecting it to our stream."""
    params = await _signed_form()
    if params is None:
        return _forbidden()
    settings = get_settings(current_app)
    database = get_database(current_app)
    call_sid = params.get("CallSid", "")
    if not call_sid or len(call_sid) > 64:
        return Response("Missing CallSid", status=400, mimetype="text/plain")
    if database is None:
        return Response(say_twiml(_SORRY), mimetype=XML)
    if get_drain(current_app).draining and request.args.get(REDIRECTED) is None:
        # Shutting down: through the public address once more, to an instance that serves.
        # A call redirected here again is served all the same, rather than bounced.
        logger.info("draining: redirected a new call")
        # Without PUBLIC_BASE_URL the URL is relative: Twilio resolves it against this one.
        again = public_url(settings, "/incoming-call", f"{REDIRECTED}=1")
        return Response(redirect_twiml(again), mimetype=XML)
    nonce = new_nonce()
    outbound = params.get("Direction", "inbound").startswith("outbound")
    simulated = _simulated_call()
    instance = get_instance_name(current_app)

    def answer() -> int:
        with transaction(database.sessions) as session:
            call = calls.answer_call(
                session,
                call_sid=call_sid,
                from_number=params.get("From", "")[:32],
                to_number=params.get("To", "")[:32],
                outbound=outbound,
                now=datetime.now(UTC),
                stream_nonce=nonce,
                simulated=simulated,
                instance=instance,
            )
            return call.id

    try:
        call_id = await asyncio.to_thread(answer)
    except InvalidState:
        # A replayed (or repeated) webhook for a call that already has its stream, or has
        # ended: Twilio's signature carries no timestamp, so the call's state is the defence.
        logger.warning("refused to answer a call again: it already has a stream or has ended")
        return Response(hang_up_twiml(), mimetype=XML)
    except Exception:
        log_failure(logger, "could not record an incoming call")
        return Response(say_twiml(_SORRY), mimetype=XML)
    logger.info("call %s answered (%s)", call_id, "outbound" if outbound else "inbound")
    if current_app.config.get("PREOPEN_MODEL"):
        direction = CallDirection.OUTBOUND if outbound else CallDirection.INBOUND
        get_preopened_models(current_app).open(call_sid, direction)
    token = make_stream_token(settings, call_sid=call_sid, nonce=nonce)
    return Response(stream_twiml(_stream_url(settings), token), mimetype=XML)


def _stream_url(settings: Settings) -> str:
    if settings.public_base_url:
        return media_stream_url(settings)
    # Local development without a public URL: the host the request came to.
    return f"wss://{request.host}{stream_path(settings)}"


@bp.post(STATUS_CALLBACK_PATH)
async def message_status() -> Response:
    """Twilio's delivery report for a text we sent: the notification becomes delivered or failed.

    204 when applied (or already settled), 400 for a malformed report, 404 for a message sid
    we never sent; a forged one gets 403 and changes nothing.
    """
    params = await _signed_form()
    if params is None:
        return _forbidden()
    database = get_database(current_app)
    if database is None:
        return Response("", status=503)

    def apply() -> tuple[bool, str]:
        with transaction(database.sessions) as session:
            result = apply_status_callback(session, params, datetime.now(UTC))
            return result.ok, result.outcome

    ok, outcome = await asyncio.to_thread(apply)
    if ok:
        return Response("", status=204)
    return Response(
        outcome, status=404 if outcome == "unknown message" else 400, mimetype="text/plain"
    )


@bp.post(INCOMING_SMS_PATH)
async def incoming_sms() -> Response:
    """A text from a patient: YES books the time held for them on the waitlist, NO passes it
    to the next in line. The reply says what happened; an unknown number, or one with nothing
    held, gets a polite answer and nothing changes. A forged request gets 403."""
    params = await _signed_form()
    if params is None:
        return _forbidden()
    database = get_database(current_app)
    if database is None:
        return Response(message_twiml(_TEXT_FAILED), mimetype=XML)
    phone = params.get("From", "")[:32]
    text = params.get("Body", "")[:160]

    def answer() -> str:
        with transaction(database.sessions) as session:
            return waitlist.answer_by_text(session, phone, text, datetime.now(UTC))

    try:
        reply = await asyncio.to_thread(answer)
    except DomainError as refused:
        logger.info("a text reply was refused: %s", refused.code)
        reply = waitlist.NO_LONGER_FREE
    except Exception:
        log_failure(logger, "could not apply a text reply")
        reply = _TEXT_FAILED
    return Response(message_twiml(reply), mimetype=XML)


@bp.post("/call-status")
async def call_status() -> Response:
    """Twilio status callback: 204 always (an unknown CallSid is logged and ignored)."""
    params = await _signed_form()
    if params is None:
        return _forbidden()
    database = get_database(current_app)
    if database is None:
        return Response("", status=503)
    call_sid = params.get("CallSid", "")
    status = params.get("CallStatus", "")
    try:
        duration = int(params["CallDuration"]) if params.get("CallDuration") else None
    except ValueError:
        duration = None

    def apply() -> int | None:
        with transaction(database.sessions) as session:
            call = calls.update_call_status(
                session,
                call_sid=call_sid,
                status=status,
                now=datetime.now(UTC),
                duration_seconds=duration,
            )
            return call.id if call is not None else None

    call_id = await asyncio.to_thread(apply)
    if call_id is None:
        logger.info("status callback for an unknown call ignored")
    else:
        logger.info("call %s status %s", call_id, status[:16])
    return Response("", status=204)


@bp.post(AMD_STATUS_PATH)
async def amd_status() -> Response:
    """Twilio's answering-machine detection for a call we placed: on a machine, the agent stops
    and a short message with no patient detail is left, then the call ends as `voicemail`."""
    params = await _signed_form()
    if params is None:
        return _forbidden()
    database = get_database(current_app)
    if database is None:
        return Response("", status=503)
    settings = get_settings(current_app)
    call_sid = params.get("CallSid", "")
    answered_by = AnsweredBy.from_twilio(params.get("AnsweredBy", ""))

    def apply() -> Call | None:
        with transaction(database.sessions) as session:
            return calls.record_answered_by(
                session,
                call_sid,
                answered_by,
                now=datetime.now(UTC),
                callback_number=settings.twilio_phone_number,
            )

    call = await asyncio.to_thread(apply)
    if call is None:
        logger.info("answering-machine report ignored: not a call we placed, or a repeat")
        return Response("", status=204)
    logger.info("call %s answered by %s", call.id, answered_by.value)
    if answered_by in (AnsweredBy.MACHINE, AnsweredBy.FAX) and not call.simulated:
        twilio = get_twilio(current_app)
        try:
            if answered_by is AnsweredBy.MACHINE:
                message = voicemail_message(settings.twilio_phone_number)
                await asyncio.to_thread(twilio.say_and_hang_up, call_sid, message)
            else:
                await asyncio.to_thread(twilio.hang_up, call_sid)
        except Exception:
            log_failure(logger, "call %s: could not leave the message", call.id)
    return Response("", status=204)


@bp.post(DIAL_STATUS_PATH)
async def dial_status() -> Response:
    """Twilio's report on a transfer to staff (the <Dial> action): when nobody answered, the
    caller hears that a coordinator will call back, and a callback request is recorded."""
    params = await _signed_form()
    if params is None:
        return _forbidden()
    database = get_database(current_app)
    if database is None:
        return Response(say_twiml(_CALLBACK_COMING), mimetype=XML)
    dial_result = params.get("DialCallStatus", "")

    def record() -> bool:
        with transaction(database.sessions) as session:
            calls.record_transfer_result(
                session,
                call_sid=params.get("CallSid", ""),
                dial_status=dial_result,
                now=datetime.now(UTC),
            )
        return dial_result in calls.UNANSWERED_DIAL_STATUSES

    try:
        unanswered = await asyncio.to_thread(record)
    except Exception:
        log_failure(logger, "could not record how a transfer ended")
        unanswered = dial_result in calls.UNANSWERED_DIAL_STATUSES
    logger.info("transfer ended: %s", dial_result[:16] or "unknown")
    if unanswered:
        return Response(say_twiml(_CALLBACK_COMING), mimetype=XML)
    return Response(hang_up_twiml(), mimetype=XML)


@bp.post("/make-call")
async def make_call() -> tuple[dict[str, Any], int]:
    """Place an outbound call to a patient (dashboard only: bearer INTERNAL_API_TOKEN)."""
    settings = get_settings(current_app)
    if not bearer_ok(settings, request.headers.get("Authorization")):
        return {"error": "unauthorized", "message": "A valid bearer token is required."}, 401
    database = get_database(current_app)
    if database is None:
        return {"error": "unavailable", "message": "The database is not open."}, 503
    calling = calls_setup(settings)
    if not calling.configured:
        return {"error": "not_configured", "message": calling.reason}, 503
    if get_drain(current_app).draining:
        return {"error": "draining", "message": "This voice instance is shutting down."}, 503
    body = await request.get_json(silent=True) or {}
    patient_id = body.get("patient_id") if isinstance(body, dict) else None
    user_id = body.get("user_id") if isinstance(body, dict) else None
    if isinstance(patient_id, bool) or not isinstance(patient_id, int):
        return {"error": "invalid", "message": "patient_id must be a number."}, 400
    if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int)):
        return {"error": "invalid", "message": "user_id must be a number."}, 400

    simulated = bool(current_app.config.get("SIMULATED"))
    instance = get_instance_name(current_app)

    def create() -> tuple[int, str]:
        with transaction(database.sessions) as session:
            call = calls.create_outbound_call(
                session,
                patient_id=patient_id,
                from_number=settings.twilio_phone_number,
                now=datetime.now(UTC),
                placed_by_user_id=user_id,
                simulated=simulated,
                instance=instance,
            )
            return call.id, call.to_number

    try:
        call_id, to_number = await asyncio.to_thread(create)
    except DomainError as exc:
        return {"error": exc.code, "message": exc.message}, 404 if exc.code == "not_found" else 400

    twilio = get_twilio(current_app)
    try:
        call_sid = await asyncio.to_thread(
            twilio.place_call,
            to=to_number,
            answer_url=public_url(settings, "/incoming-call"),
            status_callback=public_url(settings, "/call-status"),
        )
    except Exception as exc:
        logger.error("call %s: Twilio refused the outbound call (%s)", call_id, type(exc).__name__)
        await asyncio.to_thread(_mark_failed, database.sessions, call_id, type(exc).__name__)
        return {"error": "twilio_error", "message": "Twilio did not place the call."}, 502

    def store_sid() -> int:
        with transaction(database.sessions) as session:
            call = session.get(Call, call_id)
            answered = calls.get_call_by_sid(session, call_sid)
            if answered is not None and answered.id != call_id:
                # Twilio fetched the answer URL before we got here and /incoming-call made
                # the row: keep that one (it carries the stream nonce), drop the placeholder.
                answered.placed_by_user_id = user_id
                if call is not None:
                    session.delete(call)
                return answered.id
            if call is not None:
                call.call_sid = call_sid
                call.status = CallStatus.INITIATED
            return call_id

    call_id = await asyncio.to_thread(store_sid)
    logger.info("call %s placed", call_id)
    return {"call_id": call_id, "call_sid": call_sid, "status": CallStatus.INITIATED.value}, 201


def _mark_failed(sessions: Any, call_id: int, error: str) -> None:
    with transaction(sessions) as session:
        call = session.get(Call, call_id)
        if call is not None:
            call.status = CallStatus.FAILED
            call.error = error
            call.outcome = "failed"
            call.ended_at = datetime.now(UTC)


@bp.post("/simulate-call")
async def simulate_a_call() -> tuple[dict[str, Any], int]:
    """Place a simulated call (simulator mode only; bearer INTERNAL_API_TOKEN): the dashboard's
    "try a call" button. It runs in the background; poll the call by its CallSid."""
    settings = get_settings(current_app)
    if not bearer_ok(settings, request.headers.get("Authorization")):
        return {"error": "unauthorized", "message": "A valid bearer token is required."}, 401
    if not simulator_running(current_app):
        message = "Simulated calls run only when no OpenAI key is configured."
        return {"error": "not_simulated", "message": message}, 409
    from voice.simulate_call import new_call_sid, simulate_call

    call_sid = new_call_sid()
    own_url = current_app.config.get("SELF_URL") or settings.voice_service_url
    running: set[asyncio.Task[Any]] = current_app.extensions.setdefault(
        SIMULATED_CALLS_EXTENSION, set()
    )
    task = asyncio.create_task(
        simulate_call(
            settings,
            own_url,
            speed=float(current_app.config.get("SIMULATOR_SPEED", 1.0)),
            call_sid=call_sid,
        )
    )
    running.add(task)
    task.add_done_callback(_simulated_call_done(running))
    logger.info("simulated call placed")
    return {"call_sid": call_sid, "simulated": True}, 202


def _simulated_call_done(running: set[asyncio.Task[Any]]) -> Any:
    def done(task: asyncio.Task[Any]) -> None:
        running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("simulated call failed (%s)", type(task.exception()).__name__)

    return done
