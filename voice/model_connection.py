"""The model socket: opening, closing and pre-opening a call's OpenAI Realtime connection.

A model socket is an aiohttp client WebSocket opened with the library's public `ws_connect`,
to the Realtime URL under OPENAI_BASE_URL. The bridge needs three calls of it (`send_raw`,
`recv_bytes`, `close`: the names of the SDK's Realtime connection, so either fits), and
closing never waits on the peer for long: the library itself drops the TCP connection when the
closing handshake is not answered within `MODEL_CLOSE_HANDSHAKE_SECONDS`.

Why aiohttp rather than the websockets library: every caller frame becomes a masked client
frame, about 50 a second per call. aiohttp parses frames in C and draws each mask from
Python's PRNG, where websockets parses them in Python and makes a getrandom system call per
mask; measured side by side, the bridge used less CPU per call (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.db import transaction
from core.services import calls

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# How long a closing handshake may take before the library aborts the TCP connection, and how
# long a caller of `close_model` waits at most: a socket left open keeps the session billing.
MODEL_CLOSE_HANDSHAKE_SECONDS = 0.5
MODEL_CLOSE_TIMEOUT_SECONDS = 0.8
MODEL_OPEN_TIMEOUT_SECONDS = 10


class ModelConnection(Protocol):
    """What the bridge uses of a model socket."""

    async def send_raw(self, data: bytes | str) -> None: ...
    async def recv_bytes(self) -> bytes | str: ...
    async def close(self, *, code: int = 1000, reason: str = "") -> None: ...


class ModelSocketClosed(ConnectionError):
    """The model socket is gone (closed by either side, or failed)."""


class RealtimeSocket:
    """One Realtime connection: an aiohttp client WebSocket, spoken to through its API."""

    def __init__(self, http: aiohttp.ClientSession, websocket: aiohttp.ClientWebSocketResponse):
        self.http = http
        self.websocket = websocket

    async def send_raw(self, data: bytes | str) -> None:
        """Send one message (JSON text)."""
        if isinstance(data, str):
            await self.websocket.send_str(data)
        else:
            await self.websocket.send_bytes(data)

    async def recv_bytes(self) -> bytes | str:
        """The next message as it came (JSON text); ModelSocketClosed once the socket is gone."""
        message = await self.websocket.receive()
        if message.type is aiohttp.WSMsgType.TEXT or message.type is aiohttp.WSMsgType.BINARY:
            data: bytes | str = message.data
            return data
        raise ModelSocketClosed(f"model socket {message.type.name.lower()}")

    async def close(self, *, code: int = 1000, reason: str = "") -> None:
        """Close the socket (aborted if the peer does not answer in time), then its session."""
        try:
            await self.websocket.close(code=code, message=reason.encode())
        finally:
            await self.http.close()


def realtime_url(base_url: str, model: str) -> str:
    """The Realtime WebSocket URL under an OpenAI API base URL, as the official SDK builds it."""
    parts = urlsplit(base_url or DEFAULT_BASE_URL)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/") + "/realtime"
    return urlunsplit((scheme, parts.netloc, path, urlencode({"model": model}), ""))


class ModelConnector:
    """Opens Realtime sockets (honours OPENAI_BASE_URL).

    One TLS context per app: building one loads the CA bundle (tens of ms of CPU), which per
    call would add to the caller's wait for the first greeting.
    """

    def __init__(self) -> None:
        self._tls: ssl.SSLContext | None = None

    def tls(self) -> ssl.SSLContext:
        """The TLS context for wss:// sockets, created once."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def __call__(self, settings: Settings) -> ModelConnection:
        """Open one model socket for one call."""
        if not settings.openai_api_key:
            raise RuntimeError("OPENAI_API_KEY is not configured")
        url = realtime_url(settings.openai_base_url, settings.openai_realtime_model)
        # A session per socket: it holds nothing else, and closing the socket closes it.
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        try:
            async with asyncio.timeout(MODEL_OPEN_TIMEOUT_SECONDS):  # the whole handshake
                websocket = await http.ws_connect(
                    url,
                    ssl=self.tls() if url.startswith("wss:") else True,
                    headers={"Authorization": f"Bearer {settings.openai_api_key}"},
                    # Base64 audio barely compresses: deflate would only cost CPU on every message.
                    compress=0,
                    # Realtime events (instructions, long transcripts) have no set bound.
                    max_msg_size=0,
                    timeout=aiohttp.ClientWSTimeout(ws_close=MODEL_CLOSE_HANDSHAKE_SECONDS),
                )
        except BaseException:
            await http.close()
            raise
        return RealtimeSocket(http, websocket)


