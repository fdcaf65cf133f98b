"""The reconciler's rules on both databases: which unfinished calls it closes, and which not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from core.db import transaction
from core.models import Call, CallDirection, CallStatus
from core.services import call_recovery, calls

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
CALLER = "+12025550101"


def _answered(
    session: Session, sid: str, *, instance: str | None, at: datetime, streamed: bool = True
) -> Call:
    call = calls.answer_call(
        session,
        call_sid=sid,
        from_number=CALLER,
        to_number="+12025550199",
        outbound=False,
        now=at,
        stream_nonce="nonce-" + sid,
        instance=instance,
    )
    if streamed:
        calls.consume_stream_token(
            session, call_sid=sid, nonce="nonce-" + sid, now=at, instance=instance
        )
    return call


def _outbound(session: Session, *, status: str, sid: str | None, at: datetime) -> Call:
    call = Call(
        call_sid=sid,
        direction=CallDirection.OUTBOUND,
        to_number=CALLER,
        status=status,
        created_at=at,
    )
    session.add(call)
    session.flush()
    return call


def _state(factory: sessionmaker[Session], call_id: int) -> tuple[str, str | None, str | None]:
    with factory() as session:
        call = session.get(Call, call_id)
        assert call is not None
        return call.status, call.error, call.outcome


def test_each_kind_of_stuck_call_is_closed_and_live_ones_are_left(
    session_factory: sessionmaker[Session],
) -> None:
    with transaction(session_factory) as session:
        call_recovery.heartbeat(session, "alive", now=NOW - timedelta(seconds=5))
        call_recovery.heartbeat(session, "silent", now=NOW - timedelta(minutes=2))
        live = _answered(session, "CA1", instance="alive", at=NOW - timedelta(minutes=30)).id
        lost = _answered(session, "CA2", instance="silent", at=NOW - timedelta(minutes=1)).id
        no_stream = _answered(
            session, "CA3", instance="alive", at=NOW - timedelta(minutes=3), streamed=False
        ).id
        connecting = _answered(
            session, "CA4", instance="alive", at=NOW - timedelta(seconds=20), streamed=False
        ).id
        unplaced = _outbound(
            session, status=CallStatus.QUEUED, sid=None, at=NOW - timedelta(minutes=6)
        ).id
        placing = _outbound(
            session, status=CallStatus.QUEUED, sid=None, at=NOW - timedelta(seconds=10)
        ).id
        ringing_long = _outbound(
            session, status=CallStatus.RINGING, sid="CA7", at=NOW - timedelta(minutes=20)
        ).id
        ringing = _outbound(
            session, status=CallStatus.RINGING, sid="CA8", at=NOW - timedelta(seconds=30)
        ).id
        calls.set_outcome(session, lost, "booked")

    with transaction(session_factory) as session:
        closed = call_recovery.reconcile(session, now=NOW)

    assert sorted(closed) == sorted([lost, no_stream, unplaced, ringing_long])
    # What the call achieved before its process died is kept.
    assert _state(session_factory, lost) == ("failed", call_recovery.PROCESS_GONE, "booked")
    assert _state(session_factory, no_stream)[:2] == (
        "failed",
        call_recovery.STREAM_NEVER_STARTED,
    )
    assert _state(session_factory, unplaced)[:2] == ("failed", call_recovery.NEVER_PLACED)
    assert _state(session_factory, ringing_long)[:2] == ("failed", call_recovery.NEVER_ANSWERED)
    for untouched in (live, connecting, placing, ringing):
        assert _state(session_factory, untouched)[0] != "failed"
    # A second sweep finds nothing more: closing is done once.
    with transaction(session_factory) as session:
        assert call_recovery.reconcile(session, now=NOW + timedelta(seconds=10)) == []


def test_after_a_database_outage_other_instances_are_not_judged_at_once(
    session_factory: sessionmaker[Session],
) -> None:
    with transaction(session_factory) as session:
        # Every heartbeat is old: nobody could write during the outage.
        call_recovery.heartbeat(session, "other", now=NOW - timedelta(minutes=2))
        theirs = _answered(session, "CA1", instance="other", at=NOW - timedelta(minutes=3)).id

    with transaction(session_factory) as session:
        assert call_recovery.reconcile(session, now=NOW, judge_instances=False) == []
    assert _state(session_factory, theirs)[0] == "in-progress"


def test_a_restarted_instance_closes_only_the_answered_calls_of_its_last_run(
    session_factory: sessionmaker[Session],
) -> None:
    with transaction(session_factory) as session:
        mine = _answered(session, "CA1", instance="voice-a", at=NOW - timedelta(seconds=30)).id
        theirs = _answered(session, "CA2", instance="voice-b", at=NOW - timedelta(seconds=30)).id
        ringing = _outbound(
            session, status=CallStatus.RINGING, sid="CA3", at=NOW - timedelta(seconds=30)
        )
        ringing.handled_by = "voice-a"
        ringing_id = ringing.id

    with transaction(session_factory) as session:
        closed = call_recovery.start_instance(session, "voice-a", now=NOW)

    assert closed == [mine]
    assert _state(session_factory, mine)[:2] == ("failed", call_recovery.PROCESS_RESTARTED)
    assert _state(session_factory, theirs)[0] == "in-progress"
    # Twilio will still ask how to answer the ringing call: any instance can.
    assert _state(session_factory, ringing_id)[0] == "ringing"
