"""A model peer that never answers the closing handshake is cut off, not waited for."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import time

from core.config import Settings
from voice.model_connection import ModelConnector, close_model

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def test_a_silent_peer_is_aborted_so_the_socket_closes_within_a_second() -> None:
    async def scenario() -> tuple[bool, float]:
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
            settings = dataclasses.replace(
                Settings.from_env({}),
                openai_api_key="sk-test",
                openai_base_url=f"http://127.0.0.1:{port}/v1",
            )
            model = await ModelConnector()(settings)
            started = time.monotonic()
            closed = await close_model(model)
            await asyncio.wait_for(peer_closed.wait(), 2)
            return closed, time.monotonic() - started

    closed, seconds = asyncio.run(scenario())
    assert closed and seconds < 1.0
