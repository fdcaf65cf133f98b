"""Twilio message status callbacks: verify the signature, then move the row along.

The HTTP endpoint lives in a web service; this module is the framework-free logic it calls.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from core.db import transaction
from core.models import Channel, Notification, NotificationStatus

log = logging.getLogger(__name__)

# Twilio MessageStatus values and what they mean for our row.
_DELIVERED = {"delivered", "read"}
_FAILED = {"undelivered", "failed", "canceled"}
_SENT = {"sent"}
_IN_FLIGHT = {"accepted", "scheduled", "queued", "sending", "receiving", "received"}
_FINAL = {NotificationStatus.DELIVERED, NotificationStatus.FAILED, NotificationStatus.CANCELLED}


def verify_twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """Whether X-Twilio-Signature matches the full request URL and POST parameters."""
    if not auth_token or not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


@dataclass(frozen=True)
class CallbackResult:
    """The outcome of one callback: `ok` False means refuse it (HTTP 400/404), with why."""

    ok: bool
    outcome: str  # updated | unchanged | unknown message | malformed
    notification_id: int | None = None
    status: str | None = None
    reason: str = ""


def apply_status_callback(
    session: Session, params: Mapping[str, str], now: datetime
) -> CallbackResult:
    """Apply a Twilio status callback to the notification with that MessageSid; flushes only."""
    sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
    if not sid or not status or len(sid) > 64:
        return CallbackResult(False, "malformed", reason="MessageSid and MessageStatus required")
    known = _DELIVERED | _FAILED | _SENT | _IN_FLIGHT
    if status not in known:
        return CallbackResult(False, "malformed", reason=f"unrecognised MessageStatus {status!r}")
    row = session.scalar(
        select(Notification).where(
            Notification.provider_id == sid, Notification.channel == Channel.SMS
        )
    )
    if row is None:
        log.info("status callback for an unknown message sid")
        return CallbackResult(False, "unknown message", reason="no notification has that sid")
    if row.status in _FINAL or status in _IN_FLIGHT:
        # Callbacks can arrive out of order: never move a settled row backwards.
        return CallbackResult(True, "unchanged", row.id, row.status)
    if status in _DELIVERED:
        row.status = NotificationStatus.DELIVERED
        row.delivered_at = now
        row.last_error = None
    elif status in _FAILED:
        code = (params.get("ErrorCode") or "").strip()
        row.status = NotificationStatus.FAILED
        row.last_error = f"twilio reported {status}" + (f" (error {code})" if code else "")
    else:  # sent: confirms a row we might have flagged unknown
        if row.status == NotificationStatus.SENT:
            return CallbackResult(True, "unchanged", row.id, row.status)
        row.status = NotificationStatus.SENT
        row.sent_at = row.sent_at or now
    session.flush()
    log.info("notification %s is %s per status callback", row.id, row.status)
    return CallbackResult(True, "updated", row.id, row.status)


def status_callback_response(
    factory: sessionmaker[Session],
    *,
    auth_token: str,
    url: str,
    params: Mapping[str, str],
    signature: str | None,
    now: datetime,
    allow_unsigned: bool = False,
) -> tuple[int, str]:
    """The whole endpoint minus the framework: check the signature, apply, pick an HTTP status.

    `url` must be the public URL Twilio called (PUBLIC_BASE_URL + path, with any query string).
    Returns (204, "") when applied or unchanged, 403 for a bad signature, 400 for a malformed
    callback and 404 for an unknown message sid.
    """
    signed = verify_twilio_signature(auth_token, url, params, signature)
    if not signed and not allow_unsigned:
        log.warning("status callback refused: bad or missing signature")
        return 403, "invalid signature"
    with transaction(factory) as session:
        result = apply_status_callback(session, params, now)
    if result.ok:
        return 204, ""
    return (404 if result.outcome == "unknown message" else 400), result.reason
