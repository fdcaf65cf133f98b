"""The live call's harder moments over real sockets: interruptions, keypresses, reconnects."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.models import Call, CallbackRequest, Patient
from tests.services.world import build_world
from tests.voice.fakes import FakeModelSession, FakeTwilioCall
from tests.voice.stack import (
    INTERNAL_TOKEN,
    PRACTICE_NUMBER,
    open_factory,
    stored_lines,
    visit_day,
    voice_stack,
)
from voice.model_connection import ModelConnection, ModelConnector

JOHN = "+12025550101"
JOHN_DOB = "1958-04-12"
RESUMED = "The call resumes after a reconnection. "


def _factory(url: str) -> sessionmaker[Session]:
    factory = open_factory(url)
    build_world(factory, datetime.now(UTC))
    return factory


def _transcript(factory: sessionmaker[Session]) -> str:
    with factory() as session:
        call = session.scalar(select(Call))
        assert call is not None and call.transcript is not None
        return call.transcript.text or ""


def _patient_id(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        patient = session.scalar(select(Patient).where(Patient.phone == JOHN))
        assert patient is not None
        return patient.id


def _kinds(model: FakeModelSession) -> list[str]:
    """The client events the model received, caller audio left out."""
    return [e["type"] for e in model.received if e["type"] != "input_audio_buffer.append"]


async def _until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)


async def _bridged(call: FakeTwilioCall, model: FakeModelSession, byte: int) -> None:
    """Until the bridge has read every frame the fake Twilio sent so far (echoed marks too)."""
    await call.probe(byte)
    await call.wait_for(lambda: byte in model.audio_bytes)


def test_barge_in_truncates_a_reply_queued_behind_the_one_playing(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    greeted, heard = asyncio.Event(), asyncio.Event()
    results: dict[str, Any] = {}

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hi!", chunks=2)
        await greeted.wait()
        await model.user_says("What do I have next week?", after=0)
        # Two replies generated faster than real time: the second waits at Twilio.
        _, results["first"] = await model.say(
            "You have two visits next week.", chunks=5, wait_for_create=False
        )
        _, results["second"] = await model.say(
            "Would you like to change one?", chunks=3, wait_for_create=False
        )
        await heard.wait()
        await model.user_says("Yes, the first one.", after=0)
        results["truncates"] = [await model.next("conversation.item.truncate") for _ in range(2)]
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            call.auto_play = False
            await call.wait_for(lambda: call.audio_received_ms >= 200)
            await call.play(200)  # the greeting, in full
            greeted.set()
            await call.wait_for(lambda: call.audio_received_ms >= 1000)
            await call.play(200)  # 200 ms of the first reply; the second not at all
            [model] = stack.realtime.sessions
            await _bridged(call, model, 0x01)
            heard.set()
            await call.wait_for(lambda: "truncates" in results)
            assert call.clears == 1
            await call.stop()
            assert stack.realtime.script_errors == [] and stack.realtime.errors == []

    asyncio.run(scenario())

    cut = [(t["item_id"], t["audio_end_ms"]) for t in results["truncates"]]
    assert cut == [(results["first"], 200), (results["second"], 0)]
    interrupted = [line.text for line in stored_lines(factory) if line.interrupted]
    assert interrupted == ["You have two visits next week.", "Would you like to change one?"]


def test_pressing_0_while_the_agent_speaks_cuts_it_off_and_then_tells_of_the_callback(
    sqlite_url: str,
) -> None:
    factory = _factory(sqlite_url)  # no staff line: pressing 0 records a callback request
    greeted = asyncio.Event()
    results: dict[str, Any] = {}

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hello!", chunks=2)
        await greeted.wait()
        await model.user_says("What are my options?", after=0)
        response_id, results["item"] = await model.say(
            "Let me list every option in detail.", chunks=10, wait_for_create=False, done=False
        )
        results["cancel"] = await model.next("response.cancel")
        results["truncate"] = await model.next("conversation.item.truncate")
        # The API ends a cancelled response with response.done; only then may another start.
        await model.send(
            {"type": "response.done", "response": {"id": response_id, "status": "cancelled"}}
        )
        results["told"] = await model.next("response.create")
        await model.say("No one is free right now; a coordinator will call you back.",
                        wait_for_create=False)  # fmt: skip
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            call.auto_play = False
            await call.wait_for(lambda: call.audio_received_ms >= 200)
            await call.play(200)  # the greeting, in full
            greeted.set()
            await call.wait_for(lambda: call.audio_received_ms >= 1200)
            await call.play(300)  # 300 ms of the long answer, then the caller presses 0
            [model] = stack.realtime.sessions
            await _bridged(call, model, 0x01)
            await call.dtmf("0")
            await call.dtmf("0")  # impatient
            await call.wait_for(lambda: "told" in results)
            await call.wait_for(lambda: call.audio_received_ms >= 1500)  # the callback notice
            assert call.clears == 1
            await call.stop()
            assert stack.realtime.script_errors == []
            assert model.refused == [] and stack.realtime.errors == []
            results["creates"] = len(model.of_type("response.create"))
            results["keys"] = [e["item"] for e in model.of_type("conversation.item.create")]

    asyncio.run(scenario())

    assert results["truncate"]["item_id"] == results["item"]
    assert results["truncate"]["audio_end_ms"] == 300
    assert "call them back" in results["told"]["response"]["instructions"]
    assert results["creates"] == 2  # the greeting's, and one for both presses
    assert [item["content"][0]["text"] for item in results["keys"]] == ["Caller pressed 0"] * 2
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(CallbackRequest)) == 1
    described = [(line.role, line.text) for line in stored_lines(factory)]
    assert described[-3:] == [
        ("system", "Caller pressed 0"),
        ("system", "Caller pressed 0"),
        ("assistant", "No one is free right now; a coordinator will call you back."),
    ]
    assert "System: Caller pressed 0" in _transcript(factory)


def _replayed(model: FakeModelSession) -> list[tuple[str, ...]]:
    described: list[tuple[str, ...]] = []
    for event in model.of_type("conversation.item.create"):
        item = event["item"]
        if item["type"] == "message":
            [content] = item["content"]
            described.append((item["role"], content["type"], content["text"]))
        elif item["type"] == "function_call":
            described.append(("call", item["call_id"], item["name"], item["arguments"]))
        else:
            described.append(("output", item["call_id"], item["output"]))
    return described


def test_a_reconnect_replays_calls_results_and_cut_off_answers_in_order(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)
    day = visit_day()
    greeting = "Hello, this is the Carematix scheduling assistant. How can I help?"
    heard = asyncio.Event()
    results: dict[str, Any] = {}

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        if model.index == 1:
            await model.next("response.create")
            await model.closed.wait()
            return
        await model.say(greeting, chunks=10)
        await heard.wait()
        await model.user_says(f"John Smith, born April 12 1958. A visit on {day} at ten.", after=0)
        results["verify"] = await model.call_tool(
            "verify_patient", {"date_of_birth": JOHN_DOB}, wait_for_create=False
        )
        results["book"] = await model.call_tool(
            "book_appointment", {"start": f"{day.isoformat()}T10:00"}
        )
        # The socket drops while the confirmation is being spoken.
        await model.say("You're booked for ten o'clock on", chunks=3, done=False)
        await model.ws.close(code=1011)

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            call.auto_play = False
            await call.wait_for(lambda: call.audio_received_ms >= 1000)
            await call.play(300)  # 300 ms of the greeting, then the caller speaks
            [first] = stack.realtime.sessions
            await _bridged(call, first, 0x01)
            heard.set()
            await call.wait_for(lambda: len(stack.realtime.sessions) == 2)
            second = stack.realtime.sessions[1]
            await call.wait_for(lambda: bool(second.of_type("response.create")))
            results["replayed"] = _replayed(second)
            await call.stop()
            assert stack.realtime.script_errors == [] and stack.realtime.errors == []

    asyncio.run(scenario())

    replayed = results["replayed"]
    call_ids = [entry[1] for entry in replayed if entry[0] == "call"]
    assert len(call_ids) == 2, replayed
    verify_call, book_call = call_ids
    assert replayed == [
        ("assistant", "output_text", "Hello, this is the"),  # what was heard of it
        ("user", "input_text", f"John Smith, born April 12 1958. A visit on {day} at ten."),
        ("call", verify_call, "verify_patient", json.dumps({"date_of_birth": JOHN_DOB})),
        ("output", verify_call, json.dumps(results["verify"])),
        ("call", book_call, "book_appointment", json.dumps({"start": f"{day}T10:00"})),
        ("output", book_call, json.dumps(results["book"])),
        ("assistant", "output_text", "You're booked for ten o'clock on"),
        ("system", "input_text", RESUMED + "The caller has been verified."),
    ]
    assert results["book"]["booked"] is True
    lines = [(line.role, line.text, line.interrupted) for line in stored_lines(factory)]
    assert ("assistant", greeting, True) in lines
    assert ("assistant", "You're booked for ten o'clock on", True) in lines


@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_the_preopened_model_is_configured_before_the_stream_starts(
    sqlite_url: str, direction: str
) -> None:
    factory = _factory(sqlite_url)
    results: dict[str, Any] = {}

    async def script(model: FakeModelSession) -> None:
        results["session"] = await model.handshake()  # session.updated goes out at once
        results["updated"] = True
        await model.say("Hello!")
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            if direction == "outbound":
                placed = await stack.http.post(
                    stack.base + "/make-call",
                    json={"patient_id": _patient_id(factory)},
                    headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
                )
                assert placed.status_code == 201, placed.text
                call_sid, answer = await stack.incoming_call(
                    from_number=PRACTICE_NUMBER, to_number=JOHN,
                    call_sid=placed.json()["call_sid"], direction="outbound-api",
                )  # fmt: skip
            else:
                call_sid, answer = await stack.incoming_call(from_number=JOHN)
            # No stream yet: the socket is open, configured, and its session.updated sent.
            await _until(lambda: results.get("updated", False))
            [model] = stack.realtime.sessions
            call = await stack.open_stream(call_sid, answer.params)
            # The greeting still comes, on the session.updated that arrived before the stream.
            await call.wait_for(lambda: call.audio_received_ms >= 300)
            await call.stop()
            assert _kinds(model)[:2] == ["session.update", "response.create"]
            assert len(model.of_type("session.update")) == 1
            assert stack.realtime.script_errors == [] and stack.realtime.errors == []

    asyncio.run(scenario())
    outbound_note = "This is an outbound call Carematix placed to the patient"
    assert (outbound_note in results["session"]["instructions"]) == (direction == "outbound")


def test_a_preopened_socket_that_failed_is_replaced_by_connecting_at_stream_start(
    sqlite_url: str,
) -> None:
    _factory(sqlite_url)
    connector = ModelConnector()
    attempts: list[str] = []

    async def connect_failing_once(settings: Settings) -> ModelConnection:
        attempts.append("connect")
        if len(attempts) == 1:
            raise ConnectionError("the pre-opened handshake failed")
        return await connector(settings)

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hello!")
        await model.closed.wait()

    async def scenario() -> None:
        config = {"REALTIME_CONNECT": connect_failing_once}
        async with voice_stack(sqlite_url, script, app_config=config) as stack:
            _, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: call.audio_received_ms >= 300)
            await call.stop()
            [model] = stack.realtime.sessions
            assert _kinds(model)[:2] == ["session.update", "response.create"]
            assert stack.realtime.errors == []

    asyncio.run(scenario())
    assert attempts == ["connect", "connect"]


def test_every_key_the_caller_presses_is_a_line_of_the_conversation(sqlite_url: str) -> None:
    factory = _factory(sqlite_url)

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.say("Hello!")
        await model.closed.wait()

    async def scenario() -> None:
        async with voice_stack(sqlite_url, script) as stack:
            _, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: len(stored_lines(factory)) == 1)  # the greeting
            [model] = stack.realtime.sessions
            for digit in ("5", "#"):
                await call.dtmf(digit)
            await call.wait_for(lambda: len(model.of_type("conversation.item.create")) == 2)
            await call.stop()
            assert len(model.of_type("response.create")) == 1  # only the greeting's
            assert stack.realtime.errors == []

    asyncio.run(scenario())
    assert [(line.role, line.text) for line in stored_lines(factory)] == [
        ("assistant", "Hello!"),
        ("system", "Caller pressed 5"),
        ("system", "Caller pressed #"),
    ]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(CallbackRequest)) == 0
