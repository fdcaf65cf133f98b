"""Pure wire-protocol logic: Twilio frame parsing, Realtime events, stream tokens. No sockets."""

from __future__ import annotations

import base64
import dataclasses
import json
import time

import pytest

from core.config import Settings
from tests.voice.fakes import validate_client_event
from voice import protocol
from voice.protocol import Dtmf, Mark, Media, ProtocolError, Start, Stop, parse_twilio
from voice.security import (
    bearer_ok,
    is_stream_path,
    make_stream_token,
    media_stream_url,
    public_url,
    read_stream_token,
    stream_path,
    twilio_signature_ok,
)
from voice.tools import TOOL_DEFINITIONS

SETTINGS = Settings(
    database_url="sqlite://",
    secret_key="k",
    public_base_url="https://voice.example.test",
    twilio_auth_token="tok",
    internal_api_token="internal",
)


def test_twilio_frames_parse_into_typed_events() -> None:
    start = {
        "event": "start",
        "streamSid": "MZ1",
        "start": {"streamSid": "MZ1", "callSid": "CA1", "customParameters": {"token": "t"}},
    }
    assert parse_twilio(json.dumps(start)) == Start("MZ1", "CA1", {"token": "t"})
    media = {"event": "media", "media": {"payload": "AAAA", "timestamp": "40"}}
    assert parse_twilio(json.dumps(media)) == Media("AAAA", 40)
    assert parse_twilio('{"event":"mark","mark":{"name":"a1"}}') == Mark("a1")
    assert parse_twilio('{"event":"dtmf","dtmf":{"digit":"0"}}') == Dtmf("0")
    assert parse_twilio('{"event":"stop","stop":{}}') == Stop()


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[]",
        '{"event":"media"}',
        '{"event":"media","media":{"payload":5}}',
        '{"event":"mark","mark":{}}',
        '{"event":"start","start":{"streamSid":"MZ"}}',
        '{"event":"bogus"}',
        '{"event":"media","media":{"payload":"' + "A" * 70_000 + '"}}',
    ],
)
def test_malformed_or_oversized_twilio_frames_are_refused(frame: str) -> None:
    with pytest.raises(ProtocolError):
        parse_twilio(frame)


def test_mulaw_duration_is_counted_from_base64_without_decoding() -> None:
    for size in (1, 2, 3, 160, 161, 800):
        payload = base64.b64encode(b"\xff" * size).decode()
        assert protocol.mulaw_ms(payload) == size / 8


def test_every_client_event_the_bridge_builds_matches_the_sdk_types() -> None:
    events = [
        protocol.session_update(instructions="hi", voice="marin", tools=TOOL_DEFINITIONS),
        json.loads(protocol.audio_append(base64.b64encode(b"\xff" * 160).decode())),
        protocol.function_output("call_1", {"ok": True}),
        protocol.response_create(),
        protocol.response_create("Say goodbye."),
        protocol.truncate("item_1", 300),
        protocol.text_message("assistant", "Hello"),
        protocol.text_message("user", "Hi"),
        protocol.text_message("system", "Caller pressed 0"),
        protocol.function_call_item("call_1", "list_appointments", "{}"),
        protocol.response_cancel(),
    ]
    for event in events:
        validate_client_event(json.dumps(event))


def test_the_heard_part_of_an_answer_ends_at_a_word_boundary() -> None:
    text = "You have two visits next week."
    assert protocol.heard_part(text, 1.0) == text
    assert protocol.heard_part(text, 0.5) == "You have two"  # 15 characters: inside "visits"
    assert protocol.heard_part(text, 0.3) == "You have"
    assert protocol.heard_part(text, 0.0) == ""


def test_the_validator_catches_beta_names_and_typos() -> None:
    beta = protocol.session_update(instructions="hi", voice="marin", tools=[])
    beta["session"]["audio"]["output"]["format"] = {"type": "g711_ulaw"}
    typo = protocol.session_update(instructions="hi", voice="marin", tools=[])
    typo["session"]["audio"]["input"]["turn_detectoin"] = {"type": "server_vad"}
    for event in (beta, typo, {"type": "response.audio.delta"}):
        with pytest.raises(ValueError):
            validate_client_event(json.dumps(event))


