"""Twilio webhooks and /make-call over real loopback sockets: signatures, Call rows, TwiML."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Call, Notification
from core.services.booking import book_appointment
from tests.services.world import ACTOR, build_world, local
from tests.voice.fakes import greet_then_idle, idle
from tests.voice.stack import (
    ACCOUNT_SID,
    INTERNAL_TOKEN,
    PRACTICE_NUMBER,
    Stack,
    open_factory,
    voice_stack,
)

JOHN = "+12025550101"


def _factory(url: str) -> sessionmaker[Session]:
    return open_factory(url)


def _calls(factory: sessionmaker[Session]) -> list[Call]:
    with factory() as session:
        return list(session.scalars(select(Call).order_by(Call.id)))


def test_incoming_call_answers_with_a_signed_stream_and_records_the_call(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    world = build_world(factory, datetime.now(UTC))

    async def scenario() -> None:
        async with voice_stack(sqlite_url, idle) as stack:
            call_sid, answer = await stack.incoming_call(from_number=JOHN)
            assert answer.status == 200, answer.body
            assert answer.stream_url == "wss://voice.example.test/media-stream"
            assert answer.params["token"]
            [call] = _calls(factory)
            assert (call.call_sid, call.direction, call.patient_id) == (
                call_sid,
                "inbound",
                world.patient_id,
            )
            assert call.stream_nonce and call.stream_started_at is None
            # The model socket is opened and configured while answering, so the greeting is
            # not delayed by either round trip; nothing but the configuration (no caller data)
            # is sent on it until the stream authenticates.
            await _until(lambda: len(stack.realtime.sessions) == 1)
            [model] = stack.realtime.sessions
            await _until(lambda: bool(model.received))
            assert [event["type"] for event in model.received] == ["session.update"]

    asyncio.run(scenario())


def test_unknown_caller_gets_a_call_row_without_a_patient(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)

    async def scenario() -> None:
        async with voice_stack(sqlite_url, idle) as stack:
            _, answer = await stack.incoming_call(from_number="+12025559999")
            assert answer.status == 200
            [call] = _calls(factory)
            assert call.patient_id is None and not call.verified

    asyncio.run(scenario())


def test_forged_or_missing_signature_is_refused_and_writes_nothing(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)

    async def scenario() -> None:
        async with voice_stack(sqlite_url, idle) as stack:
            for signature in (None, "forged", "AAAA" * 7):
                _, answer = await stack.incoming_call(from_number=JOHN, signature=signature)
                assert answer.status == 403
            response = await stack.post_twilio(
                "/call-status", {"CallSid": "CA1", "CallStatus": "completed"}, signature="bad"
            )
            assert response.status_code == 403
            await asyncio.sleep(0.2)
            assert stack.realtime.sessions == []
            with factory() as session:
                assert session.scalar(select(func.count()).select_from(Call)) == 0
            _, answer = await stack.incoming_call(from_number=JOHN)
            assert answer.status == 200
            with factory() as session:
                assert session.scalar(select(func.count()).select_from(Call)) == 1

    asyncio.run(scenario())


def test_without_an_auth_token_webhooks_are_refused(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)

    async def scenario() -> None:
        async with voice_stack(sqlite_url, idle, twilio_auth_token="") as stack:
            _, answer = await stack.incoming_call(from_number=JOHN, signature=None)
            assert answer.status == 403
            assert _calls(factory) == []

    asyncio.run(scenario())


def test_unsigned_webhooks_pass_only_with_the_development_switch(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)

    async def scenario() -> None:
        async with voice_stack(
            sqlite_url, idle, twilio_auth_token="", allow_unsigned_webhooks=True
        ) as stack:
            _, answer = await stack.incoming_call(from_number=JOHN, signature=None)
            assert answer.status == 200 and answer.params["token"]
            assert len(_calls(factory)) == 1

    asyncio.run(scenario())


def test_status_callbacks_keep_the_call_record_right(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)

    async def scenario() -> None:
        async with voice_stack(sqlite_url, idle) as stack:
            call_sid, _ = await stack.incoming_call(from_number=JOHN)
            response = await stack.post_twilio(
                "/call-status",
                {"CallSid": call_sid, "CallStatus": "completed", "CallDuration": "42"},
            )
            assert response.status_code == 204
            # Out of order: a late "ringing" does not reopen the call.
            await stack.post_twilio("/call-status", {"CallSid": call_sid, "CallStatus": "ringing"})
            [call] = _calls(factory)
            assert (call.status, call.duration_seconds, call.outcome) == (
                "completed",
                42,
                "completed",
            )
            assert call.ended_at is not None and call.answered_at is not None
            unknown = await stack.post_twilio(
                "/call-status", {"CallSid": "CAunknown", "CallStatus": "completed"}
            )
            assert unknown.status_code == 204
            assert len(_calls(factory)) == 1

    asyncio.run(scenario())


def test_make_call_needs_the_internal_token_and_places_the_call(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    world = build_world(factory, datetime.now(UTC))

    async def scenario() -> None:
        async with voice_stack(sqlite_url, idle) as stack:
            url = stack.base + "/make-call"
            body = {"patient_id": world.patient_id}
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
                response = await stack.http.post(url, json=body, headers=headers)
                assert response.status_code == 401
            assert _calls(factory) == [] and stack.rest.requests == []

            auth = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
            missing = await stack.http.post(url, json={"patient_id": 999}, headers=auth)
            assert missing.status_code == 404
            response = await stack.http.post(url, json=body, headers=auth)
            assert response.status_code == 201, response.text
            call_sid = response.json()["call_sid"]
            [created] = stack.rest.requests
            assert created.path.endswith("/Calls.json")
            assert created.form["To"] == JOHN and created.form["From"] == PRACTICE_NUMBER
            assert created.form["Url"] == "https://voice.example.test/incoming-call"
            assert created.form["StatusCallback"] == "https://voice.example.test/call-status"
            # Answering machines are detected while the agent already talks to a person.
            assert created.form["MachineDetection"] == "DetectMessageEnd"
            assert created.form["AsyncAmd"] == "true"
            assert created.form["AsyncAmdStatusCallback"] == "https://voice.example.test/amd-status"

            # Twilio then fetches the answer URL for the outbound call.
            _, answer = await stack.incoming_call(
                from_number=PRACTICE_NUMBER,
                to_number=JOHN,
                call_sid=call_sid,
                direction="outbound-api",
            )
            assert answer.status == 200 and answer.params["token"]
            [call] = _calls(factory)
            assert (call.direction, call.call_sid, call.patient_id, call.status) == (
                "outbound",
                call_sid,
                world.patient_id,
                "in-progress",
            )

    asyncio.run(scenario())


def test_an_unclaimed_preopened_model_socket_is_closed(sqlite_url: str) -> None:
    async def scenario() -> None:
        async with voice_stack(sqlite_url, idle, app_config={"PREOPEN_TTL_SECONDS": 0.3}) as stack:
            await stack.incoming_call(from_number=JOHN)
            await _until(lambda: len(stack.realtime.sessions) == 1)
            [model] = stack.realtime.sessions
            await asyncio.wait_for(model.closed.wait(), 2)
            # Configured while the webhook ran, then closed unused.
            assert [event["type"] for event in model.received] == ["session.update"]

    asyncio.run(scenario())


async def _until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.01)


def test_text_delivery_reports_settle_the_notification(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    now = datetime.now(UTC)
    world = build_world(factory, now)
    with factory() as session:
        visit = book_appointment(
            session,
            patient_id=world.patient_id,
            actor=ACTOR,
            now=now,
            start=local(now.date() + _weekday_offset(now), 10),
        )
        text = session.scalar(
            select(Notification).where(
                Notification.appointment_id == visit.id,
                Notification.channel == "sms",
                Notification.event == "appointment_booked",
            )
        )
        text.status, text.provider_id = "sent", "SM0123456789abcdef"
        session.commit()
        text_id = text.id

    async def scenario() -> None:
        async with voice_stack(sqlite_url, idle) as stack:
            path = "/twilio/message-status"
            report = {"MessageSid": "SM0123456789abcdef", "MessageStatus": "delivered"}
            forged = await stack.post_twilio(path, report, signature="forged")
            assert forged.status_code == 403
            with factory() as session:
                assert session.get(Notification, text_id).status == "sent"
            assert (await stack.post_twilio(path, report)).status_code == 204
            unknown = {"MessageSid": "SMnever", "MessageStatus": "delivered"}
            assert (await stack.post_twilio(path, unknown)).status_code == 404
            assert (await stack.post_twilio(path, {"MessageStatus": "x"})).status_code == 400

    asyncio.run(scenario())
    with factory() as session:
        assert session.get(Notification, text_id).status == "delivered"


def _weekday_offset(now: datetime) -> timedelta:
    """Days from `now` to a weekday at least two days ahead (the test nurse works Mon-Fri)."""
    days = 2
    while (now + timedelta(days=days)).weekday() >= 5:
        days += 1
    return timedelta(days=days)


async def _place_call(stack: Stack, patient_id: int) -> str:
    """What the dashboard's Call patient asks of the voice service; the new CallSid."""
    placed = await stack.http.post(
        stack.base + "/make-call",
        json={"patient_id": patient_id},
        headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
    )
    assert placed.status_code == 201, placed.text
    return str(placed.json()["call_sid"])


