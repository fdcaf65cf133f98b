"""The model socket over real sockets: what the bridge sends arrives, and what it reads."""

from __future__ import annotations

import asyncio
import base64
import dataclasses

import pytest

from core.config import Settings
from tests.voice.fakes import FakeModelSession, FakeRealtime
from voice import protocol
from voice.model_connection import ModelConnector, close_model, realtime_url
from voice.prompts import session_update_text


def _settings(base_url: str) -> Settings:
    return dataclasses.replace(
        Settings.from_env({}), openai_api_key="sk-test", openai_base_url=base_url
    )


def test_caller_audio_and_model_events_cross_a_real_socket() -> None:
    received: list[str] = []

    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        for _ in range(3):
            received.append((await model.next("input_audio_buffer.append"))["audio"])
        await model.closed.wait()

    async def scenario() -> tuple[list[bytes], list[str]]:
        async with FakeRealtime(script) as realtime:
            settings = _settings(realtime.base_url)
            model = await ModelConnector()(settings)
            await model.send_raw(session_update_text(settings, "inbound"))
            events = [await model.recv_bytes(), await model.recv_bytes()]
            payloads = [base64.b64encode(bytes([n]) * 160).decode() for n in range(3)]
            for payload in payloads:
                await model.send_raw(protocol.audio_append(payload))
            assert await close_model(model)
            await asyncio.wait_for(realtime.sessions[0].closed.wait(), 2)
            assert realtime.errors == []  # every message parsed and validated by the fake
            assert realtime.paths[0] == "/v1/realtime?model=gpt-realtime"
            return events, payloads

    events, payloads = asyncio.run(scenario())
    assert [protocol.parse_server_event(event)["type"] for event in events] == [
        "session.created",
        "session.updated",
    ]
    assert received == payloads


def test_reading_a_socket_the_model_closed_raises_instead_of_returning() -> None:
    async def script(model: FakeModelSession) -> None:
        await model.handshake()
        await model.ws.close(1011, "server going away")

    async def scenario() -> list[str]:
        async with FakeRealtime(script) as realtime:
            model = await ModelConnector()(_settings(realtime.base_url))
            await model.send_raw(session_update_text(_settings(realtime.base_url), "inbound"))
            types: list[str] = []
            # The bridge's model pump reconnects on this error; a message it could mistake
            # for an event would leave the call silent instead.
            with pytest.raises(ConnectionError):
                while len(types) < 10:
                    types.append(protocol.parse_server_event(await model.recv_bytes())["type"])
            await close_model(model)
            return types

    assert asyncio.run(scenario()) == ["session.created", "session.updated"]


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("", "wss://api.openai.com/v1/realtime?model=gpt-realtime"),
        ("http://127.0.0.1:9/v1/", "ws://127.0.0.1:9/v1/realtime?model=gpt-realtime"),
        (
            "https://proxy.example.test/openai/v1",
            "wss://proxy.example.test/openai/v1/realtime?model=gpt-realtime",
        ),
    ],
)
def test_the_realtime_url_follows_the_base_url(base_url: str, url: str) -> None:
    assert realtime_url(base_url, "gpt-realtime") == url


def test_no_key_no_socket() -> None:
    settings = dataclasses.replace(Settings.from_env({}), openai_api_key="")
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY"):
        asyncio.run(ModelConnector()(settings))
