"""Caller audio to the model as WebSocket frames written straight to the socket (the hot path).

Appends are the bridge's most frequent message: 50 a second per call. The websockets library
sends each one through an async context manager and a frame object, and reads each frame's
4-byte masking key from the kernel (a getrandom syscall per frame, about 10 µs here). This
writer builds the same masked text frame itself, with keys sliced from a buffer of the OS's
CSPRNG output, and writes it in one call. Whenever the connection is not plainly open and
keeping up (closing, a fragmented message in progress, writes backing up) the library's own
send is used, so closing handshakes and flow control stay the library's business.
"""

from __future__ import annotations

import os
from typing import Any

from websockets.protocol import Side, State

from voice.websocket_frames import text_frame

# Keys for 1,024 frames per read of the OS CSPRNG; each frame still gets its own random key.
MASK_POOL_BYTES = 4096


class AudioFrameWriter:
    """Sends text messages on a websockets client connection, directly when it is safe."""

    def __init__(self, websocket: Any) -> None:
        self.websocket = websocket
        self._pool = b""
        self._offset = 0

    def _key(self) -> bytes:
        if self._offset >= len(self._pool):
            self._pool, self._offset = os.urandom(MASK_POOL_BYTES), 0
        key = self._pool[self._offset : self._offset + 4]
        self._offset += 4
        return key

    async def __call__(self, text: str) -> None:
        """Send `text` as one text message."""
        websocket = self.websocket
        transport = websocket.transport
        if (
            websocket.protocol.state is not State.OPEN
            or websocket.fragmented_send_waiter is not None
            or transport.is_closing()
            or transport.get_write_buffer_size()
        ):
            await websocket.send(text)  # waits for the socket, or raises ConnectionClosed
            return
        transport.write(text_frame(text.encode(), self._key()))


def direct_writer(websocket: Any) -> AudioFrameWriter | None:
    """A writer for a websockets (asyncio) client connection; None for anything else."""
    needed = ("protocol", "transport", "fragmented_send_waiter", "send")
    if websocket is None or not all(hasattr(websocket, name) for name in needed):
        return None
    if getattr(websocket.protocol, "side", None) is not Side.CLIENT:
        return None  # a server connection must not mask its frames
    return AudioFrameWriter(websocket)
