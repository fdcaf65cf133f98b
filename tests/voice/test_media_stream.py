"""WS /media-stream security and lifecycle over real sockets, with the fake Realtime server."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
import websockets
from sqlalchemy import select

from core.models import Call
from tests.services.world import build_world
from tests.voice.fakes import FakeModelSession, FakeTwilioCall, greet_then_idle, idle, sign
from tests.voice.stack import AUTH_TOKEN, open_factory, voice_stack
from voice.security import make_stream_token
from voice.server import MAX_WEBSOCKET_MESSAGE_BYTES

JOHN = "+12025550101"


def _nothing_sent_to_the_model(sessions: list[FakeModelSession]) -> bool:
    """At most the socket pre-opened for the genuine call, and nothing sent on it but the
    configuration sent while the (signed) webhook was answered: no audio, no response."""
    return len(sessions) <= 1 and all(
        [e["type"] for e in s.received] in ([], ["session.update"]) for s in sessions
    )


def test_an_unsigned_upgrade_is_refused_before_any_model_session(sqlite_url: str) -> None:
    async def scenario() -> None:
        async with voice_stack(sqlite_url, idle) as stack:
            await stack.incoming_call(from_number=JOHN)
            for signature in (None, "forged"):
                with pytest.raises(websockets.InvalidStatus) as refused:
                    await websockets.connect(
                        stack.ws_url,
                        additional_headers={"X-Twilio-Signature": signature} if signature else {},
                    )
                assert refused.value.response.status_code == 403
            await asyncio.sleep(0.1)
            assert _nothing_sent_to_the_model(stack.realtime.sessions)

    asyncio.run(scenario())


@pytest.mark.parametrize("problem", ["missing", "other_call", "tampered", "expired"])
def test_a_bad_stream_token_closes_the_socket_before_any_model_session(
    sqlite_url: str, problem: str
) -> None:
    factory = open_factory(sqlite_url)

    async def scenario() -> None:
        async with voice_stack(sqlite_url, idle) as stack:
            call_sid, answer = await stack.incoming_call(from_number=JOHN)
            token = answer.params["token"]
            sid = call_sid
            if problem == "missing":
                params: dict[str, str] = {}
            elif problem == "other_call":
                sid, params = "CA" + "9" * 32, {"token": token}
            elif problem == "tampered":
                params = {"token": token[:-2] + ("AA" if token[-2:] != "AA" else "BB")}
            else:
                with factory() as session:
                    nonce = session.scalar(select(Call.stream_nonce).where(Call.call_sid == sid))
                old = make_stream_token(
                    stack.settings, call_sid=sid, nonce=nonce or "", now=time.time() - 61
                )
                params = {"token": old}
            call = await stack.open_stream(sid, params)
            await call.wait_closed()
            assert call.close_code == 1008
            assert _nothing_sent_to_the_model(stack.realtime.sessions)
            with factory() as session:
                assert session.scalar(select(Call.stream_started_at)) is None
            await call.close()

    asyncio.run(scenario())


def test_a_replayed_token_is_refused(sqlite_url: str) -> None:
    async def scenario() -> None:
        async with voice_stack(sqlite_url, greet_then_idle) as stack:
            call_sid, answer = await stack.incoming_call(from_number=JOHN)
            first = await stack.open_stream(call_sid, answer.params)
            await first.wait_for(lambda: bool(first.sent_events("media")))
            second = await stack.open_stream(call_sid, answer.params)
            await second.wait_closed()
            assert second.close_code == 1008
            assert len(stack.realtime.sessions) == 1
            await first.stop()
            await second.close()

    asyncio.run(scenario())


def test_stop_closes_the_model_socket_within_a_second(sqlite_url: str) -> None:
    factory = open_factory(sqlite_url)
    build_world(factory, datetime.now(UTC))

    async def scenario() -> None:
        async with voice_stack(sqlite_url, greet_then_idle) as stack:
            _, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: len(call.sent_events("mark")) >= 3)
            [model] = stack.realtime.sessions
            await call.wait_for(lambda: model.appended_ms >= 100)
            stopped = time.monotonic()
            await call.stop()
            await asyncio.wait_for(model.closed.wait(), 2)
            assert model.closed_at is not None and model.closed_at - stopped < 1.0
            assert stack.realtime.errors == []
            # The caller's audio reached the model untouched (same mu-law bytes).
            assert model.audio_bytes == {0x7F}
        with factory() as session:
            call_row = session.scalar(select(Call))
            assert call_row is not None and call_row.ended_at is not None
            assert call_row.transcript is not None
            assert "Agent: Hello, this is the Carematix" in call_row.transcript.text

    asyncio.run(scenario())


def test_two_streams_racing_with_one_token_get_one_model_session(sqlite_url: str) -> None:
    async def scenario() -> None:
        async with voice_stack(sqlite_url, greet_then_idle) as stack:
            call_sid, answer = await stack.incoming_call(from_number=JOHN)
            first, second = await asyncio.gather(
                stack.open_stream(call_sid, answer.params),
                stack.open_stream(call_sid, answer.params),
            )
            await asyncio.wait(
                [asyncio.create_task(c.closed.wait()) for c in (first, second)],
                return_when=asyncio.FIRST_COMPLETED,
                timeout=5,
            )
            loser = first if first.closed.is_set() else second
            winner = second if loser is first else first
            assert loser.close_code == 1008
            await winner.wait_for(lambda: bool(winner.sent_events("media")))
            assert len([s for s in stack.realtime.sessions if s.received]) == 1
            await winner.stop()
            await loser.close()

    asyncio.run(scenario())


def test_audio_before_start_is_skipped_and_the_stream_then_bridges(sqlite_url: str) -> None:
    factory = open_factory(sqlite_url)
    build_world(factory, datetime.now(UTC))

    async def scenario() -> None:
        async with voice_stack(sqlite_url, greet_then_idle) as stack:
            call_sid, answer = await stack.incoming_call(from_number=JOHN)
            early = FakeTwilioCall(stack.ws_url, speed=10.0, audio_byte=0x11)
            await early.connect(sign(AUTH_TOKEN, "wss://voice.example.test/media-stream", {}))
            await early.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            for _ in range(3):  # no stream yet: nothing to relay it on
                await early.send({"event": "media", "media": {"payload": "EREREQ=="}})
            early.audio_byte = 0x7F
            await early.start(call_sid, answer.params)
            await early.wait_for(lambda: bool(early.sent_events("media")))
            [model] = stack.realtime.sessions
            await early.wait_for(lambda: model.appended_ms >= 100)
            await early.stop()
            assert model.audio_bytes == {0x7F}  # only audio sent after `start`
            assert stack.realtime.errors == []

    asyncio.run(scenario())


def test_a_message_over_the_size_limit_ends_the_stream_and_its_model_socket(
    sqlite_url: str,
) -> None:
    factory = open_factory(sqlite_url)
    build_world(factory, datetime.now(UTC))

    async def scenario() -> None:
        async with voice_stack(sqlite_url, greet_then_idle) as stack:
            _, call = await stack.call_in(JOHN)
            await call.wait_for(lambda: bool(call.sent_events("media")))
            [model] = stack.realtime.sessions
            await call.send("x" * (MAX_WEBSOCKET_MESSAGE_BYTES + 1))
            await call.wait_closed()
            assert call.close_code == 1009  # message too big, closed by the server's library
            await asyncio.wait_for(model.closed.wait(), 2)
            await call.close()
        with factory() as session:
            call_row = session.scalar(select(Call))
            assert call_row is not None and call_row.ended_at is not None

    asyncio.run(scenario())


def test_a_named_instance_streams_on_its_own_path_and_serves_one_routed_from_another(
    sqlite_url: str,
) -> None:
    build_world(open_factory(sqlite_url), datetime.now(UTC))

    async def scenario() -> None:
        async with voice_stack(sqlite_url, greet_then_idle, voice_instance_name="voice-2") as stack:
            call_sid, answer = await stack.incoming_call(from_number=JOHN)
            assert answer.stream_url == "wss://voice.example.test/media-stream/voice-2"
            # Twilio signs the URL it was given: a signature over another path is refused.
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(
                    stack.base.replace("http://", "ws://") + "/media-stream/voice-2",
                    additional_headers={
                        "X-Twilio-Signature": sign(
                            AUTH_TOKEN, "wss://voice.example.test/media-stream", {}
                        )
                    },
                )
            assert refused.value.response.status_code == 403
            call = await stack.open_stream(call_sid, answer.params, stream_url=answer.stream_url)
            await call.wait_for(lambda: bool(call.sent_events("media")))
            # The stream used the model socket its webhook pre-opened: one session, greeted.
            assert len(stack.realtime.sessions) == 1
            await call.stop()
            # A proxy that sends a stream named for another instance here still gets it served.
            other_sid, other_answer = await stack.incoming_call(from_number=JOHN)
            other = await stack.open_stream(
                other_sid,
                other_answer.params,
                stream_url="wss://voice.example.test/media-stream/voice-1",
            )
            await other.wait_for(lambda: bool(other.sent_events("media")))
            await other.stop()

    asyncio.run(scenario())
