"""Calls: the list, a call's live transcript with tool actions, and placing a call."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from flask import current_app, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

from core.models import Appointment, Call, CallDirection, CallStatus, ConversationLog, Role
from core.services import access
from core.services.calls import TERMINAL_STATUSES
from core.services.common import audit
from webapp import channels, db
from webapp.auth import now_utc, roles_required
from webapp.dashboard import common
from webapp.dashboard.common import actor, blueprint, finish, paginate, reads_only, render, viewer
from webapp.transactions import end_unit_of_work, read_afresh

logger = logging.getLogger(__name__)

bp = blueprint("calls", __name__)
STAFF = (Role.ADMIN, Role.COORDINATOR)
POLL_INTERVAL = "500ms"
VOICE_TIMEOUT_SECONDS = 10.0


@bp.get("/calls/")
@reads_only
@roles_required(*STAFF)
def index() -> Response:
    """Calls, newest first, filterable by direction and status."""
    stmt = access.calls(viewer(), now_utc()).options(joinedload(Call.patient))
    direction = request.args.get("direction", "")
    if direction in {d.value for d in CallDirection}:
        stmt = stmt.where(Call.direction == direction)
    status = request.args.get("status", "")
    if status in {s.value for s in CallStatus}:
        stmt = stmt.where(Call.status == status)
    return render(
        "calls/page.html",
        "calls/_table.html",
        page=paginate(stmt.order_by(Call.created_at.desc(), Call.id.desc())),
        directions=list(CallDirection),
        statuses=list(CallStatus),
        args=request.args,
    )


def _call(call_id: int) -> Call:
    return access.get_call(db.session(), viewer(), call_id, now_utc())


def _lines(call_id: int, after_id: int) -> list[ConversationLog]:
    # New rows by id, so a line stored late (lower position) is never missed.
    return list(
        db.session.scalars(
            select(ConversationLog)
            .where(ConversationLog.call_id == call_id, ConversationLog.id > after_id)
            .order_by(ConversationLog.position, ConversationLog.id)
        )
    )


def _made(call: Call) -> list[Appointment]:
    return list(
        db.session.scalars(
            access.appointments(viewer())
            .where(Appointment.call_id == call.id)
            .order_by(Appointment.start_at)
        )
    )


def _live(call: Call) -> bool:
    return call.status not in TERMINAL_STATUSES


@bp.get("/calls/<int:call_id>")
@roles_required(*STAFF)
def show(call_id: int) -> Response:
    """A call's transcript and tool actions; viewing it is recorded in the audit trail."""
    call = _call(call_id)
    lines = _lines(call.id, 0)
    audit(
        db.session(),
        actor=actor(),
        action="transcript.viewed",
        entity_type="call",
        entity_id=call.id,
        now=now_utc(),
    )
    db.session.commit()
    return render(
        "calls/show.html",
        call=call,
        lines=lines,
        last_id=max((line.id for line in lines), default=0),
        appointments=_made(call),
        live=_live(call),
        poll_interval=POLL_INTERVAL,
    )


@bp.get("/calls/<int:call_id>/updates")
@reads_only
@roles_required(*STAFF)
def updates(call_id: int) -> Response:
    """New transcript lines since `after`, the status and the poller (htmx polls this)."""
    call = _call(call_id)
    after = common.whole_number_arg("after", "That transcript position")
    lines = _lines(call.id, after)
    response = render(
        "calls/_updates.html",
        "calls/_updates.html",
        call=call,
        lines=lines,
        last_id=max((line.id for line in lines), default=after),
        appointments=_made(call),
        live=_live(call) or bool(lines),
        poll_interval=POLL_INTERVAL,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


class VoiceServiceRefused(Exception):
    """The voice service could not be asked, or said no; the message is for the coordinator."""


def _ask_voice_service(path: str, expected: int, needed: str, **payload: Any) -> dict[str, Any]:
    """POST to the voice service with the shared token; its JSON answer, or VoiceServiceRefused."""
    settings = current_app.config["SETTINGS"]
    if not settings.internal_api_token:
        raise VoiceServiceRefused("Calling is not configured (INTERNAL_API_TOKEN is not set).")
    end_unit_of_work()
    try:
        answer = httpx.post(
            f"{settings.voice_service_url}{path}",
            headers={"Authorization": f"Bearer {settings.internal_api_token}"},
            timeout=VOICE_TIMEOUT_SECONDS,
            **payload,
        )
    except httpx.HTTPError as exc:
        logger.warning("voice service unreachable: %s", type(exc).__name__)
        raise VoiceServiceRefused("The voice service is not reachable.") from exc
    is_json = answer.headers.get("content-type", "").startswith("application/json")
    body: dict[str, Any] = answer.json() if is_json else {}
    if answer.status_code != expected or needed not in body:
        raise VoiceServiceRefused(
            body.get("message") or f"The voice service answered {answer.status_code}."
        )
    return body


@bp.post("/patients/<int:patient_id>/call")
@roles_required(*STAFF)
def place_call(patient_id: int) -> Response:
    """Ask the voice service to call the patient, then open the call's live page."""
    patient = access.get_patient(db.session(), viewer(), patient_id, now_utc())
    back = url_for("patients.show", patient_id=patient.id)
    calling = channels.calls()
    if not calling.configured:
        return finish(back, f"The call was not placed. {calling.reason}", "error")
    try:
        body = _ask_voice_service(
            "/make-call",
            201,
            "call_id",
            json={"patient_id": patient.id, "user_id": current_user.id},
        )
    except VoiceServiceRefused as refused:
        return finish(back, _not_placed("The call was not placed", str(refused)), "error")
    return finish(url_for("calls.show", call_id=int(body["call_id"])), "Calling the patient.")


SIMULATED_CALL_WAIT_SECONDS = 3.0


@bp.post("/calls/simulate")
@roles_required(*STAFF)
def simulate_call() -> Response:
    """Place a call with the built-in simulator (no OpenAI or Twilio needed) and open it live."""
    back = url_for("calls.index")
    try:
        body = _ask_voice_service("/simulate-call", 202, "call_sid")
    except VoiceServiceRefused as refused:
        return finish(back, _not_placed("The simulated call was not placed", str(refused)), "error")
    call_id = _wait_for_call(str(body["call_sid"]))
    if call_id is None:
        return finish(back, "Simulated call placed; it will appear here in a moment.")
    return finish(url_for("calls.show", call_id=call_id), "Simulated call in progress.")


def _not_placed(lead: str, reason: str) -> str:
    # Configuration and reachability problems read on their own; the service's own refusals
    # are quoted after what did not happen.
    if reason.startswith(("Calling is not configured", "The voice service is not reachable")):
        return reason
    return f"{lead}: {reason}"


def _wait_for_call(call_sid: str) -> int | None:
    """The id of the call the voice service records for `call_sid`, once it has (briefly)."""
    deadline = time.monotonic() + SIMULATED_CALL_WAIT_SECONDS
    while True:
        read_afresh()  # each look sees the voice service's latest commit, without locking it out
        call_id = db.session.scalar(select(Call.id).where(Call.call_sid == call_sid))
        if call_id is not None or time.monotonic() > deadline:
            return call_id
        time.sleep(0.1)
