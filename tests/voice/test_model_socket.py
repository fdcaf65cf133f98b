"""The model socket's connection over real sockets: text frames read directly in any
segmentation and in order, control frames answered, and everything else handed to the
websockets library, which keeps its errors and closing handshake."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close, Frame, Opcode
from websockets.server import ServerProtocol

from tests.voice.fakes import FakeRealtime
from tests.voice.stack import make_settings
from voice.model_socket import ModelSocketConnection
from voice.session import ModelConnector

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _frame(opcode: Opcode, data: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=False)


def _text(text: str) -> bytes:
    return _frame(Opcode.TEXT, text.encode())


@asynccontextmanager
async def raw_server(script: Script, first_frames: bytes = b"") -> AsyncIterator[str]:
    """A WebSocket server written by hand: answers the upgrade with a 101 (and `first_frames`
    in the same write), then runs `script` on the socket. Yields its ws:// URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + WEBSOCKET_GUID.encode()).digest())
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n" + first_frames
        )
        await writer.drain()
        try:
            await script(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/v1/realtime"
    finally:
        server.close()


async def _dribble(writer: asyncio.StreamWriter, data: bytes, chunk: int) -> None:
    """Write `data` `chunk` bytes at a time, each in its own segment."""
    for start in range(0, len(data), chunk):
        writer.write(data[start : start + chunk])
        await writer.drain()
        await asyncio.sleep(0.001)


async def _client_frames(reader: asyncio.StreamReader) -> list[Frame]:
    """What the client sent after its upgrade request, parsed as a server would."""
    protocol = ServerProtocol()
    protocol.state = protocol.state.OPEN  # the upgrade was answered by hand
    protocol.parser = protocol.parse()
    next(protocol.parser)
    frames: list[Frame] = []
    while not frames:
        protocol.receive_data(await asyncio.wait_for(reader.read(4096), 5))
        frames = [e for e in protocol.events_received() if isinstance(e, Frame)]
    return frames


def _connect(url: str) -> Any:
    # The hand-written server never answers the client's close: don't wait long for it.
    return connect(url, create_connection=ModelSocketConnection, close_timeout=0.2)


def test_text_frames_arrive_in_order_however_the_bytes_are_split() -> None:
    messages = ["session.created", "a" * 300, "b" * 70_000]  # 7-, 16- and 64-bit lengths
    stream = b"".join(_text(m) for m in messages)

    small = b"".join(_text(m) for m in messages[:2])

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Frames cut mid-header and mid-payload, then in big pieces, then in one write.
        for data, chunk in ((small, 1), (small, 7), (stream, 1000), (stream, len(stream))):
            await _dribble(writer, data, chunk)
        await reader.read()  # until the client leaves

    async def scenario() -> tuple[list[Any], bool]:
        # The first message shares the 101's segment, as OpenAI's session.created often does.
        async with (
            raw_server(script, first_frames=_text("first")) as url,
            _connect(url) as ws,
        ):
            received: list[Any] = [await ws.recv()]  # str, as the library returns text
            received += [await ws.recv(decode=False) for _ in range(2 + 2 + 3 + 3)]
            return received, ws.direct

    received, direct = asyncio.run(scenario())
    encoded = [m.encode() for m in messages]
    assert received == ["first", *encoded[:2], *encoded[:2], *encoded, *encoded]
    assert direct is True


def test_pings_are_answered_and_text_keeps_arriving_directly() -> None:
    pongs: list[Frame] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_frame(Opcode.PING, b"still there?") + _text("after the ping"))
        pongs.extend(await _client_frames(reader))
        await reader.read()

    async def scenario() -> tuple[str, bool]:
        async with (
            raw_server(script) as url,
            _connect(url) as ws,
        ):
            text = await ws.recv()
            for _ in range(200):
                if pongs:
                    break
                await asyncio.sleep(0.01)
            return text, ws.direct

    text, direct = asyncio.run(scenario())
    assert text == "after the ping" and direct is True
    assert [(f.opcode, f.data) for f in pongs] == [(Opcode.PONG, b"still there?")]


