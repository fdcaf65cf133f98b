"""Phone calls: the Call row's lifecycle, conversation lines, transcripts and callback requests.

Framework-free: the voice service calls these from worker threads, one short transaction each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select, update
from sqlalchemy.orm import Session

from core.call_lifecycle import FINAL_STATUSES, is_final, next_status
from core.errors import InvalidState, NotFound, ValidationError
from core.models import (
    AnsweredBy,
    Appointment,
    AppointmentStatus,
    Call,
    CallbackRequest,
    CallbackStatus,
    CallDirection,
    CallStatus,
    CallTranscript,
    ConversationLog,
    LogRole,
    Patient,
)
from core.outbox import queue_missed_call_text
from core.scheduling import require_aware
from core.services.common import Actor, audit, get_or_raise, normalise_phone
from core.services.people import find_patient_by_phone

TERMINAL_STATUSES = FINAL_STATUSES
# Outcomes a later, lesser event (a hang-up after booking) must not overwrite.
SIGNIFICANT_OUTCOMES = frozenset(
    {"booked", "rescheduled", "cancelled", "transferred", "callback_requested"}
)


def get_call_by_sid(session: Session, call_sid: str) -> Call | None:
    """The call Twilio knows by `call_sid`, or None."""
    return session.scalar(select(Call).where(Call.call_sid == call_sid))


def answer_call(
    session: Session,
    *,
    call_sid: str,
    from_number: str,
    to_number: str,
    outbound: bool,
    now: datetime,
    stream_nonce: str,
    simulated: bool = False,
    instance: str | None = None,
) -> Call:
    """Record that Twilio asks how to answer a call, and remember its stream token's nonce.

    Inbound calls get a new row with the patient matched by the caller's number; an outbound
    call placed by `create_outbound_call` already has one (found by CallSid). A call answers
    once: one that already has a stream token, or has ended, raises InvalidState (a replayed
    webhook must not reopen it or open a second stream).
    """
    now = require_aware(now, "now")
    call = get_call_by_sid(session, call_sid)
    if call is not None and (is_final(call.status) or call.stream_nonce is not None):
        raise InvalidState("That call has already been answered.")
    if call is None:
        patient_phone = to_number if outbound else from_number
        patient = find_patient_by_phone(session, patient_phone)
        call = Call(
            call_sid=call_sid,
            direction=CallDirection.OUTBOUND if outbound else CallDirection.INBOUND,
            from_number=from_number,
            to_number=to_number,
            patient_id=patient.id if patient is not None else None,
            status=CallStatus.IN_PROGRESS,
            created_at=now,
            started_at=now,
            answered_at=now,
            simulated=simulated,
        )
        session.add(call)
    else:
        call.status = CallStatus.IN_PROGRESS
        call.answered_at = call.answered_at or now
        call.started_at = call.started_at or now
    call.stream_nonce = stream_nonce
    call.handled_by = instance
    session.flush()
    return call


def create_outbound_call(
    session: Session,
    *,
    patient_id: int,
    from_number: str,
    now: datetime,
    placed_by_user_id: int | None = None,
    simulated: bool = False,
    instance: str | None = None,
) -> Call:
    """A queued outbound call to a patient, before Twilio has given it a CallSid."""
    now = require_aware(now, "now")
    patient = get_or_raise(session, Patient, patient_id, "patient")
    call = Call(
        direction=CallDirection.OUTBOUND,
        from_number=from_number,
        to_number=patient.phone,
        patient_id=patient.id,
        status=CallStatus.QUEUED,
        created_at=now,
        placed_by_user_id=placed_by_user_id,
        simulated=simulated,
        handled_by=instance,
    )
    session.add(call)
    session.flush()
    return call


def consume_stream_token(
    session: Session, *, call_sid: str, nonce: str, now: datetime, instance: str | None = None
) -> bool:
    """Mark the call's stream token used by `instance`; False if it was never issued, was
    already used, or the call has ended.

    One conditional UPDATE, so two sockets racing with the same token cannot both win.
    """
    result = session.execute(
        update(Call)
        .where(
            Call.call_sid == call_sid,
            Call.stream_nonce == nonce,
            Call.stream_started_at.is_(None),
            Call.status.not_in(FINAL_STATUSES),
        )
        .values(stream_started_at=require_aware(now, "now"), handled_by=instance)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def update_call_status(
    session: Session,
    *,
    call_sid: str,
    status: str,
    now: datetime,
    duration_seconds: int | None = None,
) -> Call | None:
    """Apply a Twilio status callback; None when no call has that CallSid.

    Callbacks refine, never regress (see `core.call_lifecycle`): a late or repeated one moves
    nothing back. Twilio's own duration replaces the one counted when the stream ended.
    """
    now = require_aware(now, "now")
    call = get_call_by_sid(session, call_sid)
    if call is None:
        return None
    known_duration = (
        duration_seconds if duration_seconds is not None and duration_seconds >= 0 else None
    )
    moved = next_status(call.status, status)
    if moved is None:
        if is_final(call.status) and is_final(status) and known_duration is not None:
            call.duration_seconds = known_duration
            session.flush()
        return call
    if moved == CallStatus.IN_PROGRESS:
        call.status = moved
        call.answered_at = call.answered_at or now
    elif is_final(moved):
        _end(call, moved, now, known_duration)
    else:
        call.status = moved
    session.flush()
    return call


def _end(call: Call, status: str, now: datetime, duration_seconds: int | None = None) -> None:
    """Move a call to a final `status`: its end time, duration and a default outcome."""
    call.status = status
    call.ended_at = call.ended_at or now
    if duration_seconds is not None:
        call.duration_seconds = duration_seconds
    elif call.answered_at is not None and call.duration_seconds is None:
        call.duration_seconds = max(0, int((call.ended_at - call.answered_at).total_seconds()))
    if call.outcome is None:
        call.outcome = "completed" if status == CallStatus.COMPLETED else status


def record_answered_by(
    session: Session,
    call_sid: str,
    answered_by: AnsweredBy,
    *,
    now: datetime,
    callback_number: str,
) -> Call | None:
    """Record who answered an outbound call; None when there is nothing to act on (no such
    outbound call, or a repeated report). A machine makes the call a voicemail, and a patient
    who agreed to texts is told by text that we tried to call."""
    call = get_call_by_sid(session, call_sid)
    if call is None or call.direction != CallDirection.OUTBOUND or call.answered_by is not None:
        return None
    call.answered_by = answered_by
    if answered_by is AnsweredBy.MACHINE:
        set_outcome(session, call.id, "voicemail")
        if call.patient is not None:
            queue_missed_call_text(session, call.patient, callback_number, now)
    elif answered_by is AnsweredBy.FAX:
        set_outcome(session, call.id, "failed")
    session.flush()
    return call


def set_outcome(session: Session, call_id: int, outcome: str, *, force: bool = False) -> None:
    """Record what the call achieved, without letting a lesser outcome replace a significant one."""
    call = get_or_raise(session, Call, call_id, "call")
    if force or call.outcome not in SIGNIFICANT_OUTCOMES or outcome in SIGNIFICANT_OUTCOMES:
        call.outcome = outcome[:40]
    session.flush()


def mark_verified(session: Session, call_id: int, patient_id: int) -> None:
    """The caller proved who they are: the call now belongs to that patient."""
    call = get_or_raise(session, Call, call_id, "call")
    call.verified = True
    call.patient_id = patient_id
    session.flush()


def log_row(
    *,
    call_id: int,
    position: int,
    role: str,
    now: datetime,
    text: str = "",
    item_id: str | None = None,
    interrupted: bool = False,
    tool_name: str | None = None,
    tool_arguments: dict[str, Any] | None = None,
    tool_result: dict[str, Any] | None = None,
    started_at: datetime | None = None,
) -> dict[str, Any]:
    """One conversation line's column values, checked (for `append_log` or `append_logs`)."""
    if role not in {r.value for r in LogRole}:
        raise ValueError(f"unknown role {role!r}")
    return {
        "call_id": call_id,
        "position": position,
        "item_id": item_id[:64] if item_id else None,
        "role": role,
        "text": text,
        "started_at": started_at,
        "created_at": require_aware(now, "now"),
        "interrupted": interrupted,
        "tool_name": tool_name,
        "tool_arguments": tool_arguments,
        "tool_result": tool_result,
    }


