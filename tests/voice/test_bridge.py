"""End-to-end calls over real sockets: fake Twilio <-> voice service <-> fake Realtime."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.models import (
    Appointment,
    Call,
    CallbackRequest,
    Notification,
    PatientNurseAssignment,
)
from core.outbox import BookingEvent
from core.services import booking
from core.services.common import Actor
from tests.services.world import World, build_world, local
from tests.voice.fakes import FakeModelSession, idle, twiml_verbs
from tests.voice.stack import open_factory, stored_lines, visit_day, voice_stack

JOHN = "+12025550101"
JOHN_DOB = "1958-04-12"


def _factory(url: str) -> sessionmaker[Session]:
    return open_factory(url)


def _world(factory: sessionmaker[Session]) -> World:
    return build_world(factory, datetime.now(UTC))


def _call(factory: sessionmaker[Session]) -> Call:
    with factory() as session:
        call = session.scalar(select(Call))
        assert call is not None
        _ = call.transcript
        return call


def test_inbound_call_books_an_appointment_end_to_end(db_url: str) -> None:
    # Both backends: the booking path is the one that must never regress.
    factory = _factory(db_url)
    world = _world(factory)
    day = visit_day()
    results: dict[str, Any] = {}

    async def script(model: FakeModelSession) -> None:
        session = await model.handshake()
        results["session"] = session
        await model.say("Hello, this is the Carematix scheduling assistant. How can I help?")
        await model.user_says("Hi, this is John Smith, born April 12 1958. I need a visit.")
        results["verify"] = await model.call_tool(
            "verify_patient",
            {"date_of_birth": JOHN_DOB, "full_name": "John Smith"},
            wait_for_create=False,
        )
        results["nurse"] = await model.call_tool("get_assigned_nurse", {})
        results["check"] = await model.call_tool(
            "check_availability", {"date": day.isoformat(), "time": "10:00"}
        )
        await model.say("That time is free with Alice Wilson. Shall I book it?")
        await model.user_says("Yes please.")
        args = {"start": f"{day.isoformat()}T10:00", "reason": "wound check"}
        results["book"] = await model.call_tool("book_appointment", args, wait_for_create=False)
        await model.say("You're booked. Goodbye!")
        results["end"] = await model.call_tool(
            "end_call", {"reason": "done"}, wait_for_create=False
        )
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(db_url, script) as stack:
            call_sid, call = await stack.call_in(JOHN)
            await call.wait_closed(timeout=10)
            [model] = stack.realtime.sessions
            await asyncio.wait_for(model.closed.wait(), 2)
            assert stack.realtime.script_errors == []
            assert stack.realtime.errors == []
            # Hung up through Twilio's API only after the goodbye had played.
            [hang_up] = stack.rest.updates(call_sid)
            assert hang_up["Status"] == "completed"
            assert call.played_ms >= call.audio_received_ms > 0
            # The greeting came first: response.create right after session.updated.
            assert model.received[0]["type"] == "session.update"
            results["call_sid"] = call_sid
        await asyncio.sleep(0)

    asyncio.run(scenario())

    session_config = results["session"]
    assert session_config["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session_config["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert session_config["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert {t["name"] for t in session_config["tools"]} >= {
        "verify_patient",
        "book_appointment",
        "end_call",
    }
    assert results["verify"]["verified"] is True
    assert results["nurse"]["nurse_name"] == "RN Alice Wilson"
    assert results["check"]["available"] is True
    booked = results["book"]
    assert booked["booked"] is True
    assert booked["start"] == local(day, 10).isoformat()
    assert booked["spoken"].endswith("at 10:00 AM EST") or booked["spoken"].endswith("EDT")

    call = _call(factory)
    assert call.call_sid == results["call_sid"]
    assert (call.verified, call.patient_id, call.outcome) == (True, world.patient_id, "booked")
    assert call.ended_at is not None and call.stream_started_at is not None
    with factory() as session:
        appointment = session.scalar(select(Appointment))
        assert appointment is not None
        assert (appointment.patient_id, appointment.nurse_id) == (world.patient_id, world.nurse_id)
        assert appointment.start_at == local(day, 10)
        assert (appointment.source, appointment.call_id) == ("agent", call.id)
        assert appointment.created_by == f"agent:call:{call.id}"
        channels = sorted(
            session.scalars(
                select(Notification.channel).where(
                    Notification.appointment_id == appointment.id,
                    Notification.event == BookingEvent.BOOKED,
                )
            )
        )
        assert channels == ["email", "sms"]

    lines = stored_lines(factory)
    described = [(line.role, line.tool_name or line.text[:12]) for line in lines]
    assert described == [
        ("assistant", "Hello, this "),
        ("user", "Hi, this is "),
        ("tool", "verify_patient"),
        ("tool", "get_assigned_nurse"),
        ("tool", "check_availability"),
        ("assistant", "That time is"),
        ("user", "Yes please."),
        ("tool", "book_appointment"),
        ("assistant", "You're booke"),
        ("tool", "end_call"),
    ]
    assert len({line.position for line in lines}) == len(lines)
    assert lines[7].tool_result == booked
    assert call.transcript is not None
    assert call.transcript.text.splitlines()[0].startswith("Agent: Hello")
    assert "[book_appointment: ok]" in call.transcript.text
    assert call.transcript.summary.splitlines() == [
        "Caller verified.",
        f"Booked {booked['spoken']} with {booked['nurse_name']}.",
        "Outcome: booked.",
    ]


def test_a_taken_time_gets_alternatives_and_books_nothing(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    world = _world(factory)
    day = visit_day()
    with factory() as session:
        booking.book_appointment(
            session,
            patient_id=world.other_patient_id,
            start=local(day, 10),
            actor=Actor.cli(),
            now=datetime.now(UTC),
        )
        session.commit()
    results: dict[str, Any] = {}

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hello!")
        await model.user_says("John Smith, April 12 1958.")
        await model.call_tool("verify_patient", {"date_of_birth": JOHN_DOB}, wait_for_create=False)
        results["check"] = await model.call_tool(
            "check_availability", {"date": day.isoformat(), "time": "10:00"}
        )
        results["book"] = await model.call_tool(
            "book_appointment", {"start": f"{day.isoformat()}T10:00"}
        )
        results["bad"] = await model.call_tool("book_appointment", {"start": "tomorrow at ten"})
        results["day"] = await model.call_tool("check_availability", {"date": day.isoformat()})
        await model.say("Those are the free times.")
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: "day" in results, timeout=10)
            await call.stop()
            assert stack.realtime.script_errors == [] and stack.realtime.errors == []

    asyncio.run(scenario())

    check = results["check"]
    assert check["available"] is False and check["reason"] == "conflict"
    assert 1 <= len(check["alternatives"]) <= 3
    for slot in check["alternatives"]:
        assert slot["start"] != local(day, 10).isoformat()
        assert slot["spoken"] and datetime.fromisoformat(slot["start"]).utcoffset() is not None
    assert results["book"]["error"] == "slot_unavailable"
    assert results["book"]["alternatives"]
    assert results["bad"]["error"] == "invalid_argument"
    day_slots = results["day"]["slots"]
    assert day_slots and local(day, 10).isoformat() not in {s["start"] for s in day_slots}
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Appointment)) == 1


def test_three_failed_verifications_lock_the_call(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    _world(factory)
    results: list[dict[str, Any]] = []

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hello!")
        await model.user_says("My birthday is January 1 1970.")
        results.append(await model.call_tool("list_appointments", {}, wait_for_create=False))
        for dob in ("1970-01-01", "1958-12-04", "1958-04-13", JOHN_DOB):
            results.append(await model.call_tool("verify_patient", {"date_of_birth": dob}))
        results.append(await model.call_tool("get_assigned_nurse", {}))
        await model.say("I can't verify you; let me arrange a callback.")
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: len(results) == 6, timeout=10)
            await call.stop()
            assert stack.realtime.script_errors == [] and stack.realtime.errors == []

    asyncio.run(scenario())

    assert results[0]["error"] == "not_verified"
    assert [r["error"] for r in results[1:5]] == [
        "verification_failed",
        "verification_failed",
        "verification_locked",
        "verification_locked",
    ]
    assert results[1]["attempts_left"] == 2
    assert results[5]["error"] == "not_verified"
    assert not any("John" in str(r) or "Alice" in str(r) for r in results)
    call = _call(factory)
    assert (call.verified, call.outcome) == (False, "verification_failed")
    assert call.transcript is not None
    assert call.transcript.summary.splitlines() == [
        "Verification failed.",
        "Verification failed.",
        "Verification locked after three failed attempts.",
        "Outcome: verification failed.",
    ]


def test_an_unknown_caller_cannot_verify_or_see_anything(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    _world(factory)
    results: list[dict[str, Any]] = []

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hello!")
        await model.user_says("I'm John Smith, April 12 1958.")
        results.append(
            await model.call_tool(
                "verify_patient", {"date_of_birth": JOHN_DOB}, wait_for_create=False
            )
        )
        results.append(await model.call_tool("list_appointments", {}))
        results.append(await model.call_tool("transfer_to_staff", {"reason": "cannot verify"}))
        await model.say("A coordinator will call you back.")
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in("+12025559999")
            await call.wait_for(lambda: len(results) == 3, timeout=10)
            await call.stop()

    asyncio.run(scenario())

    assert results[0]["error"] == "verification_failed"
    assert results[1]["error"] == "not_verified"
    assert results[2]["callback_requested"] is True
    with factory() as session:
        request = session.scalar(select(CallbackRequest))
        assert request is not None and request.phone == "+12025559999"
        assert request.patient_id is None
    call = _call(factory)
    assert (call.patient_id, call.outcome) == (None, "callback_requested")


def test_barge_in_clears_twilio_and_truncates_at_what_was_heard(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    _world(factory)
    greeted, heard = asyncio.Event(), asyncio.Event()
    results: dict[str, Any] = {}

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hi!", chunks=2)
        await greeted.wait()
        await model.user_says("What are my options?", after=0)
        response_id, item_id = await model.say(
            "Let me list every option in detail.", chunks=10, wait_for_create=False, done=False
        )
        common = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        # The model generates faster than real time: its transcript is done before it is heard.
        await model.send(
            {
                "type": "response.output_audio_transcript.done",
                **common,
                "content_index": 0,
                "transcript": "Let me list every option in detail.",
            }
        )
        await heard.wait()
        results["item_id"] = item_id
        await model.user_says("Stop, just book Monday.", after=0)
        results["truncate"] = await model.next("conversation.item.truncate")
        # Deltas still in flight for the interrupted response must not reach the caller.
        from tests.voice.fakes import silence

        await model.send(
            {"type": "response.output_audio.delta", **common, "content_index": 0,
             "delta": silence(100)}
        )  # fmt: skip
        await model.send(
            {"type": "response.done", "response": {"id": response_id, "status": "cancelled"}}
        )
        results["done"] = True
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            call.auto_play = False
            await call.wait_for(lambda: call.audio_received_ms >= 200)
            await call.play(200)  # the greeting, in full
            await asyncio.sleep(0.2)
            greeted.set()
            await call.wait_for(lambda: call.audio_received_ms >= 1200)
            await call.play(300)  # 300 ms of the long answer, then the caller speaks
            await asyncio.sleep(0.3)  # the echoed marks reach the bridge
            heard.set()
            await call.wait_for(lambda: results.get("done", False))
            await asyncio.sleep(0.2)
            assert call.clears == 1
            assert call.media_after_clear == 0
            await call.stop()
            assert stack.realtime.script_errors == [] and stack.realtime.errors == []

    asyncio.run(scenario())

    truncate = results["truncate"]
    assert truncate["item_id"] == results["item_id"]
    assert truncate["audio_end_ms"] == 300
    assert truncate["content_index"] == 0
    lines = stored_lines(factory)
    interrupted = [line for line in lines if line.interrupted]
    assert [line.text for line in interrupted] == ["Let me list every option in detail."]
    assert "[interrupted]" in (_call(factory).transcript.text or "")  # type: ignore[union-attr]


def test_marks_follow_every_100_ms_and_the_end_of_each_answer(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    _world(factory)
    results: dict[str, Any] = {}
    greeted, heard = asyncio.Event(), asyncio.Event()

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hi!", chunks=7, chunk_ms=20)  # 140 ms in 20 ms deltas
        await asyncio.wait_for(greeted.wait(), 10)
        await model.user_says("What are my options?", after=0)
        _, results["item_id"] = await model.say(
            "Let me list them.", chunks=10, chunk_ms=20, wait_for_create=False, done=False
        )
        await asyncio.wait_for(heard.wait(), 10)
        await model.user_says("Stop.", after=0)
        results["truncate"] = await model.next("conversation.item.truncate")
        await model.closed.wait()

    def kinds(call: Any) -> list[str]:
        return [m["event"] for m in call.received if m["event"] in {"media", "mark"}]

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            call.auto_play = False
            await call.wait_for(lambda: kinds(call).count("mark") == 2)
            # Five 20 ms deltas then a mark; two more, and the end of the answer marks them.
            assert kinds(call) == ["media"] * 5 + ["mark"] + ["media"] * 2 + ["mark"]
            await call.play(140)
            await asyncio.sleep(0.2)  # the echoed marks reach the bridge
            greeted.set()
            await call.wait_for(lambda: kinds(call).count("mark") == 4)
            assert kinds(call)[9:] == (["media"] * 5 + ["mark"]) * 2
            await call.play(150)  # 150 ms of the second answer: only its first mark is passed
            await asyncio.sleep(0.2)
            heard.set()
            await call.wait_for(lambda: "truncate" in results)
            await call.stop()

    asyncio.run(scenario())
    # Cut at the last mark Twilio confirmed: what was certainly heard, never more.
    assert results["truncate"]["item_id"] == results["item_id"]
    assert results["truncate"]["audio_end_ms"] == 100


def test_model_error_events_are_noted_and_the_call_goes_on(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    _world(factory)

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        for code in ("conversation_already_has_active_response", "invalid_value"):
            await model.send(
                {
                    "type": "error",
                    "event_id": model.new_id("event"),
                    "error": {"type": "invalid_request_error", "code": code, "message": "no"},
                }
            )
        await model.say("Hello after the errors!")
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: bool(call.sent_events("media")))
            await call.wait_for(lambda: bool(stored_lines(factory)))
            await call.stop()

    asyncio.run(scenario())
    assert [line.text for line in stored_lines(factory)] == ["Hello after the errors!"]


def test_dtmf_zero_transfers_to_staff(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    _world(factory)

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hello!")
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script, staff_phone_number="+12025550150") as stack:
            call_sid, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: bool(call.sent_events("media")))
            await call.dtmf("0")
            await call.wait_closed()
            [transfer] = stack.rest.updates(call_sid)
            [(verb, number, dial)] = twiml_verbs(transfer["Twiml"])
            assert (verb, number) == ("Dial", "+12025550150")
            # Staff's phone rings for a while, then Twilio reports back (no answer: callback).
            assert dial["timeout"] == "20"
            assert dial["action"] == "https://voice.example.test/dial-status"

    asyncio.run(scenario())
    assert _call(factory).outcome == "transferred"


def test_dtmf_zero_without_a_staff_line_records_a_callback(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    _world(factory)
    told: dict[str, Any] = {}

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hello!")
        told["response"] = await model.next("response.create")
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: bool(call.sent_events("media")))
            await call.dtmf("0")
            await call.wait_for(lambda: "response" in told)
            await call.stop()

    asyncio.run(scenario())
    assert "call them back" in told["response"]["response"]["instructions"]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(CallbackRequest)) == 1


def test_a_dropped_model_socket_is_reopened_once_and_the_conversation_replayed(
    sqlite_url: str,
) -> None:
    factory = _factory(sqlite_url)
    _world(factory)
    heard = asyncio.Event()  # the caller has played the whole greeting and echoed its marks

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        if model.index == 0:
            await model.say("Hello, how can I help?")
            await heard.wait()
            await model.user_says("I'd like to book.")
            await model.ws.close(code=1011)
            return
        await model.next("response.create")
        await model.say("Sorry, where were we?", wait_for_create=False)
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            # The greeting is 300 ms of audio; only what the caller heard is replayed.
            await call.wait_for(lambda: call.audio_received_ms >= 300 and not call.buffer)
            heard.set()
            await call.wait_for(lambda: len(stack.realtime.sessions) == 2)
            second = stack.realtime.sessions[1]
            await call.wait_for(lambda: bool(second.of_type("response.create")))
            replayed = [
                (e["item"]["role"], e["item"]["content"][0]["text"])
                for e in second.of_type("conversation.item.create")
            ]
            assert replayed == [
                ("assistant", "Hello, how can I help?"),
                ("user", "I'd like to book."),
                (
                    "system",
                    "The call resumes after a reconnection. The caller is not verified yet.",
                ),
            ]
            await call.wait_for(lambda: call.audio_received_ms >= 600)
            await call.stop()
            assert stack.realtime.errors == []

    asyncio.run(scenario())


def test_concurrent_calls_do_not_cross_talk(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    _world(factory)
    callers = int(os.environ.get("VOICE_TEST_CALLERS", "50"))

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hello!", chunks=5)
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            started = await asyncio.gather(
                *(stack.call_in(JOHN, audio_byte=0x40 + n) for n in range(callers))
            )
            fakes = [call for _, call in started]
            for call in fakes:
                await call.wait_for(lambda c=call: c.audio_received_ms >= 500, timeout=10)
            sessions = stack.realtime.sessions
            await asyncio.gather(
                *(
                    call.wait_for(lambda: all(s.appended_ms >= 100 for s in sessions))
                    for call in fakes[:1]
                )
            )
            model_for_caller = {}
            for call in fakes:
                assert len(call.audio_bytes) == 1  # one model's voice only
                [byte] = call.audio_bytes
                [model] = [s for s in sessions if stack.realtime.audio_byte(s.index) == byte]
                assert model.audio_bytes == {call.audio_byte}  # and it hears only this caller
                model_for_caller[call.audio_byte] = model.index
            assert len(set(model_for_caller.values())) == callers
            started_at = time.monotonic()
            await asyncio.gather(*(call.stop() for call in fakes))
            for model in sessions:
                await asyncio.wait_for(model.closed.wait(), 2)
                assert model.closed_at is not None and model.closed_at - started_at < 1.0
            assert stack.realtime.errors == []

    asyncio.run(scenario())
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Call)) == callers
        assert session.scalar(select(func.count()).select_from(PatientNurseAssignment)) == 2


def test_a_verified_caller_lists_reschedules_and_cancels(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    world = _world(factory)
    day = visit_day()
    with factory() as session:
        first = booking.book_appointment(
            session, patient_id=world.patient_id, start=local(day, 9), actor=Actor.cli(),
            now=datetime.now(UTC),
        )  # fmt: skip
        second = booking.book_appointment(
            session, patient_id=world.patient_id, start=local(day, 14), actor=Actor.cli(),
            now=datetime.now(UTC),
        )  # fmt: skip
        theirs = booking.book_appointment(
            session, patient_id=world.other_patient_id, start=local(day, 16), actor=Actor.cli(),
            now=datetime.now(UTC),
        )  # fmt: skip
        session.commit()
        ids = (first.id, second.id, theirs.id)
    results: dict[str, Any] = {}

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hello!")
        await model.user_says("John Smith, April 12 1958.")
        await model.call_tool("verify_patient", {"date_of_birth": JOHN_DOB}, wait_for_create=False)
        results["list"] = await model.call_tool("list_appointments", {})
        results["theirs"] = await model.call_tool("cancel_appointment", {"appointment_id": ids[2]})
        results["move"] = await model.call_tool(
            "reschedule_appointment",
            {"appointment_id": ids[0], "new_start": f"{day.isoformat()}T11:30"},
        )
        results["cancel"] = await model.call_tool(
            "cancel_appointment", {"appointment_id": ids[1], "reason": "feeling better"}
        )
        results["again"] = await model.call_tool("cancel_appointment", {"appointment_id": ids[1]})
        await model.say("All done.")
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: "again" in results, timeout=10)
            await call.stop()
            assert stack.realtime.script_errors == [] and stack.realtime.errors == []

    asyncio.run(scenario())

    listed = results["list"]["appointments"]
    assert [a["appointment_id"] for a in listed] == [ids[0], ids[1]]
    assert listed[0]["start"] == local(day, 9).isoformat() and listed[0]["spoken"]
    assert results["theirs"]["error"] == "not_found"
    moved = results["move"]
    assert moved["rescheduled"] is True and moved["start"] == local(day, 11, 30).isoformat()
    assert results["cancel"]["cancelled"] is True
    assert results["again"]["error"] == "invalid_state"
    with factory() as session:
        statuses = dict(session.execute(select(Appointment.id, Appointment.status)).all())
        assert statuses[ids[0]] == statuses[ids[1]] == "cancelled"
        assert statuses[ids[2]] == "scheduled"
        assert statuses[moved["appointment_id"]] == "scheduled"
    assert _call(factory).outcome in {"cancelled", "rescheduled"}


def test_an_outbound_call_verifies_the_patient_it_called(sqlite_url: str) -> None:
    from tests.voice.stack import INTERNAL_TOKEN, PRACTICE_NUMBER

    factory = _factory(sqlite_url)
    world = _world(factory)
    results: dict[str, Any] = {}

    async def script(model: FakeModelSession) -> None:
        session = await model.handshake()
        results["instructions"] = session["instructions"]
        await model.say("Hello, this is Carematix calling.")
        await model.user_says("Yes, this is John, born April 12 1958.")
        results["verify"] = await model.call_tool(
            "verify_patient", {"date_of_birth": JOHN_DOB}, wait_for_create=False
        )
        await model.say("Thanks. Goodbye!")
        await model.call_tool("end_call", {}, wait_for_create=False)
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            placed = await stack.http.post(
                stack.base + "/make-call",
                json={"patient_id": world.patient_id},
                headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
            )
            assert placed.status_code == 201, placed.text
            call_sid = placed.json()["call_sid"]
            _, answer = await stack.incoming_call(
                from_number=PRACTICE_NUMBER, to_number=JOHN, call_sid=call_sid,
                direction="outbound-api",
            )  # fmt: skip
            call = await stack.open_stream(call_sid, answer.params)
            await call.wait_closed(timeout=10)
            assert [u["Status"] for u in stack.rest.updates(call_sid)] == ["completed"]

    asyncio.run(scenario())
    assert results["verify"]["verified"] is True
    assert "outbound call" in results["instructions"]
    call = _call(factory)
    assert (call.direction, call.verified, call.patient_id) == ("outbound", True, world.patient_id)


def test_malformed_frames_are_refused_without_affecting_other_calls(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    _world(factory)

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hello!")
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            (_, bad), (_, good) = await asyncio.gather(
                stack.call_in(JOHN, audio_byte=0x41), stack.call_in(JOHN, audio_byte=0x42)
            )
            for frame in ("not json", "[1]", '{"event":"bogus"}', '{"event":"mark"}'):
                await bad.send(frame)
            await bad.wait_for(lambda: bad.audio_received_ms >= 300)
            assert not bad.closed.is_set()
            await bad.send('{"event":"media","media":{"payload":"' + "A" * 100_000 + '"}}')
            await bad.wait_closed()
            await asyncio.sleep(0.1)
            assert not good.closed.is_set()
            before = max(s.appended_ms for s in stack.realtime.sessions)
            await good.wait_for(
                lambda: max(s.appended_ms for s in stack.realtime.sessions) > before + 60
            )
            await good.stop()
            assert stack.realtime.errors == []

    asyncio.run(scenario())


def test_a_caller_hanging_up_mid_response_closes_the_model_quickly(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    _world(factory)

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("A very long greeting...", chunks=100, pause=0.02)
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: call.audio_received_ms >= 500)
            hung_up = time.monotonic()
            await call.close()  # no `stop`: the socket just goes away
            [model] = stack.realtime.sessions
            await asyncio.wait_for(model.closed.wait(), 2)
            assert model.closed_at is not None and model.closed_at - hung_up < 1.0
            for _ in range(100):
                if _call(factory).ended_at is not None:
                    break
                await asyncio.sleep(0.02)

    asyncio.run(scenario())
    call = _call(factory)
    assert call.ended_at is not None and call.transcript is not None


def test_the_model_session_is_recycled_before_the_provider_limit(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    _world(factory)

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        if model.index == 0:
            await model.say("Hello, how can I help?")
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(
            sqlite_url, script, app_config={"MODEL_RECYCLE_SECONDS": 0.6}
        ) as stack:
            _, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: len(stack.realtime.sessions) == 2)
            first, second = stack.realtime.sessions
            await asyncio.wait_for(first.closed.wait(), 2)
            await second.next("conversation.item.create")
            await call.wait_for(lambda: second.appended_ms >= 60)
            replayed = [
                e["item"]["content"][0]["text"] for e in second.of_type("conversation.item.create")
            ]
            assert replayed[0] == "Hello, how can I help?" and len(replayed) == 2
            assert second.of_type("response.create") == []  # it waits for the caller
            await call.stop()
            assert stack.realtime.errors == []

    asyncio.run(scenario())


def test_a_model_that_cannot_be_reached_again_ends_in_an_apology_and_a_callback(
    sqlite_url: str,
) -> None:
    factory = _factory(sqlite_url)
    _world(factory)

    async def script(model: FakeModelSession) -> None:
        if model.index == 0:
            await model.handshake()
            await model.say("Hello!")
            await asyncio.sleep(0.1)
        await model.ws.close(code=1011)

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            call_sid, call = await stack.call_in(JOHN)
            await call.wait_closed(timeout=10)
            [update] = stack.rest.updates(call_sid)
            verbs = twiml_verbs(update["Twiml"])
            assert [verb for verb, _, _ in verbs] == ["Say", "Hangup"]
            assert verbs[0][1].startswith("Sorry")

    asyncio.run(scenario())
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(CallbackRequest)) == 1
    assert _call(factory).outcome == "callback_requested"


def test_when_twilio_cannot_hang_up_the_service_ends_the_stream_itself(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    _world(factory)
    closed_port = socket.socket()
    closed_port.bind(("127.0.0.1", 0))
    dead_api = f"http://127.0.0.1:{closed_port.getsockname()[1]}"  # bound, never listening

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Goodbye!")
        await model.call_tool("end_call", {}, wait_for_create=False)
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script, twilio_api_base_url=dead_api) as stack:
            _, call = await stack.call_in(JOHN)
            await call.wait_closed(timeout=10)
            assert call.played_ms >= call.audio_received_ms  # the goodbye was heard first
            [model] = stack.realtime.sessions
            await asyncio.wait_for(model.closed.wait(), 2)

    try:
        asyncio.run(scenario())
    finally:
        closed_port.close()
    assert _call(factory).ended_at is not None


def test_without_an_openai_key_a_real_caller_hears_an_apology_and_gets_a_callback(
    sqlite_url: str,
) -> None:
    factory = _factory(sqlite_url)
    _world(factory)

    async def scenario() -> None:
        async with voice_stack(
            sqlite_url, idle, openai_api_key="", app_config={"SIMULATED": False}
        ) as stack:
            call_sid, call = await stack.call_in(JOHN)
            await call.wait_closed(timeout=10)
            [update] = stack.rest.updates(call_sid)
            assert twiml_verbs(update["Twiml"])[0][:1] == ("Say",)
            assert twiml_verbs(update["Twiml"])[0][1].startswith("Sorry")
            assert stack.realtime.sessions == []

    asyncio.run(scenario())
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(CallbackRequest)) == 1
    assert _call(factory).outcome == "callback_requested"


def test_a_server_stopping_mid_call_still_stores_the_call(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    _world(factory)

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hello, this is the Carematix scheduling assistant.")
        await model.user_says("I would like to move my visit.")
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: len(stored_lines(factory)) == 2)
            # Leaving the stack stops the server with the call still up (a deploy, say).

    asyncio.run(scenario())
    call = _call(factory)
    assert call.ended_at is not None and call.transcript is not None
    assert "move my visit" in (call.transcript.text or "")