def test_keepalive_pings_from_the_client_are_matched_by_the_servers_pongs() -> None:
    """websockets pings every 0.1 s and drops the socket when a pong is 0.3 s late."""

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(f"echo:{message}")

    async def scenario() -> tuple[list[str], float, bool]:
        async with (
            serve(echo, "127.0.0.1", 0, compression=None) as server,
            connect(
                f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}",
                create_connection=ModelSocketConnection,
                compression=None,
                ping_interval=0.1,
                ping_timeout=0.3,
            ) as ws,
        ):
            replies = []
            for i in range(8):
                await ws.send(f"hello {i}")
                replies.append(await ws.recv())
                await asyncio.sleep(0.15)
            return replies, ws.latency, ws.direct

    replies, latency, direct = asyncio.run(scenario())
    assert replies == [f"echo:hello {i}" for i in range(8)]
    assert latency > 0  # set when a pong matched a keepalive ping
    assert direct is True


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        (_frame(Opcode.TEXT, b"hel", fin=False) + _frame(Opcode.CONT, b"lo"), b"hello"),
        (_frame(Opcode.BINARY, b"\x00\x01\x02"), b"\x00\x01\x02"),
    ],
    ids=["fragmented", "binary"],
)
def test_other_messages_are_left_to_the_library_in_order(frames: bytes, expected: bytes) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_text("one") + _text("two") + frames + _text("last"))
        await reader.read()

    async def scenario() -> tuple[list[bytes], bool]:
        async with (
            raw_server(script) as url,
            _connect(url) as ws,
        ):
            received = [await ws.recv(decode=False) for _ in range(4)]
            return received, ws.direct

    received, direct = asyncio.run(scenario())
    assert received == [b"one", b"two", expected, b"last"]
    assert direct is False


def test_a_close_from_the_server_ends_recv_after_the_messages_before_it() -> None:
    echoed: list[Frame] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_text("goodbye") + _frame(Opcode.CLOSE, Close(1000, "done").serialize()))
        echoed.extend(await _client_frames(reader))

    async def scenario() -> tuple[str, int]:
        async with (
            raw_server(script) as url,
            _connect(url) as ws,
        ):
            text = await ws.recv()
            with pytest.raises(ConnectionClosedOK) as closed:
                await ws.recv()
            return text, closed.value.rcvd.code

    text, code = asyncio.run(scenario())
    assert text == "goodbye" and code == 1000
    assert [f.opcode for f in echoed] == [Opcode.CLOSE]  # the library completed the handshake


def test_text_that_is_not_utf8_closes_with_1007_when_decoded_as_the_library_does() -> None:
    echoed: list[Frame] = []
    invalid = b"\xff\xfe"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_text("caf\u00e9") + _frame(Opcode.TEXT, invalid) * 2)
        echoed.extend(await _client_frames(reader))

    async def scenario() -> tuple[str, bytes, int | None]:
        async with (
            raw_server(script) as url,
            _connect(url) as ws,
        ):
            text = await ws.recv()
            raw = await ws.recv(decode=False)  # bytes, unchecked, as the library gives them
            with pytest.raises(ConnectionClosedError) as closed:
                await ws.recv()
            sent = closed.value.sent
            return text, raw, sent.code if sent else None

    text, raw, code = asyncio.run(scenario())
    assert text == "caf\u00e9" and raw == invalid
    assert code == 1007
    assert [f.opcode for f in echoed] == [Opcode.CLOSE]


def test_a_dropped_socket_wakes_a_waiting_recv() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_text("only this"))
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.transport.abort()

    async def scenario() -> str:
        async with (
            raw_server(script) as url,
            _connect(url) as ws,
        ):
            text = await ws.recv()
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(ws.recv(), 5)
            return text

    assert asyncio.run(scenario()) == "only this"


def test_a_backlog_pauses_reading_and_every_message_still_arrives_in_order() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"".join(_text(f"delta {i}") for i in range(200)))
        await reader.read()

    async def scenario() -> tuple[bool, list[str]]:
        async with (
            raw_server(script) as url,
            _connect(url) as ws,
        ):
            await asyncio.sleep(0.2)  # nothing read: 200 messages arrive
            paused = not ws.transport.is_reading()
            return paused, [await ws.recv() for _ in range(200)]

    paused, received = asyncio.run(scenario())
    assert paused
    assert received == [f"delta {i}" for i in range(200)]


def test_the_sdk_opens_model_sockets_with_this_connection(sqlite_url: str) -> None:
    async def scenario() -> tuple[type, bool]:
        async def say_hello(session: Any) -> None:
            await session.send({"type": "session.created", "session": {"type": "realtime"}})
            await session.closed.wait()

        async with FakeRealtime(say_hello) as realtime:
            settings = make_settings(sqlite_url, openai_base_url=realtime.base_url)
            model = await ModelConnector()(settings)
            try:
                assert b"session.created" in await model.recv_bytes()
                websocket = model._connection  # type: ignore[attr-defined]
                return type(websocket), websocket.direct
            finally:
                await model.close()

    kind, direct = asyncio.run(scenario())
    assert kind is ModelSocketConnection and direct is True
