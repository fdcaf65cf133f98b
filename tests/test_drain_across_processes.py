"""A voice instance drained by SIGTERM, as a deploy or `supervisorctl stop` sends it.

The voice service runs as supervisord.conf starts it; the model is the fake Realtime server
and Twilio is the fake REST API plus a fake media stream, all over loopback. The instance must
leave rotation at once (health "draining", new calls redirected through the public address),
let the call in flight carry on, then end it politely: a callback recorded, the agent's goodbye
played, the call hung up through Twilio, the row final, and only then exit.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from core.db import make_engine, make_session_factory
from core.models import Call, CallbackRequest
from tests.processes import (
    Product,
    entered_in_thread,
    fake_twilio_rest,
    running_product,
    until,
)
from tests.voice.fakes import (
    FakeRealtime,
    FakeTwilioCall,
    FakeTwilioRest,
    greet_then_say_goodbye_when_asked,
    parse_stream_twiml,
    sign,
    twiml_verbs,
)
from tests.voice.stack import AUTH_TOKEN, PUBLIC_BASE, fakes_env, ring

DRAIN_SECONDS = 3
CALLER = "+12025550177"

pytestmark = pytest.mark.slow


@pytest.fixture
def twilio() -> Iterator[tuple[FakeTwilioRest, str]]:
    """Twilio's REST API on loopback, and its base URL."""
    with fake_twilio_rest() as served:
        yield served


def test_sigterm_drains_then_ends_the_call_in_flight_politely(
    db_url: str, tmp_path: Path, twilio: tuple[FakeTwilioRest, str]
) -> None:
    rest, twilio_base = twilio

    async def scenario() -> None:
        async with FakeRealtime(greet_then_say_goodbye_when_asked) as realtime:
            products = running_product(
                db_url,
                tmp_path,
                **fakes_env(realtime.base_url, twilio_base),
                VOICE_DRAIN_SECONDS=str(DRAIN_SECONDS),
            )
            async with entered_in_thread(products) as product:
                await _drain(product, realtime, rest)

    asyncio.run(scenario())

    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            [call] = session.scalars(select(Call)).all()
            assert call.ended_at is not None and call.outcome == "callback_requested"
            [callback] = session.scalars(select(CallbackRequest)).all()
            assert callback.call_id == call.id and callback.phone == CALLER
            assert call.transcript is not None and "Goodbye" in call.transcript.text
    finally:
        engine.dispose()


async def _drain(product: Product, realtime: FakeRealtime, rest: FakeTwilioRest) -> None:
    voice = product.voice_url
    [process] = [p for p in product.processes if p.name == "voice"]
    async with httpx.AsyncClient(base_url=voice, timeout=10) as http:
        call_sid = "CA" + uuid.uuid4().hex
        answer = await ring(http, call_sid, CALLER)
        stream_url, params = parse_stream_twiml(answer.text)
        call = FakeTwilioCall(voice.replace("http://", "ws://") + "/media-stream", speed=10.0)
        await call.connect(sign(AUTH_TOKEN, stream_url, {}))
        await call.start(call_sid, params)
        await call.wait_for(lambda: bool(call.sent_events("media")), timeout=10)

        process.popen.send_signal(signal.SIGTERM)

        async def draining() -> bool:
            return (await http.get("/health")).json().get("status") == "draining"

        deadline = asyncio.get_running_loop().time() + 5
        while not await draining():
            assert asyncio.get_running_loop().time() < deadline, process.log()
            await asyncio.sleep(0.05)
        health = await http.get("/health")
        assert health.status_code == 503 and health.json()["calls"] == "1"

        # A new call reaching this instance goes back through the public address.
        late_sid = "CA" + uuid.uuid4().hex
        late = await ring(http, late_sid, CALLER)
        [(verb, url, attributes)] = twiml_verbs(late.text)
        assert (verb, url) == ("Redirect", PUBLIC_BASE + "/incoming-call?redirected=1")
        assert attributes.get("method") == "POST"

        # The call in flight carries on through the grace period: nothing asked of the model yet.
        [model] = realtime.sessions
        assert len(model.of_type("response.create")) == 1 and not call.closed.is_set()

        # Then the agent is asked to say goodbye, and the call is hung up once it has played.
        await until(
            lambda: len(model.of_type("response.create")) == 2, DRAIN_SECONDS + 10, "the wind-down"
        )
        ask = model.of_type("response.create")[-1]
        assert "call them back" in ask["response"]["instructions"]
        await until(
            lambda: any(u.get("Status") == "completed" for u in rest.updates(call_sid)),
            15,
            "the hang-up through Twilio",
        )
        await call.stop()  # what Twilio does once the call is hung up
    await until(lambda: process.popen.poll() is not None, 20, "the voice service to exit")
    assert "winding down" in process.log()
