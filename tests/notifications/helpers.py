"""Small builders shared by the notification tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Appointment, Channel, Notification, NotificationStatus, RecipientKind
from core.services import booking
from core.services.booking import book_appointment
from tests.services.world import ACTOR, local

TUESDAY = date(2025, 3, 4)


def book(
    factory: sessionmaker[Session],
    now: datetime,
    patient_id: int,
    hour: int = 10,
    day: date = TUESDAY,
) -> int:
    """Book a visit and commit; returns its id."""
    with factory() as session:
        appointment = book_appointment(
            session, patient_id=patient_id, start=local(day, hour), actor=ACTOR, now=now
        )
        session.commit()
        return appointment.id


@contextmanager
def reminder_hooks_off() -> Iterator[None]:
    """Run the booking services without their reminder hook (sync_reminders), as before it.

    For tests of the worker's own sweep and safety net, which must create the situations the
    hook now prevents (a visit with no reminders, a cancellation that withdrew nothing).
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(booking, "sync_reminders", lambda session, appointment, now, **_: None)
        yield


def queue_sms(factory: sessionmaker[Session], now: datetime, patient_id: int, count: int) -> None:
    """Queue `count` distinct texts to a patient, due now."""
    with factory() as session:
        session.add_all(
            Notification(
                recipient_kind=RecipientKind.PATIENT,
                patient_id=patient_id,
                channel=Channel.SMS,
                event="test",
                body=f"message {i}",
                status=NotificationStatus.QUEUED,
                send_after=now,
                created_at=now,
            )
            for i in range(count)
        )
        session.commit()


def queue_in_app(factory: sessionmaker[Session], now: datetime, nurse_id: int) -> None:
    """Queue one in-app message to a nurse, due now (no outside channel needed)."""
    with factory() as session:
        session.add(
            Notification(
                recipient_kind=RecipientKind.NURSE,
                nurse_id=nurse_id,
                channel=Channel.IN_APP,
                event="test",
                body="in-app message",
                status=NotificationStatus.QUEUED,
                send_after=now,
                created_at=now,
            )
        )
        session.commit()


def rows(factory: sessionmaker[Session], **where: object) -> list[Notification]:
    """Notifications, optionally filtered by column equality, in id order."""
    with factory() as session:
        query = select(Notification).order_by(Notification.id)
        for column, value in where.items():
            query = query.where(getattr(Notification, column) == value)
        return list(session.scalars(query))


def appointment(factory: sessionmaker[Session], appointment_id: int) -> Appointment:
    """A fresh copy of an appointment."""
    with factory() as session:
        found = session.get(Appointment, appointment_id)
        assert found is not None
        return found
