"""CPU per relayed WebSocket message, in-process: the bridge's frame paths against the library's.

Both of the bridge's sockets read (and the Twilio side writes) their common frames without the
websockets library's per-frame objects. This benchmark feeds the same frames through each
protocol object in one process, with no sockets, so that only the per-message Python work is
timed (process CPU time, best of `--repeat` rounds):

* Twilio side: uvicorn's `WebSocketsSansIOProtocol` against `MediaStreamWebSocketProtocol`.
  Each round trip is one masked 300-byte media frame received (and taken by the app through
  the ASGI receive) plus one text frame sent back, as the bridge does for every 20 ms.
* Model side: websockets' `ClientConnection` against `ModelSocketConnection`: one 400-byte
  audio delta received and taken with `recv(decode=False)`, as the OpenAI SDK does.

    .venv/bin/python bench/websocket_frames.py [--messages 50000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import uvloop  # noqa: E402
from uvicorn.config import Config  # noqa: E402
from uvicorn.protocols.websockets.websockets_sansio_impl import (  # noqa: E402
    WebSocketsSansIOProtocol,
)
from uvicorn.server import ServerState  # noqa: E402
from websockets.asyncio.client import ClientConnection  # noqa: E402
from websockets.client import ClientProtocol  # noqa: E402
from websockets.frames import Frame, Opcode  # noqa: E402
from websockets.http11 import Request  # noqa: E402
from websockets.server import ServerProtocol  # noqa: E402
from websockets.uri import parse_uri  # noqa: E402

from bench._common import machine_description, print_table  # noqa: E402
from voice.model_socket import ModelSocketConnection  # noqa: E402
from voice.server import MAX_WEBSOCKET_MESSAGE_BYTES  # noqa: E402
from voice.websocket_protocol import MediaStreamWebSocketProtocol  # noqa: E402

UPGRADE = (
    b"GET /media-stream HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


class NullTransport(asyncio.Transport):
    """A transport that accepts writes and forgets them."""

    def write(self, data: Any) -> None:
        """Drop the bytes."""

    def close(self) -> None:
        """Nothing to close."""

    def is_closing(self) -> bool:
        """Never closing."""
        return False

    def pause_reading(self) -> None:
        """Nothing to pause."""

    def resume_reading(self) -> None:
        """Nothing to resume."""

    def get_write_buffer_size(self) -> int:
        """Nothing buffered."""
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """No limits to keep."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Loopback addresses."""
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8001)}.get(
            name, default
        )


def _media_text() -> str:
    payload = base64.b64encode(os.urandom(160)).decode()
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": "42",
            "streamSid": "MZ" + "0" * 32,
            "media": {"track": "inbound", "chunk": "41", "timestamp": "820", "payload": payload},
        }
    )


def _delta_bytes() -> bytes:
    event = {
        "type": "response.output_audio.delta",
        "event_id": "event_0123456789",
        "response_id": "resp_0123456789",
        "item_id": "item_0123456789",
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(os.urandom(160)).decode(),
    }
    return json.dumps(event).encode()


async def twilio_side(protocol_class: type[WebSocketsSansIOProtocol], messages: int) -> float:
    """CPU seconds per message: a media frame in (through the app's receive), a frame out."""
    received = asyncio.Event()
    texts: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            texts.append(message["text"])
            received.set()

    config = Config(
        app, ws=protocol_class, ws_max_size=MAX_WEBSOCKET_MESSAGE_BYTES, log_level="warning"
    )
    config.load()
    protocol = protocol_class(config, ServerState(), {})
    protocol.connection_made(NullTransport())
    protocol.data_received(UPGRADE)
    for _ in range(10):
        await asyncio.sleep(0)
    text = _media_text()
    frame = Frame(Opcode.TEXT, text.encode()).serialize(mask=True)
    reply = {"type": "websocket.send", "text": text}
    began = time.process_time()
    for _ in range(messages):
        received.clear()
        protocol.data_received(frame)
        await received.wait()
        await protocol.send(reply)
    spent = time.process_time() - began
    protocol.connection_lost(None)
    assert len(texts) == messages and texts[-1] == text
    return spent / messages


async def model_side(connection_class: type[ClientConnection], messages: int) -> float:
    """CPU seconds per message: an audio delta in, taken with recv(decode=False)."""
    client = ClientProtocol(parse_uri("ws://bench/v1/realtime"), max_size=None)
    request = client.connect()
    client.send_request(request)
    server = ServerProtocol()
    server.receive_data(b"".join(client.data_to_send()))
    (upgrade,) = [e for e in server.events_received() if isinstance(e, Request)]
    server.send_response(server.accept(upgrade))
    connection = connection_class(client)
    connection.connection_made(NullTransport())
    connection.data_received(b"".join(server.data_to_send()))
    delta = _delta_bytes()
    frame = Frame(Opcode.TEXT, delta).serialize(mask=False)
    began = time.process_time()
    for _ in range(messages):
        connection.data_received(frame)
        assert await connection.recv(decode=False) == delta
    spent = time.process_time() - began
    connection.connection_lost(None)
    return spent / messages


def best_of(repeat: int, measure: Callable[[Any, int], Awaitable[float]], *args: Any) -> float:
    """The lowest figure of `repeat` rounds (the one least disturbed by other work)."""
    return min(uvloop.run(measure(*args)) for _ in range(repeat))


def main() -> None:
    """Measure both sides with the library's classes and the bridge's; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.messages
    rows = []
    sides: list[tuple[str, Any, type, type]] = [
        ("Twilio: frame in + frame out", twilio_side, WebSocketsSansIOProtocol,
         MediaStreamWebSocketProtocol),
        ("model: delta in", model_side, ClientConnection, ModelSocketConnection),
    ]  # fmt: skip
    for side, measure, library, bridge in sides:
        plain = best_of(args.repeat, measure, library, n) * 1e6
        ours = best_of(args.repeat, measure, bridge, n) * 1e6
        rows.append([side, f"{plain:.2f}", f"{ours:.2f}", f"{100 * (1 - ours / plain):.0f}%"])
    print(f"CPU per message, best of {args.repeat} rounds of {n:,} ({machine_description()})")
    print_table(["path", "library (us)", "bridge (us)", "saved"], rows)


if __name__ == "__main__":
    main()
