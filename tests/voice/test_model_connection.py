"""The bridge's shortcuts into the SDK's Realtime connection still find what they need."""

from __future__ import annotations

import asyncio
import base64
import dataclasses

from core.config import Settings
from tests.voice.fakes import FakeModelSession, FakeRealtime
from voice import protocol
from voice.session import ModelConnector, audio_sender


def test_caller_audio_goes_straight_to_the_sdk_websocket_and_arrives_valid() -> None:
    received: list[str] = []

    async def script(model: FakeModelSession) -> None:
        event = await model.next("input_audio_buffer.append")
        received.append(event["audio"])
        await model.closed.wait()

    async def scenario() -> object:
        async with FakeRealtime(script) as realtime:
            settings = dataclasses.replace(
                Settings.from_env({}), openai_api_key="sk-test", openai_base_url=realtime.base_url
            )
            model = await ModelConnector()(settings)
            send = audio_sender(model)
            payload = base64.b64encode(b"\xff" * 160).decode()
            await send(protocol.audio_append(payload))
            for _ in range(200):
                if received:
                    break
                await asyncio.sleep(0.01)
            await model.close()
            assert realtime.errors == []
            assert received == [payload]
            return getattr(send, "__self__", None) is getattr(model, "_connection", object())

    # The fast path, not the SDK's queued send_raw: a newer SDK without `_connection` would
    # still work, but slower, and this says so.
    assert asyncio.run(scenario()) is True
