"""Answers kept under an API Idempotency-Key: found for the same request, and forgotten after a
day (their bodies hold PHI), both when looked up and by the worker's sweep."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.models import ApiIdempotentResult, User
from core.notifications.settings import NotifySettings
from core.notifications.worker import Worker
from core.services.api_idempotency import (
    KEEP_ANSWERS_FOR,
    fingerprint,
    keep_answer,
    kept_answer,
)

REQUEST = fingerprint("POST", "/api/v1/patients", '{"first_name": "Ada"}')


def kept_rows(factory: sessionmaker[Session]) -> int:
    """How many answers are kept."""
    with factory() as session:
        return session.scalar(select(func.count()).select_from(ApiIdempotentResult)) or 0


def keep_one(factory: sessionmaker[Session], now: datetime) -> int:
    """A login with one answer kept under "k"; its user id."""
    with factory() as session:
        user = User(email="i@example.test", password_hash="x", role="admin", created_at=now)
        session.add(user)
        session.flush()
        keep_answer(
            session, user_id=user.id, key="k", request=REQUEST, status=201, body="{}", now=now
        )
        session.commit()
        return user.id


def test_an_answer_is_found_for_the_same_request_and_told_apart_from_another(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    user_id = keep_one(session_factory, frozen_now)
    other = fingerprint("POST", "/api/v1/patients", '{"first_name": "Bo"}')

    with session_factory() as session:
        same = kept_answer(session, user_id, "k", REQUEST, now=frozen_now)
        different = kept_answer(session, user_id, "k", other, now=frozen_now)
        unknown = kept_answer(session, user_id, "other-key", REQUEST, now=frozen_now)

    assert same is not None and (same.status, same.body, same.same_request) == (201, "{}", True)
    assert different is not None and not different.same_request
    assert unknown is None


def test_a_day_old_answer_is_forgotten_when_looked_up(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    user_id = keep_one(session_factory, frozen_now)

    with session_factory() as session:
        just_kept = kept_answer(
            session, user_id, "k", REQUEST, now=frozen_now + KEEP_ANSWERS_FOR - timedelta(seconds=1)
        )
        assert just_kept is not None
        assert (
            kept_answer(session, user_id, "k", REQUEST, now=frozen_now + KEEP_ANSWERS_FOR) is None
        )
        session.commit()

    assert kept_rows(session_factory) == 0


def test_the_worker_sweep_forgets_day_old_answers(
    session_factory: sessionmaker[Session], frozen_now: datetime
) -> None:
    keep_one(session_factory, frozen_now)
    worker = Worker(session_factory, {}, NotifySettings())

    worker.sweep(frozen_now + timedelta(hours=1))
    assert kept_rows(session_factory) == 1
    Worker(session_factory, {}, NotifySettings()).sweep(frozen_now + KEEP_ANSWERS_FOR)
    assert kept_rows(session_factory) == 0
