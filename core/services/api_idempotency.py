"""Answers the API gave under an Idempotency-Key, kept so a retried write is not done twice."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import ApiIdempotentResult
from core.scheduling import require_aware


@dataclass(frozen=True)
class KeptAnswer:
    """A stored answer, and whether it was given to the same request."""

    status: int
    body: str
    same_request: bool


def fingerprint(method: str, path: str, body: str) -> str:
    """What identifies a request for replay: its method, path and validated body."""
    return hashlib.sha256(f"{method} {path}\n{body}".encode()).hexdigest()


def kept_answer(session: Session, user_id: int, key: str, request: str) -> KeptAnswer | None:
    """The answer this login got under `key`, if any; `request` is the request's fingerprint."""
    row = session.scalar(
        select(ApiIdempotentResult).where(
            ApiIdempotentResult.user_id == user_id, ApiIdempotentResult.key == key
        )
    )
    if row is None:
        return None
    return KeptAnswer(status=row.status, body=row.body, same_request=row.fingerprint == request)


def keep_answer(
    session: Session,
    *,
    user_id: int,
    key: str,
    request: str,
    status: int,
    body: str,
    now: datetime,
) -> None:
    """Store the answer given under `key` (flushed: a concurrent twin then fails its insert)."""
    session.add(
        ApiIdempotentResult(
            user_id=user_id,
            key=key,
            fingerprint=request,
            status=status,
            body=body,
            created_at=require_aware(now, "now"),
        )
    )
    session.flush()