def _amd(call_sid: str, answered_by: str) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "AnsweredBy": answered_by,
        "MachineDetectionDuration": "4200",
    }


def test_an_answering_machine_gets_a_short_message_and_the_patient_a_text(
    db_url: str,
) -> None:
    factory = _factory(db_url)
    world = build_world(factory, datetime.now(UTC))

    async def scenario() -> None:
        async with voice_stack(db_url, greet_then_idle) as stack:
            call_sid = await _place_call(stack, world.patient_id)
            _, answer = await stack.incoming_call(
                from_number=PRACTICE_NUMBER,
                to_number=JOHN,
                call_sid=call_sid,
                direction="outbound-api",
            )
            call = await stack.open_stream(call_sid, answer.params, stream_url=answer.stream_url)
            await call.wait_for(lambda: bool(call.sent_events("media")))  # the agent greets

            unsigned = await stack.post_twilio(
                "/amd-status", _amd(call_sid, "human"), signature=None
            )
            assert unsigned.status_code == 403
            report = await stack.post_twilio("/amd-status", _amd(call_sid, "machine_end_beep"))
            assert report.status_code == 204
            await call.wait_closed()  # the message replaced the stream
            again = await stack.post_twilio("/amd-status", _amd(call_sid, "machine_end_beep"))
            assert again.status_code == 204
            [update] = stack.rest.updates(call_sid)  # acted on once
            message = update["Twiml"]
            assert "Carematix" in message and "2 0 2, 5 5 5, 0 1 9 9" in message
            assert "<Hangup" in message
            for detail in ("John", "Smith", "Alice", "visit", "nurse"):
                assert detail not in message  # anyone may hear a voicemail
            await _until(lambda: _calls(factory)[0].ended_at is not None)

    asyncio.run(scenario())

    [row] = _calls(factory)
    assert (row.answered_by, row.outcome) == ("machine", "voicemail")
    with factory() as session:
        [text] = session.scalars(select(Notification).where(Notification.event == "missed_call"))
        assert text.patient_id == world.patient_id and text.channel == "sms"
        assert "call us back at +12025550199" in text.body and "John" not in text.body


def test_a_person_answering_keeps_the_agent_and_unknown_reports_change_nothing(
    sqlite_url: str,
) -> None:
    factory = _factory(sqlite_url)
    world = build_world(factory, datetime.now(UTC))

    async def scenario() -> None:
        async with voice_stack(sqlite_url, idle) as stack:
            call_sid = await _place_call(stack, world.patient_id)
            human = await stack.post_twilio("/amd-status", _amd(call_sid, "human"))
            unknown = await stack.post_twilio("/amd-status", _amd("CA" + "0" * 32, "machine_start"))
            assert human.status_code == unknown.status_code == 204
            assert stack.rest.updates(call_sid) == []
            # An inbound call is never treated as ours to detect.
            inbound_sid, _ = await stack.incoming_call(from_number=JOHN)
            await stack.post_twilio("/amd-status", _amd(inbound_sid, "machine_end_beep"))
            assert stack.rest.updates(inbound_sid) == []

    asyncio.run(scenario())
    outbound, inbound = _calls(factory)
    assert (outbound.answered_by, outbound.outcome) == ("human", None)
    assert (inbound.answered_by, inbound.outcome) == (None, None)
