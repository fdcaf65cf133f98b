"""The WebSocket frames the bridge reads and writes itself (RFC 6455 section 5.2).

Both of the bridge's sockets handle their common frames without the websockets library's
per-frame objects (`voice.websocket_protocol` for Twilio's side; `voice.model_socket` and
`voice.audio_frames` for the model's). This is what they share: building a text frame, and
finding where a received frame's payload lies, or that the frame is one to leave to the
library.
"""

from __future__ import annotations

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover (the C extension ships in the wheels)
    from websockets.utils import apply_mask

FIN = 0x80
RESERVED_BITS = 0x70
OPCODE_BITS = 0x0F
MASKED = 0x80
TEXT, PING, PONG = 0x1, 0x9, 0xA
MAX_CONTROL_PAYLOAD = 125
# frame_at's answer for a frame the caller must hand to the library.
LIBRARY = (-1, 0, 0)


def text_frame(payload: bytes, key: bytes | None = None) -> bytes:
    """One final text frame: masked with `key` (client to server), or plain (server)."""
    length = len(payload)
    mask_bit = MASKED if key is not None else 0
    if length < 126:
        header = bytes((FIN | TEXT, mask_bit | length))
    elif length < 65536:
        header = bytes((FIN | TEXT, mask_bit | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((FIN | TEXT, mask_bit | 127)) + length.to_bytes(8, "big")
    if key is None:
        return header + payload
    return header + key + apply_mask(payload, key)


class FrameBuffer:
    """The start of a frame still arriving, grown in place: a large frame that comes in many
    pieces is copied about once, not once per piece."""

    def __init__(self) -> None:
        self._rest = bytearray()

    def take(self, data: bytes) -> bytes | bytearray:
        """The bytes to parse now: what was kept, then `data`."""
        if not self._rest:
            return data
        rest, self._rest = self._rest, bytearray()
        rest += data
        return rest

    def keep(self, buffer: bytes | bytearray, start: int) -> None:
        """Keep `buffer[start:]`, an incomplete frame, for the next piece."""
        if start >= len(buffer):
            return
        if start == 0 and isinstance(buffer, bytearray):
            self._rest = buffer
        else:
            self._rest = bytearray(buffer[start:])


def frame_at(
    buffer: bytes | bytearray, start: int, *, masked: bool, max_size: int | None
) -> tuple[int, int, int] | None:
    """(opcode, payload start, payload end) of the frame at `start`; None while its header is
    incomplete; LIBRARY for anything but a final text, ping or pong frame, masked as `masked`
    says, within `max_size`. A masked frame's key is the 4 bytes before its payload."""
    end = len(buffer)
    if end - start < 2:
        return None
    head1, head2 = buffer[start], buffer[start + 1]
    opcode = head1 & OPCODE_BITS
    length = head2 & 0x7F
    if (
        head1 & (FIN | RESERVED_BITS) != FIN
        or bool(head2 & MASKED) != masked
        or opcode not in (TEXT, PING, PONG)
        or (opcode != TEXT and length > MAX_CONTROL_PAYLOAD)
    ):
        return LIBRARY
    at = start + 2
    if length == 126:
        if end - at < 2:
            return None
        length = int.from_bytes(buffer[at : at + 2], "big")
        at += 2
    elif length == 127:
        if end - at < 8:
            return None
        length = int.from_bytes(buffer[at : at + 8], "big")
        at += 8
    if max_size is not None and length > max_size:
        return LIBRARY
    if masked:
        at += 4
    return opcode, at, at + length
