"""The model socket's client connection: websockets', reading plain text frames itself.

The OpenAI SDK opens its Realtime socket with the websockets library, which parses each
incoming frame with a generator-based parser (a frame object, an enum lookup, an events list)
and hands it over through a message assembler with its own queue and futures. A call receives
some fifty audio deltas a second, so that path was a tenth of the relay's Python work. This
connection class, which the SDK is asked to use (`create_connection`), reads final text
frames, pings and pongs itself once the handshake is done and queues each message for `recv`.

The library reads the HTTP response: bytes are given to it up to the end of the response head
and no further, so its frame parser has seen no frame when this class takes over. Anything
other than the frames above (a close frame, binary or fragmented messages, reserved bits, a
masked frame) is handed to the library from that frame on, and the library keeps the socket:
closing handshakes and protocol errors stay its business. Messages already queued here are
still returned first, so the order never changes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConcurrencyError
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State

from voice.websocket_frames import LIBRARY, TEXT, FrameBuffer, frame_at

END_OF_HEAD = b"\r\n\r\n"
MAX_HEAD_BYTES = 64 * 1024
# Stop reading the socket while this many messages wait for `recv` (the library's default).
PAUSE_AT, RESUME_AT = 16, 4


class ModelSocketConnection(ClientConnection):
    """A websockets client connection that reads text frames without per-frame objects."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.direct = False  # frames are read here (True) or by the library (False)
        self._head = b""  # the HTTP response so far (until the handshake is read)
        self._head_done = False
        self._partial = FrameBuffer()
        self._messages: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    # ------------------------------------------------------------ receiving

    def data_received(self, data: bytes) -> None:
        """Frames read here once the handshake is done; everything else by the library."""
        if self.direct:
            self._read_frames(self._partial.take(data))
        elif self._head_done:
            super().data_received(data)
        else:
            self._read_head(data)

    def _read_head(self, data: bytes) -> None:
        head = self._head + data
        end = head.find(END_OF_HEAD)
        if end < 0 and len(head) <= MAX_HEAD_BYTES:
            self._head = head
            return
        self._head, self._head_done = b"", True
        if end < 0:  # no end in sight: the library refuses it
            super().data_received(head)
            return
        end += len(END_OF_HEAD)
        super().data_received(head[:end])  # the 101 response: no body follows it
        if self.protocol.state is State.OPEN and self.response is not None:
            self.direct = True
            if len(head) > end:
                self._read_frames(head[end:])
        elif len(head) > end:
            super().data_received(head[end:])  # a refusal's body

    def _read_frames(self, buffer: bytes | bytearray) -> None:
        start = 0
        while found := frame_at(buffer, start, masked=False, max_size=self.protocol.max_size):
            opcode, payload_at, payload_end = found
            if found is LIBRARY:
                self._hand_over(buffer[start:])
                return
            if payload_end > len(buffer):
                break
            payload = bytes(buffer[payload_at:payload_end])
            start = payload_end
            if opcode == TEXT:
                self._messages.append(payload)
            else:
                self._control_frame(Frame(Opcode(opcode), payload))
        self._partial.keep(buffer, start)
        if self._messages:
            self._wake()
            if len(self._messages) >= PAUSE_AT and not self._paused:
                self._paused = True
                self.transport.pause_reading()

    def _control_frame(self, frame: Frame) -> None:
        # As the library does: answer a ping, and match a pong to its keepalive ping.
        self.protocol.recv_frame(frame)
        events = self.protocol.events_received()
        try:
            self.send_data()
        except Exception as exc:
            self.set_recv_exc(exc)
        for event in events:
            self.process_event(event)

    def _hand_over(self, rest: bytes | bytearray) -> None:
        self.direct = False
        self._wake()  # a waiting recv() reads from the library now
        super().data_received(bytes(rest))

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        """The library closes its side; a waiting recv() then raises ConnectionClosed."""
        self.direct = False
        super().connection_lost(exc)
        self._wake()

    async def recv(self, decode: bool | None = None) -> Any:
        """The next message (as the library's recv), from here while frames are read here."""
        while not self._messages:
            if not self.direct:
                return await super().recv(decode)
            if self._waiter is not None:
                raise ConcurrencyError("cannot call recv while another coroutine is in recv")
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._messages.popleft()
        if self._paused and len(self._messages) <= RESUME_AT:
            self._paused = False
            self.transport.resume_reading()
        # The SDK asks for bytes; text is decoded only for other callers.
        if decode is False:
            return data
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            # As the library's recv does: fail the connection with 1007, then raise its close.
            async with self.send_context():
                self.protocol.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
            await asyncio.shield(self.connection_lost_waiter)
            raise self.protocol.close_exc from self.recv_exc


# What the SDK's `realtime.connect(websocket_connection_options=...)` passes to websockets.
MODEL_SOCKET_OPTIONS: Any = {"create_connection": ModelSocketConnection}
