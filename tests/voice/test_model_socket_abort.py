"""A model peer that never answers the closing handshake is cut off, not waited for."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time

from websockets.asyncio.client import connect

from voice.session import MODEL_CLOSE_TIMEOUT_SECONDS, abort_model_socket

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class SdkLikeConnection:
    """What the SDK's Realtime connection is to us: close(), over a websockets `_connection`."""

    def __init__(self, websocket) -> None:  # type: ignore[no-untyped-def]
        self._connection = websocket

    async def close(self, *, code: int = 1000, reason: str = "") -> None:
        await self._connection.close(code=code, reason=reason)


def test_a_silent_peer_is_aborted_so_the_socket_closes_within_a_second() -> None:
    async def scenario() -> float:
        peer_closed = asyncio.Event()

        async def silent_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = await reader.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key")
            )
            accept = base64.b64encode(hashlib.sha1(key + WS_GUID.encode()).digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            await writer.drain()
            while await reader.read(1024):  # swallow the close frame, never answer it
                pass
            peer_closed.set()

        server = await asyncio.start_server(silent_peer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            websocket = await connect(f"ws://127.0.0.1:{port}/v1/realtime", close_timeout=30)
            model = SdkLikeConnection(websocket)
            started = time.monotonic()
            try:
                await asyncio.wait_for(model.close(), MODEL_CLOSE_TIMEOUT_SECONDS)
            except TimeoutError:
                abort_model_socket(model)
            await asyncio.wait_for(peer_closed.wait(), 2)
            return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0
