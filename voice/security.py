"""Twilio request signatures, single-use media-stream tokens and the internal bearer token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.request_validator import RequestValidator

from core.config import Settings
from core.security import bearer_token_ok

logger = logging.getLogger(__name__)

STREAM_TOKEN_TTL_SECONDS = 60
MEDIA_STREAM_PATH = "/media-stream"
# An instance name that can be a path segment: letters, digits, dot, dash and underscore.
_ROUTABLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TOKEN_CONTEXT = b"carematix:media-stream-token:v1"
_SIMULATOR_CONTEXT = b"carematix:simulated-twilio:v1"
# Without any configured secret (local development only) tokens are signed with a key that
# lives as long as the process: still unforgeable, just not shared between processes.
_PROCESS_KEY = secrets.token_bytes(32)


def public_url(settings: Settings, path: str, query: str = "") -> str:
    """The URL Twilio used to reach `path`, rebuilt from PUBLIC_BASE_URL (proxies rewrite ours)."""
    url = settings.public_base_url.rstrip("/") + path
    return f"{url}?{query}" if query else url


def stream_path(settings: Settings) -> str:
    """This instance's media stream path: `/media-stream/<VOICE_INSTANCE_NAME>` when the name
    can be a path segment, so a proxy in front of several instances can send each call's
    stream to the instance that answered its webhook (and holds its pre-opened model)."""
    name = settings.voice_instance_name
    if name and _ROUTABLE_NAME.fullmatch(name):
        return f"{MEDIA_STREAM_PATH}/{name}"
    return MEDIA_STREAM_PATH


def is_stream_path(path: str) -> bool:
    """True for `/media-stream` and `/media-stream/<instance>` (any instance's: a stream that a
    proxy sends to another instance is still served, with a model opened for it there)."""
    if path == MEDIA_STREAM_PATH:
        return True
    prefix, _, name = path.rpartition("/")
    return prefix == MEDIA_STREAM_PATH and bool(_ROUTABLE_NAME.fullmatch(name))


def media_stream_url(settings: Settings, path: str | None = None) -> str:
    """The wss:// URL of the media stream at `path` (default: this instance's), as written
    into the TwiML and signed by Twilio."""
    parts = urlsplit(settings.public_base_url.rstrip("/"))
    stream = path if path is not None else stream_path(settings)
    return urlunsplit(("wss", parts.netloc, parts.path + stream, "", ""))


def unsigned_allowed(settings: Settings) -> bool:
    """True only in local development: no auth token and the explicit switch set."""
    return not settings.twilio_auth_token and settings.allow_unsigned_webhooks


def simulator_signing_token(settings: Settings) -> str:
    """The secret the built-in simulator signs its calls with, derived from SECRET_KEY (or
    INTERNAL_API_TOKEN); empty when there is none.

    Twilio never has it, so a request signed with it comes from our own processes: that is
    what marks a call as simulated when Twilio is configured too.
    """
    base = settings.secret_key or settings.internal_api_token
    if not base:
        return ""
    return hmac.new(base.encode(), _SIMULATOR_CONTEXT, hashlib.sha256).hexdigest()


def signing_token(settings: Settings, *, simulated: bool = False) -> str:
    """The secret Twilio-style signatures are checked with: TWILIO_AUTH_TOKEN.

    In simulated mode (no Twilio account) the simulator's secret stands in, so its calls are
    signed like Twilio's without any third-party credential. Empty when there is none.
    """
    if settings.twilio_auth_token:
        return settings.twilio_auth_token
    return simulator_signing_token(settings) if simulated else ""


def _signature_valid(token: str, url: str, params: Mapping[str, Any], signature: str) -> bool:
    validator = RequestValidator(token)
    try:
        return bool(validator.validate(url, params, signature))
    except Exception:  # a malformed URL or params is simply not a valid signature
        return False


def twilio_signature_ok(
    settings: Settings,
    url: str,
    params: Mapping[str, Any],
    signature: str | None,
    *,
    simulated: bool = False,
) -> bool:
    """Whether `signature` is Twilio's for `url` and `params`; refuses all without a token.

    With no signing token the request is accepted only when ALLOW_UNSIGNED_WEBHOOKS is set.
    """
    token = signing_token(settings, simulated=simulated)
    if not token:
        if settings.allow_unsigned_webhooks:
            logger.warning("UNSIGNED Twilio request accepted (ALLOW_UNSIGNED_WEBHOOKS is set)")
            return True
        logger.warning("Twilio request refused: TWILIO_AUTH_TOKEN is not configured")
        return False
    if not signature:
        return False
    return _signature_valid(token, url, params, signature)


def simulator_signature_ok(
    settings: Settings, url: str, params: Mapping[str, Any], signature: str | None
) -> bool:
    """Whether `signature` was made with the simulator's secret (see simulator_signing_token)."""
    token = simulator_signing_token(settings)
    return bool(token and signature) and _signature_valid(token, url, params, signature or "")


def _token_key(settings: Settings) -> bytes:
    secret = settings.secret_key or settings.twilio_auth_token
    base = secret.encode() if secret else _PROCESS_KEY
    return hmac.new(base, _TOKEN_CONTEXT, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_nonce() -> str:
    """A random nonce for one stream token (stored in Call.stream_nonce)."""
    return secrets.token_urlsafe(24)


def make_stream_token(
    settings: Settings, *, call_sid: str, nonce: str, now: float | None = None
) -> str:
    """A token binding the media stream to `call_sid`, valid for a minute and (with the
    nonce stored on the call) usable once."""
    issued = int(time.time() if now is None else now)
    body = _b64(
        json.dumps(
            {"sid": call_sid, "n": nonce, "exp": issued + STREAM_TOKEN_TTL_SECONDS},
            separators=(",", ":"),
        ).encode()
    )
    mac = hmac.new(_token_key(settings), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


@dataclass(frozen=True)
class StreamClaim:
    """What a valid stream token says: which call, and the nonce to consume."""

    call_sid: str
    nonce: str


def read_stream_token(
    settings: Settings, token: object, *, call_sid: str, now: float | None = None
) -> StreamClaim | None:
    """The token's claim if it is authentic, unexpired and for `call_sid`; otherwise None.

    Single use is enforced by the caller, against the database (consume_stream_token).
    """
    if not isinstance(token, str) or len(token) > 512 or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    expected = hmac.new(_token_key(settings), body.encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_unb64(mac), expected):
            return None
        claim = json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    if not isinstance(claim, dict):
        return None
    sid, nonce, expires = claim.get("sid"), claim.get("n"), claim.get("exp")
    if not isinstance(sid, str) or not isinstance(nonce, str) or not isinstance(expires, int):
        return None
    current = time.time() if now is None else now
    if current >= expires or not hmac.compare_digest(sid, call_sid):
        return None
    return StreamClaim(call_sid=sid, nonce=nonce)


def bearer_ok(settings: Settings, authorization: str | None) -> bool:
    """Whether the Authorization header carries INTERNAL_API_TOKEN; never with no token set."""
    return bearer_token_ok(settings.internal_api_token, authorization)
