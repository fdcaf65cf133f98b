"""Dashboard sessions kept on the server: started at sign-in, ended by sign-out, deactivation
or a password reset, and expired when idle or too old. The browser holds only a random token;
the database holds its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from core.db import AnySelect
from core.models import Nurse, StaffSession, User
from core.scheduling import require_aware

# Noting every request would turn every page view into a write (on SQLite, the database's write
# lock); a minute is precise enough for a 30-minute idle timeout.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
MAX_TOKEN_LENGTH = 100


class EndReason:
    """Why a session ended (stored in `end_reason`)."""

    SIGNED_OUT = "signed_out"
    IDLE = "idle"
    EXPIRED = "expired"
    DEACTIVATED = "deactivated"
    PASSWORD_RESET = "password_reset"


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lasts: idle time allowed, and its whole lifetime."""

    idle_timeout: timedelta = timedelta(minutes=30)
    max_lifetime: timedelta = timedelta(hours=12)


def hash_session_token(token: str) -> str:
    """The SHA-256 hex digest under which a session token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(session: Session, user_id: int, *, now: datetime) -> str:
    """A new session for the login; its token (returned once, never stored)."""
    now = require_aware(now, "now")
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            token_hash=hash_session_token(token),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
        )
    )
    session.flush()
    return token


# What every signed-in request reads: the session and its login in one statement, columns only.
SESSION_WITH_USER: AnySelect = (
    select(
        StaffSession.id.label("session_id"),
        StaffSession.created_at,
        StaffSession.last_seen_at,
        User.id,
        User.email,
        User.role,
        User.nurse_id,
        User.active,
        Nurse.time_zone,
    )
    .join(User, User.id == StaffSession.user_id)
    .outerjoin(Nurse, Nurse.id == User.nurse_id)
    .where(
        StaffSession.token_hash == bindparam("token_hash"),
        StaffSession.ended_at.is_(None),
    )
)


def expiry(
    created_at: datetime, last_seen_at: datetime, now: datetime, policy: SessionPolicy
) -> str | None:
    """Why a session seen at `now` has expired (an EndReason), or None if it is still good."""
    if now - created_at >= policy.max_lifetime:
        return EndReason.EXPIRED
    if now - last_seen_at >= policy.idle_timeout:
        return EndReason.IDLE
    return None


def needs_touch(last_seen_at: datetime, now: datetime) -> bool:
    """Whether the session's last-seen time is stale enough to write again."""
    return now - last_seen_at >= LAST_SEEN_RESOLUTION


def touch(session: Session, session_id: int, *, now: datetime) -> None:
    """The session was used at `now`."""
    session.execute(
        update(StaffSession)
        .where(StaffSession.id == session_id, StaffSession.ended_at.is_(None))
        .values(last_seen_at=require_aware(now, "now"))
    )


def end_session(session: Session, session_id: int, *, now: datetime, reason: str) -> None:
    """End one session (idempotently)."""
    session.execute(
        update(StaffSession)
        .where(StaffSession.id == session_id, StaffSession.ended_at.is_(None))
        .values(ended_at=require_aware(now, "now"), end_reason=reason)
    )


def end_all_sessions(session: Session, user_id: int, *, now: datetime, reason: str) -> int:
    """End every open session of a login; how many were open."""
    result = session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.ended_at.is_(None))
        .values(ended_at=require_aware(now, "now"), end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