def append_log(session: Session, **line: Any) -> ConversationLog:
    """Store one line of the conversation at its place in conversation order (see `log_row`)."""
    stored = ConversationLog(**log_row(**line))
    session.add(stored)
    session.flush()
    return stored


def append_logs(
    session: Session | Connection, rows: list[dict[str, Any]], *, skip_stored: bool = False
) -> None:
    """Store several lines (built by `log_row`) with one statement (a Core insert: the ORM's
    bulk path would only add its bookkeeping).

    With `skip_stored`, lines already stored (same call, position, role and time) are left
    out, so a retry after a commit whose answer was lost stores nothing twice.
    """
    table = cast(Table, ConversationLog.__table__)
    if rows and skip_stored:
        found = session.execute(
            select(table.c.call_id, table.c.position, table.c.role, table.c.created_at).where(
                table.c.call_id.in_({row["call_id"] for row in rows})
            )
        )
        stored = {tuple(line) for line in found}
        rows = [
            row
            for row in rows
            if (row["call_id"], row["position"], row["role"], row["created_at"]) not in stored
        ]
    if rows:
        session.execute(insert(table), rows)


def mark_interrupted(session: Session, *, call_id: int, item_id: str) -> int:
    """Flag an assistant line (already stored) as cut off by the caller; returns rows changed."""
    result = session.execute(
        update(ConversationLog)
        .where(
            ConversationLog.call_id == call_id,
            ConversationLog.item_id == item_id,
            ConversationLog.role == LogRole.ASSISTANT,
        )
        .values(interrupted=True)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def conversation(session: Session, call_id: int) -> list[ConversationLog]:
    """The call's lines in conversation order."""
    return list(
        session.scalars(
            select(ConversationLog)
            .where(ConversationLog.call_id == call_id)
            .order_by(ConversationLog.position, ConversationLog.id)
        )
    )


def lines_since(session: Session, call_id: int, after_id: int = 0) -> list[ConversationLog]:
    """Lines committed after `after_id`, for a live view that polls (each line is its own
    commit, so another process sees it as soon as it is said)."""
    return list(
        session.scalars(
            select(ConversationLog)
            .where(ConversationLog.call_id == call_id, ConversationLog.id > after_id)
            .order_by(ConversationLog.id)
        )
    )


def _transcript_line(line: ConversationLog) -> str:
    if line.role == LogRole.TOOL:
        result = line.tool_result or {}
        verdict = f"error {result['error']}" if "error" in result else "ok"
        return f"[{line.tool_name}: {verdict}]"
    labels: dict[str, str] = {LogRole.USER: "Caller", LogRole.ASSISTANT: "Agent"}
    label = labels.get(line.role, "System")
    suffix = " [interrupted]" if line.interrupted else ""
    return f"{label}: {line.text}{suffix}"


_LOCKED = "Verification locked after three failed attempts."
# <Dial> outcomes that mean staff never picked up.
UNANSWERED_DIAL_STATUSES = frozenset({"no-answer", "busy", "failed", "canceled"})
NO_ONE_ANSWERED = "Transferred to staff, but no one answered."
STAFF_ANSWERED = "Staff answered the transfer."
NO_ONE_ANSWERED_LINE = f"{NO_ONE_ANSWERED} A care coordinator will call back."
_TRANSFER_RESULTS = {
    STAFF_ANSWERED: "Transferred to staff; staff answered.",
    NO_ONE_ANSWERED_LINE: "Transferred to staff; no one answered, so a callback was requested.",
}


def _action(line: ConversationLog) -> str | None:
    """What a tool call did, in a few words for coordinators (None: nothing worth saying)."""
    result = line.tool_result or {}
    error = result.get("error")
    if line.tool_name == "verify_patient" and error == "verification_failed":
        return "Verification failed."
    if line.tool_name == "verify_patient" and error == "verification_locked":
        return _LOCKED
    if error:
        return None
    if result.get("verified") and "first_name" in result:
        return "Caller verified."
    if result.get("booked"):
        return f"Booked {result.get('spoken', '')} with {result.get('nurse_name', 'the nurse')}."
    if result.get("rescheduled"):
        return (
            f"Moved appointment {result.get('previous_appointment_id')} to"
            f" {result.get('spoken', '')} (now appointment {result.get('appointment_id')})."
        )
    if result.get("cancelled"):
        return f"Cancelled appointment {result.get('appointment_id')} ({result.get('spoken', '')})."
    if result.get("transferring"):
        return "Transferred to staff."
    if result.get("callback_requested"):
        return "Callback requested: no one could take the call."
    return None


def summarize(lines: list[ConversationLog], outcome: str | None) -> str:
    """A call in a few lines, for coordinators: what the agent did in order (verification,
    bookings, moves, cancellations, hand-overs), then the outcome. Built from the stored tool
    results, so it says only what happened."""
    actions: list[str] = []
    for line in lines:
        if line.role == LogRole.TOOL:
            action = _action(line)
        else:  # how a transfer ended is a line of its own (record_transfer_result)
            action = _TRANSFER_RESULTS.get(line.text) if line.role == LogRole.SYSTEM else None
        if action and not (actions and actions[-1] == action == _LOCKED):
            actions.append(action)
    if not actions:
        actions.append("No scheduling change.")
    return "\n".join([*actions, f"Outcome: {(outcome or 'completed').replace('_', ' ')}."])


def finish_call(
    session: Session,
    call_id: int,
    *,
    now: datetime,
    status: str = CallStatus.COMPLETED,
    error: str | None = None,
) -> CallTranscript:
    """Close the call's record: a final `status` (unless it has one), end time, duration, a
    default outcome, and the assembled transcript. Safe to repeat: it only ever refines.

    Called when the media stream ends (Twilio hangs up or transfers after the stream, so the
    agent's part of the call is over: `completed`) and by the reconciler for calls whose
    process is gone (`failed`, with the reason in `error`).
    """
    now = require_aware(now, "now")
    call = session.get(Call, call_id, with_for_update=_locks_rows(session))
    if call is None:
        raise NotFound(f"No call with id {call_id}.")
    if not is_final(call.status):
        _end(call, status, now)
        if error and call.error is None:
            call.error = error[:500]
    lines = conversation(session, call_id)
    text = "\n".join(_transcript_line(line) for line in lines)
    summary = summarize(lines, call.outcome)
    transcript = session.scalar(select(CallTranscript).where(CallTranscript.call_id == call_id))
    if transcript is None:
        transcript = CallTranscript(call_id=call_id, text=text, summary=summary, created_at=now)
        session.add(transcript)
    else:
        transcript.text, transcript.summary = text, summary
    session.flush()
    return transcript


def _locks_rows(session: Session) -> bool:
    """Whether SELECT ... FOR UPDATE is needed to serialise writers of one call (PostgreSQL;
    SQLite's transactions already hold the database's write lock)."""
    return session.get_bind().dialect.name == "postgresql"


def record_callback_request(
    session: Session,
    *,
    call_id: int | None,
    patient_id: int | None,
    phone: str,
    reason: str,
    now: datetime,
    actor: Actor | None = None,
) -> CallbackRequest:
    """A caller who needs a person and could not be transferred: coordinators call back.
    Recorded as the phone agent's unless `actor` says who else asked."""
    now = require_aware(now, "now")
    request = CallbackRequest(
        call_id=call_id,
        patient_id=patient_id,
        phone=phone[:32],
        reason=(reason or "").strip()[:500],
        created_at=now,
    )
    session.add(request)
    session.flush()
    audit(
        session,
        actor=actor or Actor.agent(call_id),
        action="callback.requested",
        entity_type="callback_request",
        entity_id=request.id,
        now=now,
        call_id=call_id,
        patient_id=patient_id,
    )
    return request


def request_callback(
    session: Session,
    *,
    patient_id: int | None,
    phone: str | None,
    call_id: int | None,
    reason: str,
    actor: Actor,
    now: datetime,
) -> CallbackRequest:
    """Staff or an integration record that someone needs a call back: the patient, a phone
    number (the patient's by default), or both; the call it came from, if any."""
    patient = get_or_raise(session, Patient, patient_id, "patient") if patient_id else None
    if call_id is not None:
        get_or_raise(session, Call, call_id, "call")
    if phone:
        number = normalise_phone(phone)
    elif patient is not None:
        number = patient.phone
    else:
        raise ValidationError("Give the patient or the phone number to call back.", field="phone")
    if not reason.strip():
        raise ValidationError("Say why they need a call back.", field="reason")
    return record_callback_request(
        session,
        call_id=call_id,
        patient_id=patient.id if patient else None,
        phone=number,
        reason=reason,
        now=now,
        actor=actor,
    )


def record_transfer_result(
    session: Session, *, call_sid: str, dial_status: str, now: datetime
) -> CallbackRequest | None:
    """Twilio reports how a transfer to staff ended; when nobody answered, the caller gets one
    callback request (returned). The line goes into the call's transcript either way.

    None when staff answered, or when no call has that CallSid.
    """
    now = require_aware(now, "now")
    call = get_call_by_sid(session, call_sid)
    if call is None:
        return None
    answered = dial_status not in UNANSWERED_DIAL_STATUSES
    request = None
    if answered:
        note = STAFF_ANSWERED
        # The caller talked with staff after the stream ended: the call lasted until now.
        call.ended_at = now
        if call.answered_at is not None:
            call.duration_seconds = max(0, int((now - call.answered_at).total_seconds()))
    else:
        note = NO_ONE_ANSWERED_LINE
        request = session.scalar(
            select(CallbackRequest).where(
                CallbackRequest.call_id == call.id, CallbackRequest.status == CallbackStatus.OPEN
            )
        ) or record_callback_request(
            session,
            call_id=call.id,
            patient_id=call.patient_id,
            phone=call.to_number if call.direction == CallDirection.OUTBOUND else call.from_number,
            reason=NO_ONE_ANSWERED,
            now=now,
        )
        set_outcome(session, call.id, "callback_requested", force=True)
    already_said = session.scalar(
        select(ConversationLog.id).where(
            ConversationLog.call_id == call.id,
            ConversationLog.role == LogRole.SYSTEM,
            ConversationLog.text == note,
        )
    )
    if already_said is None:  # Twilio repeats a request it thinks failed
        last = session.scalar(
            select(func.max(ConversationLog.position)).where(ConversationLog.call_id == call.id)
        )
        append_log(
            session,
            call_id=call.id,
            position=(last if last is not None else -1) + 1,
            role=LogRole.SYSTEM,
            text=note,
            now=now,
        )
    if is_final(call.status):
        finish_call(session, call.id, now=now)  # the transcript and summary say so too
    return request


def upcoming_appointments(
    session: Session, patient_id: int, *, now: datetime, limit: int = 10
) -> list[Appointment]:
    """The patient's scheduled visits that have not ended yet, soonest first."""
    return list(
        session.scalars(
            select(Appointment)
            .where(
                Appointment.patient_id == patient_id,
                Appointment.status == AppointmentStatus.SCHEDULED,
                Appointment.end_at > require_aware(now, "now"),
            )
            .order_by(Appointment.start_at)
            .limit(limit)
        )
    )


def patient_appointment(session: Session, patient_id: int, appointment_id: int) -> Appointment:
    """One of this patient's appointments; another patient's is reported as not found."""
    appointment = session.get(Appointment, appointment_id)
    if appointment is None or appointment.patient_id != patient_id:
        raise NotFound(f"No appointment with id {appointment_id}.", field="appointment_id")
    return appointment


def count_calls(session: Session) -> int:
    """How many calls are recorded."""
    return session.scalar(select(func.count()).select_from(Call)) or 0


def resolve_callback_request(
    session: Session, request_id: int, *, actor: Actor, now: datetime
) -> CallbackRequest:
    """Mark a callback request done: a coordinator has called the patient back (audited)."""
    now = require_aware(now, "now")
    request = get_or_raise(session, CallbackRequest, request_id, "callback request")
    if request.status != CallbackStatus.OPEN:
        raise InvalidState("That callback request is already done.")
    request.status = CallbackStatus.DONE
    request.resolved_at = now
    request.resolved_by_user_id = actor.user_id
    audit(
        session,
        actor=actor,
        action="callback_request.resolved",
        entity_type="callback_request",
        entity_id=request.id,
        now=now,
    )
    session.flush()
    return request
