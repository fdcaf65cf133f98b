"""The record of appointments' status changes: written with each change, read for undo."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.appointment_status import NOTE_MAX_LENGTH, undo_refusal
from core.errors import ValidationError
from core.models import Appointment, StatusChange
from core.services.common import Actor


def check_note(note: str | None) -> str:
    """A trimmed note of at most NOTE_MAX_LENGTH characters, or a ValidationError."""
    text = (note or "").strip()
    if len(text) > NOTE_MAX_LENGTH:
        raise ValidationError(
            f"The note is too long ({NOTE_MAX_LENGTH} characters at most).", field="note"
        )
    return text


def record_status_change(
    session: Session,
    appointment: Appointment,
    from_status: str,
    *,
    note: str,
    actor: Actor,
    now: datetime,
) -> StatusChange:
    """Write the row that says who changed the visit's status, when, and with which note."""
    change = StatusChange(
        appointment_id=appointment.id,
        from_status=from_status,
        to_status=appointment.status,
        note=note,
        actor_user_id=actor.user_id,
        actor=actor.name,
        at=now,
    )
    session.add(change)
    session.flush()
    return change


def latest_change(session: Session, appointment_id: int) -> StatusChange | None:
    """The appointment's most recent status change, undone or not."""
    return session.scalars(
        select(StatusChange)
        .where(StatusChange.appointment_id == appointment_id)
        .order_by(StatusChange.at.desc(), StatusChange.id.desc())
        .limit(1)
    ).first()


def undoable_change(
    session: Session, appointment: Appointment, now: datetime
) -> StatusChange | None:
    """The change an undo would take back right now, if there is one."""
    change = latest_change(session, appointment.id)
    if change is None:
        return None
    refusal = undo_refusal(
        current=appointment.status,
        changed_to=change.to_status,
        changed_at=change.at,
        undone=change.undone_at is not None,
        now=now,
    )
    return change if refusal is None else None
