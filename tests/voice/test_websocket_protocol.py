"""The media stream's WebSocket protocol over real sockets: text frames read and written
directly in any segmentation, and everything else handed to the websockets library with its
own answers and close codes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.sync.client import connect
from websockets.uri import parse_uri

from tests.voice.fakes import served
from voice.server import MAX_WEBSOCKET_MESSAGE_BYTES
from voice.websocket_protocol import MessageQueue


@dataclass
class EchoApp:
    """Echoes each text message; remembers how each was read and how the socket ended."""

    read_directly: list[bool] = field(default_factory=list)
    disconnects: list[int] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnects.append(message["code"])
                return
            # uvicorn hands the app its protocol's bound receive: was this frame read directly?
            self.read_directly.append(receive.__self__.direct)
            text = message.get("text")
            if text is None:
                reply = f"bytes:{len(message['bytes'])}"
            else:
                reply = "x" * 70_000 if text == "big" else f"echo:{text}"
            await send({"type": "websocket.send", "text": reply})


def _frame(opcode: Opcode, data: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=mask)


def _text(text: str) -> bytes:
    return _frame(Opcode.TEXT, text.encode())


class RawClient:
    """A WebSocket client on a plain socket: writes whatever bytes a test gives it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        self.protocol.send_request(self.protocol.connect())
        self.sock.sendall(b"".join(self.protocol.data_to_send()))
        events = self._events()
        assert isinstance(events[0], Response) and events[0].status_code == 101

    def send(self, data: bytes, chunk: int | None = None) -> None:
        """Send `data` at once, or `chunk` bytes per write with no delay in between."""
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        step = chunk or len(data)
        for start in range(0, len(data), step):
            self.sock.sendall(data[start : start + step])

    def _events(self) -> list[Any]:
        while not (events := self.protocol.events_received()):
            data = self.sock.recv(65536)
            if not data:
                self.protocol.receive_eof()
                return []
            self.protocol.receive_data(data)
        return events

    def frames(self, count: int) -> Iterator[Frame]:
        """The next `count` frames from the server."""
        pending: list[Any] = []
        for _ in range(count):
            if not pending:
                pending = self._events()
            yield pending.pop(0)

    def close_code(self) -> int | None:
        """The code of the server's close frame (None if the socket ended without one)."""
        while events := self._events():
            for event in events:
                if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                    return Close.parse(event.data).code
        return None

    def close(self) -> None:
        """Drop the socket."""
        self.sock.close()


@contextlib.asynccontextmanager
async def echo_server(**overrides: Any) -> AsyncIterator[tuple[str, EchoApp]]:
    """The echo app on the voice service's server settings; yields its ws:// URL."""
    app = EchoApp()
    async with served(app, **overrides) as base:
        yield base.replace("http://", "ws://") + "/media-stream", app


def _with_echo_server(talk: Any, **overrides: Any) -> tuple[Any, list[bool], list[int]]:
    """Run the blocking client `talk(url)` in a thread against the echo server: what it
    returned, whether the app read each message directly, and the app's disconnect codes."""

    async def scenario() -> tuple[Any, EchoApp]:
        async with echo_server(**overrides) as (url, app):
            result = await asyncio.to_thread(talk, url)
            for _ in range(100):  # the app hears of a close a moment after the client
                if app.disconnects:
                    break
                await asyncio.sleep(0.01)
            return result, app

    result, app = asyncio.run(scenario())
    return result, app.read_directly, app.disconnects


def _texts(client: RawClient, count: int) -> list[str]:
    return [frame.data.decode() for frame in client.frames(count)]


def test_text_frames_arrive_whole_and_in_order_however_the_bytes_are_split() -> None:
    messages = ["hi", "a" * 300, "b" * MAX_WEBSOCKET_MESSAGE_BYTES]  # 7-, 16- and 64-bit lengths
    echoed = [f"echo:{m}" for m in messages]

    def talk(url: str) -> tuple[list[list[str]], str]:
        received = []
        # One write, then frames cut mid-header and mid-payload.
        for chunk, sent in ((None, messages), (1, messages[:2]), (7, messages), (1000, messages)):
            client = RawClient(url)
            client.send(b"".join(_text(m) for m in sent), chunk)
            received.append(_texts(client, len(sent)))
            client.close()
        client = RawClient(url)
        client.send(_text("big"))
        (big,) = _texts(client, 1)
        client.close()
        return received, big

    (received, big), read_directly, _ = _with_echo_server(talk)
    assert received == [echoed, echoed[:2], echoed, echoed]
    assert big == "x" * 70_000  # a 64-bit length from the server
    assert len(read_directly) == 12 and all(read_directly)


