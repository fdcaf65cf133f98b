"""Staff logins: create, deactivate, reset passwords, link nurse logins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import ValidationError
from core.models import Nurse, Role, User
from core.scheduling import require_aware
from core.security import hash_password
from core.services.common import (
    Actor,
    audit,
    check_password,
    field_changes,
    get_or_raise,
    normalise_email,
)
from core.services.staff_sessions import EndReason, end_all_sessions


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    role: str,
    actor: Actor,
    now: datetime,
    nurse_id: int | None = None,
) -> User:
    """Add a staff login; a nurse login must be linked to a nurse."""
    now = require_aware(now, "now")
    address = normalise_email(email, required=True)
    assert address is not None
    if role not in {r.value for r in Role}:
        raise ValidationError("The role must be admin, coordinator or nurse.", field="role")
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise ValidationError("A login with that email already exists.", field="email")
    if role == Role.NURSE and nurse_id is None:
        raise ValidationError("A nurse login must be linked to a nurse.", field="nurse_id")
    if nurse_id is not None:
        _check_nurse_link(session, nurse_id, None)
    user = User(
        email=address,
        password_hash=hash_password(check_password(password)),
        role=role,
        nurse_id=nurse_id,
        active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    audit(
        session,
        actor=actor,
        action="user.created",
        entity_type="user",
        entity_id=user.id,
        now=now,
        role=role,
    )
    return user


def _check_nurse_link(session: Session, nurse_id: int, user_id: int | None) -> None:
    get_or_raise(session, Nurse, nurse_id, "nurse")
    taken = session.scalar(select(User.id).where(User.nurse_id == nurse_id))
    if taken is not None and taken != user_id:
        raise ValidationError("That nurse already has a login.", field="nurse_id")


def set_password(
    session: Session, user_id: int, password: str, *, actor: Actor, now: datetime
) -> User:
    """Reset a login's password and clear any lockout."""
    user = get_or_raise(session, User, user_id, "user")
    user.password_hash = hash_password(check_password(password))
    user.failed_logins = 0
    user.locked_until = None
    session.flush()
    # Whoever knew the old password may be signed in with it: every session ends.
    end_all_sessions(session, user.id, now=now, reason=EndReason.PASSWORD_RESET)
    audit(
        session,
        actor=actor,
        action="user.password_reset",
        entity_type="user",
        entity_id=user.id,
        now=now,
    )
    return user


def set_active(
    session: Session, user_id: int, active: bool, *, actor: Actor, now: datetime
) -> User:
    """Deactivate or reactivate a login."""
    user = get_or_raise(session, User, user_id, "user")
    if not active and actor.user_id == user.id:
        raise ValidationError("You cannot deactivate your own login.", field="active")
    user.active = active
    session.flush()
    if not active:
        end_all_sessions(session, user.id, now=now, reason=EndReason.DEACTIVATED)
    audit(
        session,
        actor=actor,
        action="user.activated" if active else "user.deactivated",
        entity_type="user",
        entity_id=user.id,
        now=now,
    )
    return user


def link_nurse(
    session: Session, user_id: int, nurse_id: int | None, *, actor: Actor, now: datetime
) -> User:
    """Link a login to a nurse (or unlink a non-nurse login)."""
    user = get_or_raise(session, User, user_id, "user")
    if nurse_id is None and user.role == Role.NURSE:
        raise ValidationError("A nurse login must stay linked to a nurse.", field="nurse_id")
    if nurse_id is not None:
        _check_nurse_link(session, nurse_id, user.id)
    before = user.nurse_id
    user.nurse_id = nurse_id
    session.flush()
    audit(
        session,
        actor=actor,
        action="user.nurse_linked",
        entity_type="user",
        entity_id=user.id,
        now=now,
        nurse_id=nurse_id,
        changes=field_changes({"nurse_id": before}, {"nurse_id": nurse_id}),
    )
    return user
