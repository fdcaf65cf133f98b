"""Calls, their transcripts, booking from a call, and placing an outbound call."""

from __future__ import annotations

import logging

import httpx
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.models import Call, CallTranscript, LogRole, Patient
from core.services.common import audit
from webapp import channels, db
from webapp.api.appointments import BOOKING_RULES, actor, book_for
from webapp.api.problems import ApiProblem
from webapp.api.queries import (
    call_out,
    paginate,
    scoped_calls,
    viewer,
    visible_call,
    visible_patient,
)
from webapp.api.registry import ID, STAFF, Context, operation
from webapp.api.schemas import (
    AppointmentOut,
    CallListQuery,
    CallOut,
    CallScheduleCreate,
    OutboundCallCreate,
    OutboundCallOut,
    Page,
    TranscriptLine,
    TranscriptListQuery,
    TranscriptOut,
    TranscriptSummary,
)
from webapp.transactions import end_unit_of_work

logger = logging.getLogger(__name__)

TAG = "calls"
VOICE_TIMEOUT_SECONDS = 10.0


@operation(
    "GET", "/calls", summary="Call history", tag=TAG, query=CallListQuery, response=Page[CallOut]
)
def list_calls(ctx: Context, query: CallListQuery) -> Page[CallOut]:
    """Calls, newest first, filtered by patient, direction, status and a creation range."""
    stmt = scoped_calls(ctx).options(selectinload(Call.transcript))
    if query.patient_id is not None:
        stmt = stmt.where(Call.patient_id == query.patient_id)
    if query.direction is not None:
        stmt = stmt.where(Call.direction == query.direction.value)
    if query.status is not None:
        stmt = stmt.where(Call.status == query.status.value)
    if query.start is not None:
        stmt = stmt.where(Call.created_at >= query.start)
    if query.end is not None:
        stmt = stmt.where(Call.created_at < query.end)
    stmt = stmt.order_by(Call.created_at.desc(), Call.id.desc())
    return paginate(stmt, query, call_out)


@operation(
    "GET", f"/calls/<{ID}:call_id>", summary="One call", tag=TAG, response=CallOut, errors=(404,)
)
def get_call(ctx: Context, call_id: int) -> CallOut:
    """A call's details: direction, numbers, status, timings and outcome."""
    return call_out(visible_call(ctx, call_id))


@operation(
    "GET",
    f"/calls/<{ID}:call_id>/transcript",
    summary="A call's transcript",
    tag=TAG,
    response=TranscriptOut,
    errors=(404,),
)
def get_transcript(ctx: Context, call_id: int) -> TranscriptOut:
    """The conversation line by line (and the stored transcript and summary once the call has
    ended). Each read is recorded in the audit trail."""
    call = visible_call(ctx, call_id)
    assert ctx.user is not None
    audit(
        db.session(),
        actor=actor(ctx),
        action="transcript.viewed",
        entity_type="call",
        entity_id=call.id,
        now=ctx.now,
    )
    transcript = call.transcript
    return TranscriptOut(
        call_id=call.id,
        patient_id=call.patient_id,
        text=transcript.text if transcript else "",
        summary=transcript.summary if transcript else "",
        created_at=transcript.created_at if transcript else None,
        lines=[
            TranscriptLine(
                position=log.position,
                role=log.role,
                text=log.text,
                started_at=log.started_at,
                tool_name=log.tool_name,
            )
            for log in call.logs
            if log.role != LogRole.SYSTEM
        ],
    )


@operation(
    "POST",
    f"/calls/<{ID}:call_id>/schedule",
    summary="Book a visit for the call's patient",
    tag=TAG,
    body=CallScheduleCreate,
    response=AppointmentOut,
    status=201,
    idempotent_header=True,
    errors=(404, 409),
    rules=("the call has no identified patient", *BOOKING_RULES),
)
def schedule_from_call(
    ctx: Context, call_id: int, body: CallScheduleCreate, idempotency_key: str | None
) -> tuple[AppointmentOut, int]:
    """Book a visit for the patient identified on the call, linked to the call; same rules
    and 409 alternatives as POST /appointments."""
    call = visible_call(ctx, call_id)
    if call.patient_id is None:
        raise ApiProblem(
            "invalid",
            "This call has no identified patient; book with POST /appointments instead.",
        )
    return book_for(ctx, body, call.patient_id, idempotency_key, call_id=call.id)


