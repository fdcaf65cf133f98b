"""Bearer tokens for the REST API: created per staff login, stored hashed, revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationError
from core.models import ApiToken, User
from core.scheduling import require_aware
from core.services.common import Actor, audit, get_or_raise

TOKEN_PREFIX = "cmx_"
PREFIX_LENGTH = 12
MAX_TOKEN_LENGTH = 200
# Writing last_used_at on every request would turn every read into a write (and on SQLite take
# the database's write lock); once a minute is precise enough for "is this token still used?".
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(plaintext: str) -> str:
    """The SHA-256 hex digest under which a token is stored and looked up."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def create_token(
    session: Session, user_id: int, name: str, actor: Actor, now: datetime
) -> tuple[ApiToken, str]:
    """A new token for the login; the plaintext is returned once and never stored."""
    now = require_aware(now, "now")
    label = (name or "").strip()
    if len(label) > 100:
        raise ValidationError("The token name is too long (100 characters at most).", field="name")
    user = get_or_raise(session, User, user_id, "user")
    if not user.active:
        raise ValidationError("That login is deactivated; it cannot get tokens.", field="user_id")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=label,
        token_hash=hash_token(plaintext),
        prefix=plaintext[:PREFIX_LENGTH],
        created_at=now,
    )
    session.add(token)
    session.flush()
    audit(
        session,
        actor=actor,
        action="api_token.created",
        entity_type="api_token",
        entity_id=token.id,
        now=now,
        user_id=user.id,
    )
    return token, plaintext


def authenticate(session: Session, plaintext: str, now: datetime) -> User | None:
    """The active login owning this unrevoked token (its last use noted), or None."""
    now = require_aware(now, "now")
    if not plaintext or len(plaintext) > MAX_TOKEN_LENGTH:
        return None
    token = session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(plaintext), ApiToken.revoked_at.is_(None)
        )
    )
    if token is None:
        return None
    user = token.user
    if not user.active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.flush()
    return user


def revoke(
    session: Session,
    token_id: int,
    *,
    actor: Actor,
    now: datetime,
    owner_id: int | None = None,
) -> ApiToken:
    """Revoke a token (idempotently); with `owner_id`, only that login's own token."""
    now = require_aware(now, "now")
    token = session.get(ApiToken, token_id)
    if token is None or (owner_id is not None and token.user_id != owner_id):
        raise NotFound(f"No API token with id {token_id}.", field="token_id")
    if token.revoked_at is None:
        token.revoked_at = now
        session.flush()
        audit(
            session,
            actor=actor,
            action="api_token.revoked",
            entity_type="api_token",
            entity_id=token.id,
            now=now,
            user_id=token.user_id,
        )
    return token


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    """The login's tokens, newest first (revoked ones included, marked by revoked_at)."""
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user_id)
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        )
    )