async def connect_model(settings: Settings) -> ModelConnection:
    """Open a Realtime socket (the default for a CallSession)."""
    return await ModelConnector()(settings)


async def close_model(model: ModelConnection) -> bool:
    """Close a model socket, waiting at most MODEL_CLOSE_TIMEOUT_SECONDS; False if it failed."""
    try:
        await asyncio.wait_for(model.close(), MODEL_CLOSE_TIMEOUT_SECONDS)
    except Exception:
        return False
    return True


def call_direction(sessions: sessionmaker[Session], call_sid: str) -> str | None:
    """The direction of the call Twilio knows by `call_sid` (None if there is none)."""
    with transaction(sessions) as session:
        call = calls.get_call_by_sid(session, call_sid)
        return None if call is None else str(call.direction)


@dataclass
class PreopenedModel:
    """A model socket opened during /incoming-call, and the session.update sent on it."""

    connection: ModelConnection
    session_update: str | None = None  # None: not configured yet


class PreopenedModels:
    """Model sockets opened while answering /incoming-call, waiting for their media stream.

    Opening the socket during the webhook hides the handshake from the caller's first turn, and
    configuring it then hides the session.update round trip too; a socket nobody claims within
    the stream token's lifetime is closed.
    """

    def __init__(
        self,
        settings: Settings,
        connect: Callable[[Settings], Awaitable[ModelConnection]],
        ttl_seconds: float = 60,
        sessions: Callable[[], sessionmaker[Session] | None] | None = None,
        *,
        session_update: Callable[[Settings, str], str],
    ) -> None:
        self.settings = settings
        self.connect = connect
        self.ttl_seconds = ttl_seconds
        # Where the call's direction is looked up when `open` is not told it (the database is
        # opened only once the server starts, hence a callable).
        self.sessions = sessions
        # The session.update text for a call in a direction (the call session's own).
        self.session_update = session_update
        self._pending: dict[str, asyncio.Task[PreopenedModel]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def open(self, call_sid: str, direction: str | None = None) -> None:
        """Start connecting and configuring a model socket for `call_sid` (in the background)."""
        if call_sid in self._pending:
            return
        loop = asyncio.get_running_loop()
        self._pending[call_sid] = loop.create_task(self._connect(call_sid, direction))
        self._timers[call_sid] = loop.call_later(self.ttl_seconds, self._expire, call_sid)

    async def _connect(self, call_sid: str, direction: str | None) -> PreopenedModel:
        # The lookup runs during the handshake, which takes far longer.
        lookup = asyncio.ensure_future(self._direction(call_sid, direction))
        try:
            model = await self.connect(self.settings)
        except BaseException:
            lookup.cancel()
            raise
        try:
            found = await lookup
            if found is None:
                return PreopenedModel(model)  # the stream's CallSession configures it
            update = self.session_update(self.settings, found)
            await model.send_raw(update)
        except BaseException:
            # Expired, or the socket failed already: the stream connects afresh if it comes.
            await close_model(model)
            raise
        return PreopenedModel(model, update)

    async def _direction(self, call_sid: str, direction: str | None) -> str | None:
        if direction is not None:
            return direction
        sessions = self.sessions() if self.sessions is not None else None
        if sessions is None:
            return None
        try:
            return await asyncio.to_thread(call_direction, sessions, call_sid)
        except Exception as exc:
            logger.info("could not look up a call's direction (%s)", type(exc).__name__)
            return None

    def take(self, call_sid: str) -> asyncio.Task[PreopenedModel] | None:
        """The pending socket for `call_sid`, handed over to its CallSession (or None)."""
        timer = self._timers.pop(call_sid, None)
        if timer is not None:
            timer.cancel()
        return self._pending.pop(call_sid, None)

    def _expire(self, call_sid: str) -> None:
        task = self.take(call_sid)
        if task is not None:
            asyncio.get_running_loop().create_task(self._discard(task))

    @staticmethod
    async def _discard(task: asyncio.Task[PreopenedModel]) -> None:
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):
            model = await task
            await close_model(model.connection)

    def __len__(self) -> int:
        return len(self._pending)

    async def close_all(self) -> None:
        """Close every socket still waiting (the server is stopping)."""
        for call_sid in list(self._pending):
            task = self.take(call_sid)
            if task is not None:
                await self._discard(task)