def test_pings_are_answered_and_text_keeps_flowing_directly() -> None:
    def talk(url: str) -> list[Frame]:
        client = RawClient(url)
        client.send(_frame(Opcode.PING, b"are you there") + _text("after the ping"))
        frames = list(client.frames(2))
        client.close()
        return frames

    (pong, echo), read_directly, _ = _with_echo_server(talk)
    assert pong.opcode is Opcode.PONG and pong.data == b"are you there"
    assert echo.data == b"echo:after the ping"
    assert read_directly == [True]


def test_the_servers_keepalive_pings_are_matched_by_the_clients_pongs() -> None:
    """uvicorn pings every 0.1 s and drops the socket when a pong is 0.3 s late."""

    def talk(url: str) -> list[str]:
        with connect(url, compression=None) as ws:  # the library answers pings itself
            replies = []
            for i in range(8):
                ws.send(f"still here {i}")
                replies.append(ws.recv(timeout=5))
                time.sleep(0.15)
            return replies

    replies, read_directly, _ = _with_echo_server(talk, ws_ping_interval=0.1, ws_ping_timeout=0.3)
    assert replies == [f"echo:still here {i}" for i in range(8)]
    assert read_directly == [True] * 8


@pytest.mark.parametrize(
    ("frame", "answer"),
    [
        (_frame(Opcode.TEXT, b"hel", fin=False) + _frame(Opcode.CONT, b"lo"), "echo:hello"),
        (_frame(Opcode.BINARY, os.urandom(16)), "bytes:16"),
    ],
    ids=["fragmented", "binary"],
)
def test_other_messages_are_left_to_the_library_from_then_on(frame: bytes, answer: str) -> None:
    def talk(url: str) -> list[str]:
        client = RawClient(url)
        client.send(_text("first"))
        first = _texts(client, 1)
        client.send(frame + _text("last"))
        rest = _texts(client, 2)
        client.close()
        return first + rest

    texts, read_directly, _ = _with_echo_server(talk)
    assert texts == ["echo:first", answer, "echo:last"]
    assert read_directly == [True, False, False]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (_frame(Opcode.TEXT, b"\xff\xfe not utf-8"), 1007),
        (_frame(Opcode.TEXT, b"unmasked", mask=False), 1002),
        (_frame(Opcode.TEXT, b"y" * (MAX_WEBSOCKET_MESSAGE_BYTES + 1)), 1009),
        (bytes([0x81 | 0x40]) + _text("reserved bit")[1:], 1002),
        (bytes([0x80 | Opcode.PING.value]) + _text("p" * 126)[1:], 1002),
    ],
    ids=["invalid-utf8", "unmasked", "too-big", "reserved-bit", "long-ping"],
)
def test_protocol_errors_get_the_librarys_close_codes(frame: bytes, code: int) -> None:
    def talk(url: str) -> tuple[list[str], int | None]:
        client = RawClient(url)
        client.send(_text("fine"))
        echoed = _texts(client, 1)
        client.send(frame)
        closed = client.close_code()
        client.close()
        return echoed, closed

    (echoed, closed), read_directly, disconnects = _with_echo_server(talk)
    assert echoed == ["echo:fine"] and read_directly == [True]
    assert closed == code
    assert disconnects == [code]


def test_a_close_from_the_client_completes_the_closing_handshake() -> None:
    def talk(url: str) -> tuple[list[str], int | None]:
        client = RawClient(url)
        client.send(_text("bye"))
        echoed = _texts(client, 1)
        client.send(_frame(Opcode.CLOSE, struct.pack("!H", 1000) + b"done"))
        closed = client.close_code()
        client.close()
        return echoed, closed

    (echoed, closed), _, disconnects = _with_echo_server(talk)
    assert echoed == ["echo:bye"]
    assert closed == 1000
    assert disconnects == [1000]


def test_the_message_queue_survives_a_cancelled_reader() -> None:
    """The app's receive() can be cancelled (a call ending); the queue stays usable."""

    async def scenario() -> list[str]:
        queue = MessageQueue()
        waiting = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        queue.put_nowait("one")
        queue.put_nowait("two")
        got = [await queue.get(), await queue.get()]
        later = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        assert not later.done() and queue.empty()
        queue.put_nowait("three")
        return [*got, await asyncio.wait_for(later, 1)]

    assert asyncio.run(scenario()) == ["one", "two", "three"]
