"""The voice service's production server: uvicorn on uvloop (`python -m voice.server`).

Every relayed 20 ms audio frame costs a few WebSocket messages, so the server's per-message
cost is the bridge's cost: uvloop, httptools and uvicorn's sans-I/O websockets protocol relay
the same calls with much less CPU than hypercorn and wsproto (figures in docs/performance.md).
Everything here is one of uvicorn's documented settings.
The tests serve the app through `server_config` too, so they run what production runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from types import FrameType
from typing import Any

import uvicorn

from core.heap import freeze_startup_heap
from core.logging_setup import logging_config
from voice.drain import Drain

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
    """uvicorn's server, freezing the startup heap once the app is ready to serve, and
    draining the calls in flight (voice.drain) on SIGTERM before it shuts down."""

    def __init__(self, config: uvicorn.Config, drain: Drain | None = None) -> None:
        super().__init__(config)
        self.drain = drain
        self._draining: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does (lifespan first), then freeze what startup built."""
        await super().startup(sockets)
        if not self.should_exit:
            freeze_startup_heap()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """The first SIGTERM drains, then shuts down; SIGINT, or a second signal, at once."""
        if sig != signal.SIGTERM or self.drain is None or self._draining is not None:
            super().handle_exit(sig, frame)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not serving yet: nothing to drain
            super().handle_exit(sig, frame)
            return
        # A signal handler runs between two steps of the loop: start the drain from the loop.
        loop.call_soon_threadsafe(self._start_drain, sig, frame)

    def _start_drain(self, sig: int, frame: FrameType | None) -> None:
        assert self.drain is not None
        self._draining = asyncio.ensure_future(self.drain.run())
        self._draining.add_done_callback(lambda _: super(VoiceServer, self).handle_exit(sig, frame))


def main() -> None:
    """Serve the voice app on VOICE_HOST:VOICE_PORT until SIGTERM (after draining) or SIGINT."""
    from asgi import app
    from voice import get_drain

    host = os.environ.get("VOICE_HOST") or "127.0.0.1"
    port = int(os.environ.get("VOICE_PORT") or 8001)
    config = server_config(app, host=host, port=port, log_config=logging_config())
    VoiceServer(config, drain=get_drain(app)).run()


if __name__ == "__main__":
    main()
