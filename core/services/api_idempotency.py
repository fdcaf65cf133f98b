"""Answers the API gave under an Idempotency-Key, kept so a retried write is not done twice."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.models import ApiIdempotentResult
from core.scheduling import require_aware

# Long enough for any client's retries; the answers hold PHI, so none is kept for good.
KEEP_ANSWERS_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class KeptAnswer:
    """A stored answer, and whether it was given to the same request."""

    status: int
    body: str
    same_request: bool


def fingerprint(method: str, path: str, body: str) -> str:
    """What identifies a request for replay: its method, path and validated body."""
    return hashlib.sha256(f"{method} {path}\n{body}".encode()).hexdigest()


def kept_answer(
    session: Session, user_id: int, key: str, request: str, *, now: datetime
) -> KeptAnswer | None:
    """The answer this login got under `key` within KEEP_ANSWERS_FOR, if any; `request` is the
    request's fingerprint. An older one is forgotten, so the key is free again."""
    row = session.scalar(
        select(ApiIdempotentResult).where(
            ApiIdempotentResult.user_id == user_id, ApiIdempotentResult.key == key
        )
    )
    if row is None:
        return None
    if row.created_at <= require_aware(now, "now") - KEEP_ANSWERS_FOR:
        session.delete(row)
        session.flush()
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


def forget_old_answers(session: Session, now: datetime) -> int:
    """Delete the answers kept longer than KEEP_ANSWERS_FOR; how many went."""
    cutoff = require_aware(now, "now") - KEEP_ANSWERS_FOR
    result = session.execute(
        delete(ApiIdempotentResult).where(ApiIdempotentResult.created_at <= cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)
