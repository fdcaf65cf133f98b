"""Read helpers for the dashboard's notifications page and each appointment's history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core.models import Notification, NotificationStatus


@dataclass(frozen=True)
class Backlog:
    """Messages of one channel that are due and not yet sent."""

    channel: str
    due: int
    oldest_due: datetime


def notifications(
    *,
    status: str | None = None,
    channel: str | None = None,
    recipient_kind: str | None = None,
    event: str | None = None,
    patient_id: int | None = None,
    nurse_id: int | None = None,
) -> Select[Notification]:
    """Notifications matching every filter given, newest first."""
    filters = [
        column == value
        for column, value in (
            (Notification.status, status),
            (Notification.channel, channel),
            (Notification.recipient_kind, recipient_kind),
            (Notification.event, event),
            (Notification.patient_id, patient_id),
            (Notification.nurse_id, nurse_id),
        )
        if value is not None
    ]
    return (
        select(Notification)
        .where(*filters)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
    )


def notifications_for_appointment(session: Session, appointment_id: int) -> list[Notification]:
    """What was sent (or is queued) about one appointment, oldest first."""
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.appointment_id == appointment_id)
            .order_by(Notification.send_after, Notification.id)
        )
    )


def notification_events(session: Session) -> list[str]:
    """The distinct event names present, sorted (for the dashboard's event filter)."""
    return list(session.scalars(select(Notification.event).distinct().order_by(Notification.event)))


def backlog(session: Session, now: datetime) -> list[Backlog]:
    """Due messages still queued or being sent, by channel, with the oldest one's due time."""
    rows = session.execute(
        select(Notification.channel, func.count(), func.min(Notification.send_after))
        .where(
            Notification.status.in_([NotificationStatus.QUEUED, NotificationStatus.SENDING]),
            Notification.send_after <= now,
        )
        .group_by(Notification.channel)
        .order_by(Notification.channel)
    )
    return [Backlog(channel, due, oldest) for channel, due, oldest in rows]
