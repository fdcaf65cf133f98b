"""A call's record from answer to final state, over real sockets on both databases: the stream's
end finishes it, status callbacks only refine it, a replayed webhook cannot reopen it, an
unanswered transfer becomes a callback request, and a crashed instance's calls are closed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.call_lifecycle import is_final
from core.db import transaction
from core.models import Call, CallbackRequest, ConversationLog
from core.services import calls
from core.services.call_recovery import (
    PROCESS_GONE,
    PROCESS_RESTARTED,
    RecoveryTimings,
    heartbeat,
)
from tests.services.world import build_world
from tests.voice.fakes import greet_then_idle, twiml_verbs
from tests.voice.stack import open_factory, voice_stack

JOHN = "+12025550101"


def _call(factory: sessionmaker[Session], call_sid: str) -> Call:
    with factory() as session:
        call = session.scalar(select(Call).where(Call.call_sid == call_sid))
        assert call is not None
        session.refresh(call, ["transcript"])
        return call


async def _until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("ending", ["stop", "socket closed"])
def test_an_inbound_call_is_finished_when_its_stream_ends(db_url: str, ending: str) -> None:
    factory = open_factory(db_url)
    build_world(factory, datetime.now(UTC))

    async def scenario() -> None:
        async with voice_stack(db_url, greet_then_idle) as stack:
            call_sid, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: bool(call.sent_events("media")))
            # No status callback is configured for inbound numbers: the stream is all we get.
            await (call.stop() if ending == "stop" else call.close())
            await _until(lambda: is_final(_call(factory, call_sid).status))

    asyncio.run(scenario())
    with factory() as session:
        call = session.scalar(select(Call))
        assert call is not None
        assert (call.status, call.outcome) == ("completed", "completed")
        assert call.ended_at is not None and call.duration_seconds is not None
        assert call.transcript is not None
        assert "Agent: Hello, this is the Carematix" in call.transcript.text


def test_status_callbacks_refine_and_never_regress(db_url: str) -> None:
    factory = open_factory(db_url)

    async def scenario() -> None:
        async with voice_stack(db_url, greet_then_idle) as stack:
            call_sid, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: bool(call.sent_events("media")))
            # A late "ringing" after the call was answered moves nothing back.
            await stack.post_twilio("/call-status", {"CallSid": call_sid, "CallStatus": "ringing"})
            assert _call(factory, call_sid).status == "in-progress"
            await call.stop()
            await _until(lambda: is_final(_call(factory, call_sid).status))
            # Twilio's final report arrives after the stream's end: its duration refines ours.
            await stack.post_twilio(
                "/call-status",
                {"CallSid": call_sid, "CallStatus": "completed", "CallDuration": "42"},
            )
            await stack.post_twilio("/call-status", {"CallSid": call_sid, "CallStatus": "ringing"})
            await stack.post_twilio("/call-status", {"CallSid": call_sid, "CallStatus": "busy"})

    asyncio.run(scenario())
    with factory() as session:
        call = session.scalar(select(Call))
        assert call is not None
        assert (call.status, call.duration_seconds, call.outcome) == ("completed", 42, "completed")


def test_a_replayed_webhook_cannot_reopen_a_finished_call(db_url: str) -> None:
    factory = open_factory(db_url)

    async def scenario() -> None:
        async with voice_stack(db_url, greet_then_idle) as stack:
            call_sid, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: bool(call.sent_events("media")))
            await call.stop()
            await _until(lambda: is_final(_call(factory, call_sid).status))
            ended = _call(factory, call_sid)

            # The captured, correctly signed webhook, sent again.
            _, replay = await stack.incoming_call(from_number=JOHN, call_sid=call_sid)
            assert replay.status == 200
            assert [verb for verb, _, _ in twiml_verbs(replay.body)] == ["Hangup"]
            after = _call(factory, call_sid)
            assert (after.status, after.stream_nonce, after.ended_at) == (
                "completed",
                ended.stream_nonce,
                ended.ended_at,
            )

    asyncio.run(scenario())


def test_a_second_webhook_for_a_streaming_call_gets_no_new_stream(db_url: str) -> None:
    factory = open_factory(db_url)

    async def scenario() -> None:
        async with voice_stack(db_url, greet_then_idle) as stack:
            call_sid, answer = await stack.incoming_call(from_number=JOHN)
            call = await stack.open_stream(call_sid, answer.params)
            await call.wait_for(lambda: bool(call.sent_events("media")))
            _, replay = await stack.incoming_call(from_number=JOHN, call_sid=call_sid)
            assert [verb for verb, _, _ in twiml_verbs(replay.body)] == ["Hangup"]
            # The live call is untouched, and its token still the one in use.
            assert _call(factory, call_sid).status == "in-progress"
            await call.stop()

    asyncio.run(scenario())


def test_a_stream_token_opens_nothing_once_the_call_has_ended(db_url: str) -> None:
    factory = open_factory(db_url)

    async def scenario() -> None:
        async with voice_stack(db_url, greet_then_idle) as stack:
            call_sid, answer = await stack.incoming_call(from_number=JOHN)
            # The caller hung up before the stream connected; Twilio says so.
            await stack.post_twilio(
                "/call-status", {"CallSid": call_sid, "CallStatus": "completed"}
            )
            late = await stack.open_stream(call_sid, answer.params)
            await late.wait_closed()
            assert late.close_code == 1008
            assert _call(factory, call_sid).stream_started_at is None

    asyncio.run(scenario())


@pytest.mark.parametrize("dial_status", ["no-answer", "busy"])
def test_an_unanswered_transfer_becomes_one_callback_request(db_url: str, dial_status: str) -> None:
    factory = open_factory(db_url)
    world = build_world(factory, datetime.now(UTC))

    async def scenario() -> None:
        async with voice_stack(db_url, greet_then_idle, staff_phone_number="+12025550150") as stack:
            call_sid, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: bool(call.sent_events("media")))
            await call.dtmf("0")
            await call.wait_closed()
            await _until(lambda: is_final(_call(factory, call_sid).status))
            assert _call(factory, call_sid).outcome == "transferred"
            params = {"CallSid": call_sid, "DialCallStatus": dial_status, "DialCallDuration": "0"}
            answer = await stack.post_twilio("/dial-status", params)
            verbs = twiml_verbs(answer.text)
            assert [verb for verb, _, _ in verbs] == ["Say", "Hangup"]
            assert "call you back" in verbs[0][1]
            # Twilio retries a request it thinks failed: still one request.
            await stack.post_twilio("/dial-status", params)
            forged = await stack.post_twilio("/dial-status", params, signature="bad")
            assert forged.status_code == 403

    asyncio.run(scenario())
    with factory() as session:
        [request] = session.scalars(select(CallbackRequest))
        call = session.scalar(select(Call))
        assert call is not None and call.transcript is not None
        assert (request.call_id, request.patient_id) == (call.id, world.patient_id)
        assert call.outcome == "callback_requested"
        assert "no one answered" in call.transcript.text
        assert call.transcript.summary.splitlines() == [
            "Transferred to staff; no one answered, so a callback was requested.",
            "Outcome: callback requested.",
        ]


def test_an_answered_transfer_ends_with_a_hang_up_and_no_callback(db_url: str) -> None:
    factory = open_factory(db_url)

    async def scenario() -> None:
        async with voice_stack(db_url, greet_then_idle, staff_phone_number="+12025550150") as stack:
            call_sid, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: bool(call.sent_events("media")))
            await call.dtmf("0")
            await call.wait_closed()
            await _until(lambda: is_final(_call(factory, call_sid).status))
            answer = await stack.post_twilio(
                "/dial-status",
                {"CallSid": call_sid, "DialCallStatus": "completed", "DialCallDuration": "65"},
            )
            assert [verb for verb, _, _ in twiml_verbs(answer.text)] == ["Hangup"]

    asyncio.run(scenario())
    with factory() as session:
        assert session.scalars(select(CallbackRequest)).all() == []
        call = session.scalar(select(Call))
        assert call is not None and call.outcome == "transferred"
        assert call.transcript is not None and "Staff answered" in call.transcript.text
        assert call.transcript.summary.startswith("Transferred to staff; staff answered.")


def _in_progress_call(
    factory: sessionmaker[Session], call_sid: str, instance: str, answered: datetime
) -> int:
    """A call answered and streaming on `instance`, with one stored line."""
    with transaction(factory) as session:
        call = calls.answer_call(
            session,
            call_sid=call_sid,
            from_number=JOHN,
            to_number="+12025550199",
            outbound=False,
            now=answered,
            stream_nonce="n-" + call_sid,
            instance=instance,
        )
        calls.consume_stream_token(
            session, call_sid=call_sid, nonce="n-" + call_sid, now=answered, instance=instance
        )
        calls.append_log(
            session, call_id=call.id, position=0, role="assistant", text="Hello.", now=answered
        )
        return call.id


def test_calls_left_open_by_a_crashed_instance_are_finished_when_it_returns(db_url: str) -> None:
    factory = open_factory(db_url)
    answered = datetime.now(UTC) - timedelta(minutes=3)
    mine = _in_progress_call(factory, "CA-orphan", "voice-a", answered)
    other = _in_progress_call(factory, "CA-other", "voice-b", answered)
    with transaction(factory) as session:
        heartbeat(session, "voice-b", now=datetime.now(UTC))

    async def scenario() -> None:
        # The same instance name comes back (supervisor restarted it after a kill -9).
        async with voice_stack(db_url, greet_then_idle, voice_instance_name="voice-a"):
            with factory() as session:
                orphan = session.get(Call, mine)
                live = session.get(Call, other)
                assert orphan is not None and live is not None
                assert (orphan.status, orphan.error) == ("failed", PROCESS_RESTARTED)
                assert orphan.outcome == "failed" and orphan.duration_seconds is not None
                assert orphan.transcript is not None
                assert orphan.transcript.text == "Agent: Hello."
                # Another instance's call, still beating, is left alone.
                assert live.status == "in-progress"

    asyncio.run(scenario())


def test_an_instance_that_stops_beating_has_its_calls_finished_by_another(db_url: str) -> None:
    factory = open_factory(db_url)
    answered = datetime.now(UTC) - timedelta(minutes=3)
    lost = _in_progress_call(factory, "CA-lost", "voice-gone", answered)
    with transaction(factory) as session:
        heartbeat(session, "voice-gone", now=datetime.now(UTC) - timedelta(minutes=2))

    async def scenario() -> None:
        async with voice_stack(
            db_url,
            greet_then_idle,
            voice_instance_name="voice-survivor",
            app_config={
                "RECONCILER_OPTIONS": {
                    "interval": 0.1,
                    "timings": RecoveryTimings(instance_silent=timedelta(seconds=1)),
                }
            },
        ):
            await _until(lambda: _status(factory, lost) == "failed")

    asyncio.run(scenario())
    with factory() as session:
        call = session.get(Call, lost)
        assert call is not None and call.error == PROCESS_GONE
        lines = session.scalars(select(ConversationLog).where(ConversationLog.call_id == lost))
        assert [line.text for line in lines] == ["Hello."]  # nothing stored was lost


def _status(factory: sessionmaker[Session], call_id: int) -> str:
    with factory() as session:
        call = session.get(Call, call_id)
        assert call is not None
        return call.status
