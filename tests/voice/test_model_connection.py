"""Caller audio's direct path onto the SDK's model socket: valid frames, safe fallbacks."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from typing import Any

import pytest
from websockets.frames import OP_TEXT, Frame
from websockets.protocol import State
from websockets.streams import StreamReader

from core.config import Settings
from tests.voice.fakes import FakeModelSession, FakeRealtime
from voice import protocol
from voice.audio_frames import AudioFrameWriter
from voice.session import ModelConnector, audio_sender
from voice.websocket_frames import text_frame


def _parse_as_a_server_would(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=True)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 125, 126, 1_000, 65_535, 65_536, 100_000])
def test_frames_of_every_length_class_unmask_to_the_message(size: int) -> None:
    message = ("x" * size).encode()
    frame = _parse_as_a_server_would(text_frame(message, b"\x01\x02\x03\xfe"))
    assert (frame.opcode, frame.fin, frame.data) == (OP_TEXT, True, message)


def test_caller_audio_reaches_a_real_server_through_the_sdk_connection() -> None:
    received: list[str] = []

    async def script(model: FakeModelSession) -> None:
        for _ in range(3):
            received.append((await model.next("input_audio_buffer.append"))["audio"])
        await model.closed.wait()

    async def scenario() -> Any:
        async with FakeRealtime(script) as realtime:
            settings = dataclasses.replace(
                Settings.from_env({}), openai_api_key="sk-test", openai_base_url=realtime.base_url
            )
            model = await ModelConnector()(settings)
            send = audio_sender(model)
            payloads = [base64.b64encode(bytes([n]) * 160).decode() for n in range(3)]
            for payload in payloads:
                await send(protocol.audio_append(payload))
            for _ in range(200):
                if len(received) == 3:
                    break
                await asyncio.sleep(0.01)
            await model.close()
            assert realtime.errors == []  # every frame parsed and validated by the fake
            assert received == payloads
            return send

    # The direct path, not the SDK's queued send_raw: an SDK without a websockets connection
    # underneath would still work, only slower, and this test says so.
    assert isinstance(asyncio.run(scenario()), AudioFrameWriter)


class _Transport:
    def __init__(self, buffered: int = 0, closing: bool = False) -> None:
        self.buffered, self.closing, self.written = buffered, closing, []

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.written.append(data)


class _Protocol:
    def __init__(self, state: State) -> None:
        self.state = state


class _Connection:
    """The parts of a websockets client connection the writer looks at."""

    def __init__(self, transport: _Transport, state: State = State.OPEN) -> None:
        self.transport, self.protocol = transport, _Protocol(state)
        self.fragmented_send_waiter: object | None = None
        self.library_sends: list[str] = []

    async def send(self, text: str) -> None:
        self.library_sends.append(text)


@pytest.mark.parametrize(
    "situation", ["writes backing up", "transport closing", "closing handshake", "fragmenting"]
)
def test_anything_unusual_goes_through_the_library(situation: str) -> None:
    transport = _Transport(
        buffered=4096 if situation == "writes backing up" else 0,
        closing=situation == "transport closing",
    )
    connection = _Connection(
        transport, State.CLOSING if situation == "closing handshake" else State.OPEN
    )
    if situation == "fragmenting":
        connection.fragmented_send_waiter = object()

    asyncio.run(AudioFrameWriter(connection)("{}"))

    assert connection.library_sends == ["{}"] and transport.written == []


def test_each_frame_gets_its_own_key() -> None:
    transport = _Transport()
    writer = AudioFrameWriter(_Connection(transport))

    async def send_many() -> None:
        for _ in range(2_000):  # more than one pool of keys
            await writer("{}")

    asyncio.run(send_many())
    keys = [frame[2:6] for frame in transport.written]
    assert len(keys) == 2_000 and len(set(keys)) > 1_990  # 32-bit keys: collisions are rare
    assert all(_parse_as_a_server_would(frame).data == b"{}" for frame in transport.written)