@operation(
    "POST",
    "/calls",
    summary="Place an outbound call to a patient",
    tag=TAG,
    body=OutboundCallCreate,
    response=OutboundCallOut,
    status=202,
    roles=STAFF,
    errors=(404, 502, 503),
)
def place_call(ctx: Context, body: OutboundCallCreate) -> tuple[OutboundCallOut, int]:
    """Ask the voice service to call the patient now; follow the call with GET /calls/{id}."""
    patient: Patient = visible_patient(ctx, body.patient_id)
    calling = channels.calls()
    if not calling.configured:
        # Said at once: the voice service would refuse too, but only after a round trip.
        raise ApiProblem("not_configured", calling.reason)
    settings = current_app.config["SETTINGS"]
    base_url = current_app.config.get("VOICE_SERVICE_URL") or settings.voice_service_url
    token = current_app.config.get("INTERNAL_API_TOKEN") or settings.internal_api_token
    if not base_url or not token:
        raise ApiProblem(
            "not_configured", "Outbound calls need VOICE_SERVICE_URL and INTERNAL_API_TOKEN set."
        )
    assert ctx.user is not None
    end_unit_of_work()
    try:
        answer = httpx.post(
            f"{base_url.rstrip('/')}/make-call",
            json={"patient_id": patient.id, "user_id": ctx.user.id},
            headers={"Authorization": f"Bearer {token}"},
            timeout=VOICE_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        logger.warning("voice service unreachable: %s", type(exc).__name__)
        raise ApiProblem(
            "bad_gateway", f"The voice service could not be reached ({type(exc).__name__})."
        ) from exc
    if answer.status_code == 503:
        raise ApiProblem(
            "not_configured", "The voice service cannot place calls yet (Twilio is not set up)."
        )
    if answer.status_code >= 400:
        logger.warning("voice service refused the call: HTTP %s", answer.status_code)
        raise ApiProblem(
            "bad_gateway", f"The voice service refused the call (HTTP {answer.status_code})."
        )
    try:
        payload = answer.json()
    except ValueError:
        payload = {}
    payload = payload if isinstance(payload, dict) else {}
    call_id = payload.get("call_id")
    call_sid = payload.get("call_sid")
    return (
        OutboundCallOut(
            call_id=call_id if isinstance(call_id, int) else None,
            call_sid=call_sid if isinstance(call_sid, str) else None,
            status=str(payload.get("status") or "queued")[:32],
        ),
        202,
    )


@operation(
    "GET",
    "/transcripts",
    summary="List transcripts",
    tag="transcripts",
    query=TranscriptListQuery,
    response=Page[TranscriptSummary],
)
def list_transcripts(ctx: Context, query: TranscriptListQuery) -> Page[TranscriptSummary]:
    """Stored call transcripts with their summaries, newest first."""
    stmt = select(CallTranscript).join(Call, Call.id == CallTranscript.call_id)
    if not viewer(ctx).sees_all:
        stmt = stmt.where(Call.id.in_(scoped_calls(ctx).with_only_columns(Call.id)))
    if query.patient_id is not None:
        stmt = stmt.where(Call.patient_id == query.patient_id)
    if query.call_id is not None:
        stmt = stmt.where(CallTranscript.call_id == query.call_id)
    stmt = stmt.options(selectinload(CallTranscript.call)).order_by(
        CallTranscript.created_at.desc(), CallTranscript.id.desc()
    )
    page = paginate(
        stmt,
        query,
        lambda t: TranscriptSummary(
            id=t.id,
            call_id=t.call_id,
            patient_id=t.call.patient_id,
            summary=t.summary,
            text=t.text,
            created_at=t.created_at,
        ),
    )
    if page.items:  # transcript text was read: recorded like a single transcript view
        audit(
            db.session(),
            actor=actor(ctx),
            action="transcripts.listed",
            entity_type="call",
            entity_id=None,
            now=ctx.now,
            call_ids=[item.call_id for item in page.items],
        )
    return page
