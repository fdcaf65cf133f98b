"""The voice service's production server: uvicorn on uvloop (`python -m voice.server`).

Every relayed 20 ms audio frame costs a few WebSocket messages, so the server's per-message
cost is the bridge's cost: uvloop, httptools and uvicorn's sans-I/O websockets protocol relay
the same calls with much less CPU than hypercorn and wsproto (figures in docs/performance.md).
Everything here is one of uvicorn's documented settings.
The tests serve the app through `server_config` too, so they run what production runs.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import uvicorn

from core.heap import freeze_startup_heap
from core.logging_setup import logging_config

# Twilio's frames are a few hundred bytes; refuse anything larger at the protocol level.
MAX_WEBSOCKET_MESSAGE_BYTES = 64 * 1024
GRACEFUL_SHUTDOWN_SECONDS = 10


def server_config(
    app: Any, *, host: str = "127.0.0.1", port: int = 8001, **overrides: Any
) -> uvicorn.Config:
    """uvicorn's settings for the voice service (the tests override only the timings)."""
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop" if _has("uvloop") else "asyncio",
        "http": "httptools" if _has("httptools") else "h11",
        # uvicorn's sans-I/O protocol on the websockets library: the lightest it offers.
        "ws": "websockets-sansio",
        "ws_max_size": MAX_WEBSOCKET_MESSAGE_BYTES,
        # Twilio sends mu-law audio, which does not compress; deflate would only cost CPU.
        "ws_per_message_deflate": False,
        "lifespan": "on",
        # Request lines can carry phone numbers in query strings: no access log.
        "access_log": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "server_header": False,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def bound_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket (port 0: a free one), to hand to `uvicorn.Server.serve`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    return sock


class VoiceServer(uvicorn.Server):
    """uvicorn's server, freezing the startup heap once the app is ready to serve."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does (lifespan first), then freeze what startup built."""
        await super().startup(sockets)
        if not self.should_exit:
            freeze_startup_heap()


def main() -> None:
    """Serve `asgi:app` on VOICE_HOST:VOICE_PORT until SIGTERM/SIGINT."""
    host = os.environ.get("VOICE_HOST") or "127.0.0.1"
    port = int(os.environ.get("VOICE_PORT") or 8001)
    config = server_config("asgi:app", host=host, port=port, log_config=logging_config())
    VoiceServer(config).run()


if __name__ == "__main__":
    main()
