"""API tokens: shown once, stored hashed, authenticate their active owner, revocable."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationError
from core.models import ApiToken, AuditEvent, User
from core.services.api_tokens import (
    authenticate,
    create_token,
    hash_token,
    list_tokens,
    revoke,
)
from core.services.common import Actor

ACTOR = Actor.cli()


def _user(session: Session, now: datetime, email: str = "c@example.test", **extra: object) -> User:
    user = User(email=email, password_hash="unused", role="coordinator", created_at=now, **extra)
    session.add(user)
    session.flush()
    return user


def test_create_token_stores_only_the_hash_and_a_prefix(
    session: Session, frozen_now: datetime
) -> None:
    user = _user(session, frozen_now)

    token, plaintext = create_token(session, user.id, "EHR sync", ACTOR, frozen_now)

    stored = session.scalars(select(ApiToken)).one()
    assert stored.token_hash == hash_token(plaintext) != plaintext
    assert len(stored.token_hash) == 64
    assert plaintext.startswith("cmx_") and len(plaintext) > 40
    assert stored.prefix == plaintext[:12]
    assert stored.name == "EHR sync"
    assert token.id == stored.id
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "api_token.created")
    ).one()
    assert plaintext not in str(event.details)


def test_two_tokens_are_different(session: Session, frozen_now: datetime) -> None:
    user = _user(session, frozen_now)

    _, first = create_token(session, user.id, "", ACTOR, frozen_now)
    _, second = create_token(session, user.id, "", ACTOR, frozen_now)

    assert first != second


def test_authenticate_returns_the_owner_and_notes_the_last_use(
    session: Session, frozen_now: datetime
) -> None:
    user = _user(session, frozen_now)
    token, plaintext = create_token(session, user.id, "", ACTOR, frozen_now)
    later = frozen_now + timedelta(minutes=5)

    assert authenticate(session, plaintext, later) is user
    assert token.last_used_at == later


def test_last_use_is_written_at_most_once_a_minute(session: Session, frozen_now: datetime) -> None:
    user = _user(session, frozen_now)
    token, plaintext = create_token(session, user.id, "", ACTOR, frozen_now)
    authenticate(session, plaintext, frozen_now)

    authenticate(session, plaintext, frozen_now + timedelta(seconds=30))

    assert token.last_used_at == frozen_now


@pytest.mark.parametrize("candidate", ["", "cmx_wrong", "x" * 5000])
def test_unknown_or_absurd_tokens_authenticate_nobody(
    session: Session, frozen_now: datetime, candidate: str
) -> None:
    user = _user(session, frozen_now)
    create_token(session, user.id, "", ACTOR, frozen_now)

    assert authenticate(session, candidate, frozen_now) is None


def test_a_revoked_token_no_longer_authenticates(session: Session, frozen_now: datetime) -> None:
    user = _user(session, frozen_now)
    token, plaintext = create_token(session, user.id, "", ACTOR, frozen_now)

    revoke(session, token.id, actor=ACTOR, now=frozen_now)

    assert token.revoked_at == frozen_now
    assert authenticate(session, plaintext, frozen_now) is None


def test_revoking_twice_keeps_the_first_time(session: Session, frozen_now: datetime) -> None:
    user = _user(session, frozen_now)
    token, _ = create_token(session, user.id, "", ACTOR, frozen_now)
    revoke(session, token.id, actor=ACTOR, now=frozen_now)

    revoke(session, token.id, actor=ACTOR, now=frozen_now + timedelta(hours=1))

    assert token.revoked_at == frozen_now


def test_a_user_cannot_revoke_someone_elses_token(session: Session, frozen_now: datetime) -> None:
    owner = _user(session, frozen_now)
    other = _user(session, frozen_now, email="other@example.test")
    token, plaintext = create_token(session, owner.id, "", ACTOR, frozen_now)

    with pytest.raises(NotFound):
        revoke(session, token.id, actor=Actor.user(other.id), now=frozen_now, owner_id=other.id)

    assert authenticate(session, plaintext, frozen_now) is owner


def test_a_deactivated_login_cannot_use_or_get_tokens(
    session: Session, frozen_now: datetime
) -> None:
    user = _user(session, frozen_now)
    _, plaintext = create_token(session, user.id, "", ACTOR, frozen_now)

    user.active = False

    assert authenticate(session, plaintext, frozen_now) is None
    with pytest.raises(ValidationError):
        create_token(session, user.id, "", ACTOR, frozen_now)


def test_token_names_are_limited_and_users_must_exist(
    session: Session, frozen_now: datetime
) -> None:
    user = _user(session, frozen_now)

    with pytest.raises(ValidationError):
        create_token(session, user.id, "n" * 101, ACTOR, frozen_now)
    with pytest.raises(NotFound):
        create_token(session, 999, "", ACTOR, frozen_now)


def test_list_tokens_shows_the_users_tokens_newest_first(
    session: Session, frozen_now: datetime
) -> None:
    user = _user(session, frozen_now)
    first, _ = create_token(session, user.id, "first", ACTOR, frozen_now)
    second, _ = create_token(session, user.id, "second", ACTOR, frozen_now + timedelta(days=1))

    assert [t.id for t in list_tokens(session, user.id)] == [second.id, first.id]
