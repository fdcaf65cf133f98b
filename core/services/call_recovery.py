"""Finding calls that can no longer finish by themselves, and finishing them.

A call reaches its final state when its media stream ends or Twilio says so. When neither can
happen (the voice process holding the call died, the stream never connected, Twilio never
confirmed an outbound call), the reconciler closes the record as `failed` with the reason, and
assembles the transcript from the lines already stored. Each voice service instance runs it
when it starts and then on a timer; finishing is idempotent, so instances may overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.orm import Session

from core.models import Call, CallStatus, VoiceInstance
from core.scheduling import require_aware
from core.services.calls import finish_call


@dataclass(frozen=True)
class RecoveryTimings:
    """How long each kind of unfinished call is given before it is closed as failed."""

    # An instance that has not beaten for this long is taken for dead (beats every 10 s).
    instance_silent: timedelta = timedelta(seconds=45)
    # An answered call whose stream token (valid 60 s) was never used.
    stream_never_started: timedelta = timedelta(minutes=2)
    # An outbound call still queued without a CallSid: Twilio never took it.
    never_placed: timedelta = timedelta(minutes=5)
    # An outbound call Twilio took but never reported answered or ended.
    never_answered: timedelta = timedelta(minutes=15)
    # A call held by no known instance (recorded before instances were tracked).
    unowned: timedelta = timedelta(hours=6)


PROCESS_GONE = "The voice service handling this call stopped during the call."
PROCESS_RESTARTED = "The voice service restarted during the call."
STREAM_NEVER_STARTED = "The call's audio stream never connected."
NEVER_PLACED = "The call was never placed with Twilio."
NEVER_ANSWERED = "Twilio never reported how the call ended."


def start_instance(session: Session, name: str, *, now: datetime) -> list[int]:
    """Register instance `name` as alive, and fail the calls its previous run left open.

    Run before the instance takes calls: whatever answered call is still held under its name
    belonged to a process that is gone. Calls still being placed or ringing are left alone:
    Twilio will ask any instance how to answer them.
    """
    now = require_aware(now, "now")
    instance = session.get(VoiceInstance, name)
    if instance is None:
        session.add(VoiceInstance(name=name, started_at=now, heartbeat_at=now))
    else:
        instance.started_at = instance.heartbeat_at = now
    session.flush()
    orphans = _unfinished(
        session,
        and_(
            Call.handled_by == name,
            Call.status.in_([CallStatus.IN_PROGRESS, CallStatus.QUEUED]),
        ),
    )
    return _fail(session, orphans, PROCESS_RESTARTED, now)


def heartbeat(session: Session, name: str, *, now: datetime) -> None:
    """Instance `name` is alive now."""
    now = require_aware(now, "now")
    instance = session.get(VoiceInstance, name)
    if instance is None:
        session.add(VoiceInstance(name=name, started_at=now, heartbeat_at=now))
    else:
        instance.heartbeat_at = now
    session.flush()


def stop_instance(session: Session, name: str) -> None:
    """Instance `name` stopped cleanly (its calls have finished)."""
    session.execute(delete(VoiceInstance).where(VoiceInstance.name == name))


def reconcile(
    session: Session,
    *,
    now: datetime,
    timings: RecoveryTimings | None = None,
    judge_instances: bool = True,
) -> list[int]:
    """Fail every call that can no longer finish by itself; the ids of those closed.

    With `judge_instances` False, calls of instances that stopped beating are left alone: after
    a database outage every instance's heartbeat is old, and the others need a beat's time to
    show they are alive.
    """
    now = require_aware(now, "now")
    timings = timings or RecoveryTimings()
    closed: list[int] = []
    if judge_instances:
        alive = select(VoiceInstance.name).where(
            VoiceInstance.heartbeat_at >= now - timings.instance_silent
        )
        # Answered calls whose instance stopped beating (or was never seen).
        gone = and_(
            Call.status == CallStatus.IN_PROGRESS,
            Call.handled_by.is_not(None),
            Call.handled_by.not_in(alive),
        )
        closed += _fail(session, _unfinished(session, gone), PROCESS_GONE, now)
    never_streamed = and_(
        Call.status == CallStatus.IN_PROGRESS,
        Call.stream_nonce.is_not(None),
        Call.stream_started_at.is_(None),
        Call.answered_at < now - timings.stream_never_started,
    )
    closed += _fail(session, _unfinished(session, never_streamed), STREAM_NEVER_STARTED, now)
    unplaced = and_(
        Call.status == CallStatus.QUEUED,
        Call.call_sid.is_(None),
        Call.created_at < now - timings.never_placed,
    )
    closed += _fail(session, _unfinished(session, unplaced), NEVER_PLACED, now)
    unanswered = and_(
        Call.status.in_([CallStatus.QUEUED, CallStatus.INITIATED, CallStatus.RINGING]),
        Call.created_at < now - timings.never_answered,
    )
    closed += _fail(session, _unfinished(session, unanswered), NEVER_ANSWERED, now)
    unowned = and_(
        Call.status == CallStatus.IN_PROGRESS,
        Call.handled_by.is_(None),
        or_(Call.answered_at.is_(None), Call.answered_at < now - timings.unowned),
        Call.created_at < now - timings.unowned,
    )
    closed += _fail(session, _unfinished(session, unowned), PROCESS_GONE, now)
    return closed


def _unfinished(session: Session, condition: ColumnElement[bool]) -> list[int]:
    """Ids of the calls matching `condition`; on PostgreSQL, rows another instance is already
    finishing are skipped rather than waited for."""
    query = select(Call.id).where(condition).order_by(Call.id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def _fail(session: Session, call_ids: list[int], reason: str, now: datetime) -> list[int]:
    """Close each call as failed with `reason`, keeping what it achieved (its outcome)."""
    for call_id in call_ids:
        finish_call(session, call_id, now=now, status=CallStatus.FAILED, error=reason)
    return call_ids