def test_stream_tokens_are_bound_to_the_call_and_expire_within_a_minute() -> None:
    now = time.time()
    token = make_stream_token(SETTINGS, call_sid="CA1", nonce="n1", now=now)
    claim = read_stream_token(SETTINGS, token, call_sid="CA1", now=now + 59)
    assert claim is not None and (claim.call_sid, claim.nonce) == ("CA1", "n1")
    assert read_stream_token(SETTINGS, token, call_sid="CA1", now=now + 60) is None
    assert read_stream_token(SETTINGS, token, call_sid="CA2", now=now) is None
    body, mac = token.split(".")
    assert read_stream_token(SETTINGS, body + "." + mac[::-1], call_sid="CA1", now=now) is None
    other_key = Settings(database_url="sqlite://", secret_key="other")
    assert read_stream_token(other_key, token, call_sid="CA1", now=now) is None
    for junk in (None, "", "a.b.c", "x" * 600, 5):
        assert read_stream_token(SETTINGS, junk, call_sid="CA1", now=now) is None


def test_urls_are_rebuilt_from_the_public_base_url() -> None:
    assert public_url(SETTINGS, "/incoming-call") == "https://voice.example.test/incoming-call"
    assert public_url(SETTINGS, "/x", "a=1") == "https://voice.example.test/x?a=1"
    assert media_stream_url(SETTINGS) == "wss://voice.example.test/media-stream"


def test_a_routable_instance_name_is_in_the_stream_path() -> None:
    named = dataclasses.replace(SETTINGS, public_base_url="https://v.test/base")
    for name, path in [
        ("", "/media-stream"),
        ("voice-2", "/media-stream/voice-2"),
        ("eu.voice_1", "/media-stream/eu.voice_1"),
        ("host:8001", "/media-stream"),  # not a path segment: recovery only, no routing
        ("a/b", "/media-stream"),
        ("x" * 65, "/media-stream"),
    ]:
        settings = dataclasses.replace(named, voice_instance_name=name)
        assert stream_path(settings) == path
        assert media_stream_url(settings) == "wss://v.test/base" + path
        assert is_stream_path(path)
    assert (
        media_stream_url(named, "/media-stream/voice-9") == "wss://v.test/base/media-stream/voice-9"
    )
    for other in ("/media-stream/", "/media-stream/a/b", "/media-streams", "/media-stream/.x", "/"):
        assert not is_stream_path(other)


def test_signatures_are_required_unless_explicitly_allowed() -> None:
    from twilio.request_validator import RequestValidator

    url, params = "https://voice.example.test/incoming-call", {"CallSid": "CA1"}
    good = RequestValidator("tok").compute_signature(url, params)
    assert twilio_signature_ok(SETTINGS, url, params, good)
    assert not twilio_signature_ok(SETTINGS, url, {"CallSid": "CA2"}, good)
    assert not twilio_signature_ok(SETTINGS, url, params, None)
    no_token = Settings(database_url="sqlite://", secret_key="k")
    assert not twilio_signature_ok(no_token, url, params, good)
    dev = Settings(database_url="sqlite://", secret_key="k", allow_unsigned_webhooks=True)
    assert twilio_signature_ok(dev, url, params, None)


def test_the_internal_bearer_token_is_compared_exactly() -> None:
    assert bearer_ok(SETTINGS, "Bearer internal")
    assert not bearer_ok(SETTINGS, "Bearer internal2")
    assert not bearer_ok(SETTINGS, "internal")
    assert not bearer_ok(Settings(database_url="sqlite://", secret_key="k"), "Bearer ")


def test_simulated_mode_signs_with_a_key_derived_from_the_secret_key() -> None:
    from voice.security import signing_token

    bare = Settings(database_url="sqlite://", secret_key="k")
    derived = signing_token(bare, simulated=True)
    assert derived and derived != "k"
    assert signing_token(bare) == ""
    assert signing_token(SETTINGS, simulated=True) == "tok"  # a real token always wins
    assert signing_token(Settings(database_url="sqlite://", secret_key=""), simulated=True) == ""
