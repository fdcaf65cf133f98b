"""uvicorn's sans-I/O WebSocket protocol, with a direct path for the frames a media stream is.

A call relays about a hundred small text messages a second. In uvicorn's protocol each one
passes through the websockets library's generator-based parser (a frame object, an enum
lookup, checks and an events list per frame) on the way in, and through a frame object and an
output list on the way out: most of the relay's Python work per message. This subclass reads
and writes the common case itself: single-frame (FIN) masked text frames from the client,
pings and pongs, and unfragmented text frames to it, while the connection is open.

Anything else (a close frame, binary or fragmented messages, reserved bits, an unmasked or
oversized frame, invalid UTF-8) is handed to the library from that frame on, and the library
keeps the connection from then on: closing handshakes and every protocol error stay its
business, with its close codes. The handover is sound because the library's parser sits at a
frame boundary with nothing buffered: a client speaks only after the 101 response, and from
then on every byte went through this class until the handover.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from voice.websocket_frames import LIBRARY, TEXT, FrameBuffer, apply_mask, frame_at, text_frame


class MessageQueue:
    """What uvicorn's protocol needs of its asyncio.Queue, for its one reader (the app's
    receive): a deque and a future, without the Queue's loop lookup and waiter lists."""

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        """Queue `item` and wake the reader."""
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        """Whether nothing is queued."""
        return not self._items

    async def get(self) -> Any:
        """The oldest item, once there is one."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class MediaStreamWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol, reading and writing plain text frames itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = MessageQueue()  # type: ignore[assignment]
        self.direct = False  # frames are read here (True) or by the library (False)
        self._partial = FrameBuffer()

    async def send(self, message: Any) -> None:
        """ASGI send: a text message is written directly while the connection is open."""
        kind = message["type"]
        if kind == "websocket.send" and self._can_write_directly():
            text = message.get("text")
            if text is not None and message.get("bytes") is None:
                self.transport.write(text_frame(text.encode()))
                return
        accepting = kind == "websocket.accept" and not self.handshake_complete
        await super().send(message)
        if accepting and self.handshake_complete and self.conn.state is State.OPEN:
            # The 101 has just been written: the client has sent nothing since its request.
            self.direct = not self.conn.reader.buffer

    def _can_write_directly(self) -> bool:
        return (
            self.handshake_complete
            and not self.close_sent
            and not self.disconnected
            and self.initial_response is None
            and self.writable.is_set()
            and not self.transport.is_closing()
            and self.conn.state is State.OPEN
            and not self.conn.expect_continuation_frame
        )

    def data_received(self, data: bytes) -> None:
        """Read whole text, ping and pong frames here; hand anything else to the library."""
        if not self.direct:
            super().data_received(data)
            return
        buffer = self._partial.take(data)
        delivered = False
        start = 0
        while found := frame_at(buffer, start, masked=True, max_size=self.conn.max_size):
            opcode, payload_at, payload_end = found
            if found is LIBRARY:
                self._hand_over(buffer[start:], delivered)
                return
            if payload_end > len(buffer):
                break
            payload = apply_mask(
                buffer[payload_at:payload_end], buffer[payload_at - 4 : payload_at]
            )
            if opcode == TEXT:
                try:
                    text = payload.decode()
                except UnicodeDecodeError:
                    self._hand_over(buffer[start:], delivered)  # the library closes with 1007
                    return
                if not self.close_sent:  # past `websocket.close`, messages are dropped
                    self.queue.put_nowait({"type": "websocket.receive", "text": text})
                    delivered = True
            else:
                # The library answers pings and matches pongs to its keepalive pings.
                self.conn.recv_frame(Frame(Opcode(opcode), payload))
                self.handle_events()
            start = payload_end
        self._partial.keep(buffer, start)
        if delivered:
            self._pause_until_read()

    def _hand_over(self, rest: bytes | bytearray, delivered: bool) -> None:
        self.direct = False
        if delivered:
            self._pause_until_read()
        super().data_received(bytes(rest))

    def _pause_until_read(self) -> None:
        # As uvicorn does: stop reading until the app has taken what is queued.
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()
