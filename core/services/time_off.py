"""Nurses ask for time off; a coordinator approves (creating the override) or declines."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidState, OverrideCollision, ValidationError
from core.models import (
    Nurse,
    NurseAvailabilityOverride,
    OverrideKind,
    TimeOffRequest,
    TimeOffStatus,
)
from core.scheduling import MIDNIGHT, require_aware, window_minutes, zone
from core.services.availability import MAX_OVERRIDE_DAYS, add_override, colliding_appointments
from core.services.common import Actor, audit, get_or_raise

REASON_MAX_LENGTH = 200


def request_time_off(
    session: Session,
    nurse_id: int,
    *,
    start_date: date,
    actor: Actor,
    now: datetime,
    end_date: date | None = None,
    start_time: time | None = None,
    end_time: time | None = None,
    reason: str = "",
) -> TimeOffRequest:
    """Record a nurse's request for time off (dates in her zone), pending a coordinator."""
    now = require_aware(now, "now")
    nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
    end_date = end_date or start_date
    if start_date < now.astimezone(zone(nurse.time_zone)).date():
        raise ValidationError("Time off cannot start in the past.", field="start_date")
    if end_date < start_date:
        raise ValidationError("The last date is before the first.", field="end_date")
    if (end_date - start_date).days >= MAX_OVERRIDE_DAYS:
        raise ValidationError("Ask for at most a year at a time.", field="end_date")
    if (start_time is None) != (end_time is None):
        raise ValidationError(
            "Give both a start and an end time, or neither for whole days.", field="end_time"
        )
    if start_time is not None and end_time is not None:
        begin, finish = window_minutes(start_time, end_time)
        if finish <= begin:
            raise ValidationError(
                "The end time must be after the start (00:00 = midnight).", field="end_time"
            )
        if start_time == MIDNIGHT and end_time == MIDNIGHT:
            start_time = end_time = None
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say why, so the coordinator can plan.", field="reason")
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError(
            f"The reason is too long ({REASON_MAX_LENGTH} characters at most).", field="reason"
        )
    request = TimeOffRequest(
        nurse_id=nurse.id,
        start_date=start_date,
        end_date=end_date,
        start_time=start_time,
        end_time=end_time,
        reason=reason,
        status=TimeOffStatus.PENDING,
        requested_by_user_id=actor.user_id,
        created_at=now,
    )
    session.add(request)
    session.flush()
    audit(
        session,
        actor=actor,
        action="time_off.requested",
        entity_type="nurse",
        entity_id=nurse.id,
        now=now,
        request_id=request.id,
    )
    return request


def _pending(session: Session, request_id: int) -> TimeOffRequest:
    request = get_or_raise(session, TimeOffRequest, request_id, "request")
    if request.status != TimeOffStatus.PENDING:
        raise InvalidState(f"That request was already {request.status}.", field="request_id")
    return request


def would_collide(session: Session, request: TimeOffRequest) -> list[OverrideCollision]:
    """The booked visits the requested time off would cover, before anyone approves it."""
    # The same check approval runs, on an override that is never added to the session.
    preview = NurseAvailabilityOverride(
        nurse_id=request.nurse_id,
        kind=OverrideKind.TIME_OFF,
        start_date=request.start_date,
        end_date=request.end_date,
        start_time=request.start_time,
        end_time=request.end_time,
    )
    return colliding_appointments(session, preview, request.nurse.time_zone)


def approve_time_off(
    session: Session, request_id: int, *, actor: Actor, now: datetime
) -> tuple[TimeOffRequest, list[OverrideCollision]]:
    """Approve: add the time-off override, and say which booked visits it collides with."""
    now = require_aware(now, "now")
    request = _pending(session, request_id)
    override, collisions = add_override(
        session,
        request.nurse_id,
        kind=OverrideKind.TIME_OFF,
        start_date=request.start_date,
        end_date=request.end_date,
        start_time=request.start_time,
        end_time=request.end_time,
        reason=request.reason,
        actor=actor,
        now=now,
    )
    request.status = TimeOffStatus.APPROVED
    request.override_id = override.id
    request.decided_by_user_id = actor.user_id
    request.decided_at = now
    session.flush()
    audit(
        session,
        actor=actor,
        action="time_off.approved",
        entity_type="nurse",
        entity_id=request.nurse_id,
        now=now,
        request_id=request.id,
        override_id=override.id,
    )
    return request, collisions


def decline_time_off(
    session: Session, request_id: int, *, actor: Actor, now: datetime, note: str = ""
) -> TimeOffRequest:
    """Decline, with an optional note the nurse sees."""
    now = require_aware(now, "now")
    note = (note or "").strip()
    if len(note) > REASON_MAX_LENGTH:
        raise ValidationError(
            f"The note is too long ({REASON_MAX_LENGTH} characters at most).", field="note"
        )
    request = _pending(session, request_id)
    request.status = TimeOffStatus.DECLINED
    request.decision_note = note
    request.decided_by_user_id = actor.user_id
    request.decided_at = now
    session.flush()
    audit(
        session,
        actor=actor,
        action="time_off.declined",
        entity_type="nurse",
        entity_id=request.nurse_id,
        now=now,
        request_id=request.id,
    )
    return request


def pending_requests(session: Session) -> list[TimeOffRequest]:
    """Requests waiting for a coordinator, oldest first."""
    return list(
        session.scalars(
            select(TimeOffRequest)
            .where(TimeOffRequest.status == TimeOffStatus.PENDING)
            .order_by(TimeOffRequest.created_at, TimeOffRequest.id)
        )
    )


def requests_of(session: Session, nurse_id: int, *, limit: int = 20) -> list[TimeOffRequest]:
    """A nurse's own requests, newest first."""
    return list(
        session.scalars(
            select(TimeOffRequest)
            .where(TimeOffRequest.nurse_id == nurse_id)
            .order_by(TimeOffRequest.created_at.desc(), TimeOffRequest.id.desc())
            .limit(limit)
        )
    )
