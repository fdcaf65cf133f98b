"""Pure parsers and builders for the two wire protocols (Twilio Media Streams, OpenAI Realtime).

No sockets here: every function takes and returns plain values, so the protocol logic is
unit-testable on its own. The per-frame ones (media in, audio out, marks) use orjson: they run
about 150 times a second per call, and it parses and builds these messages several times faster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

# A 20 ms media frame is ~300 bytes of JSON; anything this large is not from Twilio.
MAX_TWILIO_FRAME_BYTES = 64 * 1024
MULAW_BYTES_PER_MS = 8  # 8 kHz, one byte per sample


class ProtocolError(ValueError):
    """A frame that is not a well-formed message of the protocol."""


# ------------------------------------------------------------------ Twilio -> us


@dataclass(frozen=True)
class Connected:
    """The first message of a stream."""


@dataclass(frozen=True)
class Start:
    """The stream started: its ids and the <Parameter>s from the TwiML."""

    stream_sid: str
    call_sid: str
    custom_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Media:
    """20 ms of caller audio (base64 mu-law, passed on untouched)."""

    payload: str
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class Mark:
    """Twilio finished playing (or cleared) the audio sent before this mark."""

    name: str


@dataclass(frozen=True)
class Dtmf:
    """A key the caller pressed."""

    digit: str


@dataclass(frozen=True)
class Stop:
    """The stream ended (the call hung up or its TwiML changed)."""


TwilioEvent = Connected | Start | Media | Mark | Dtmf | Stop


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be an object")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{what} must be a string")
    return value


def parse_twilio(frame: str | bytes) -> TwilioEvent:
    """Parse one Media Streams text frame; ProtocolError when malformed or oversized."""
    if len(frame) > MAX_TWILIO_FRAME_BYTES:
        raise ProtocolError("frame too large")
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("not JSON") from exc
    message = _obj(message, "message")
    event = message.get("event")
    if event == "media":
        media = _obj(message.get("media"), "media")
        payload = _str(media.get("payload"), "media.payload")
        timestamp = media.get("timestamp")
        try:
            stamp = int(timestamp) if timestamp is not None else None
        except (TypeError, ValueError):
            stamp = None
        return Media(payload=payload, timestamp_ms=stamp)
    if event == "mark":
        mark = _obj(message.get("mark"), "mark")
        return Mark(name=_str(mark.get("name"), "mark.name"))
    if event == "start":
        start = _obj(message.get("start"), "start")
        params = start.get("customParameters") or {}
        params = _obj(params, "customParameters")
        return Start(
            stream_sid=_str(start.get("streamSid") or message.get("streamSid"), "streamSid"),
            call_sid=_str(start.get("callSid"), "callSid"),
            custom_parameters={str(k): str(v) for k, v in params.items()},
        )
    if event == "connected":
        return Connected()
    if event == "dtmf":
        dtmf = _obj(message.get("dtmf"), "dtmf")
        return Dtmf(digit=_str(dtmf.get("digit"), "dtmf.digit"))
    if event == "stop":
        return Stop()
    raise ProtocolError(f"unknown event {str(event)[:32]!r}")


# ------------------------------------------------------------------ us -> Twilio


def twilio_media(stream_sid: str, payload: str) -> str:
    """Audio for Twilio to play to the caller."""
    return _text({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def twilio_mark(stream_sid: str, name: str) -> str:
    """A mark Twilio echoes once the audio before it has played."""
    return _text({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def twilio_clear(stream_sid: str) -> str:
    """Drop the audio Twilio has queued (the caller barged in)."""
    return _text({"event": "clear", "streamSid": stream_sid})


def _text(message: dict[str, Any]) -> str:
    """A message as JSON text (a str: WebSocket text frames, as both peers expect)."""
    return orjson.dumps(message).decode()


def mulaw_ms(b64_payload: str) -> float:
    """Milliseconds of 8 kHz mu-law audio in a base64 payload, without decoding it."""
    size = len(b64_payload)
    padding = b64_payload.endswith("=") + b64_payload.endswith("==")
    return (size * 3 // 4 - padding) / MULAW_BYTES_PER_MS


# ------------------------------------------------------------------ us -> Realtime


def session_update(
    *,
    instructions: str,
    voice: str,
    tools: list[dict[str, Any]],
    transcription_model: str = "gpt-4o-mini-transcribe",
) -> dict[str, Any]:
    """The GA `session.update`: mu-law both ways, server VAD, input transcription, tools."""
    return {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "instructions": instructions,
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": {"model": transcription_model},
                    "turn_detection": {
                        "type": "server_vad",
                        "silence_duration_ms": 500,
                        "create_response": True,
                        "interrupt_response": True,
                    },
                },
                "output": {"format": {"type": "audio/pcmu"}, "voice": voice},
            },
            "tools": tools,
            "tool_choice": "auto",
        },
    }


def audio_append(payload: str) -> str:
    """Caller audio for the model, as Twilio sent it."""
    return _text({"type": "input_audio_buffer.append", "audio": payload})


def function_output(call_id: str, output: dict[str, Any]) -> dict[str, Any]:
    """A tool's result, handed back to the model."""
    return {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": call_id, "output": json.dumps(output)},
    }


def response_create(instructions: str | None = None) -> dict[str, Any]:
    """Ask the model to speak (optionally with one-off instructions)."""
    if instructions:
        return {"type": "response.create", "response": {"instructions": instructions}}
    return {"type": "response.create"}


def response_cancel() -> dict[str, Any]:
    """Stop the reply being generated (the caller interrupted it without speaking)."""
    return {"type": "response.cancel"}


def truncate(item_id: str, audio_end_ms: int) -> dict[str, Any]:
    """Cut an assistant item at what the caller actually heard."""
    return {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": audio_end_ms,
    }


def function_call_item(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """A function call the model made, replayed into a fresh model session."""
    return {
        "type": "conversation.item.create",
        "item": {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments},
    }


def heard_part(text: str, share: float) -> str:
    """The words of `text` heard when `share` of its audio had played (speech runs evenly)."""
    if share >= 1:
        return text
    cut = int(len(text) * max(share, 0.0))
    if cut < len(text) and not text[cut : cut + 1].isspace():
        cut = text.rfind(" ", 0, cut) + 1  # back to the start of the word being spoken
    return text[:cut].rstrip()


def text_message(role: str, text: str) -> dict[str, Any]:
    """A text item replayed into a fresh model session (after a reconnect)."""
    content_type = "output_text" if role == "assistant" else "input_text"
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": role,
            "content": [{"type": content_type, "text": text}],
        },
    }


# ------------------------------------------------------------------ Realtime -> us


def parse_server_event(data: str | bytes) -> dict[str, Any]:
    """A Realtime server event as a dict with a string `type`; ProtocolError otherwise.

    Kept as a plain dict (not the SDK's models): audio deltas arrive ~50 times a second per
    call and need only two fields.
    """
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("not JSON") from exc
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise ProtocolError("event without a type")
    return event


def function_arguments(raw: Any) -> dict[str, Any]:
    """The JSON object of a function call's arguments; ProtocolError when it is not one."""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError) as exc:
        raise ProtocolError("arguments are not JSON") from exc
    if not isinstance(value, dict):
        raise ProtocolError("arguments are not an object")
    return value
