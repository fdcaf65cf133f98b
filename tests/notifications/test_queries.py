"""The dashboard's read helpers filter notifications and list an appointment's messages."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Channel, Notification, NotificationStatus
from core.notifications.delivery import run_once
from core.notifications.queries import backlog, notifications, notifications_for_appointment
from tests.notifications.helpers import book, queue_sms
from tests.services.world import build_world


def test_notifications_filter_by_status_channel_and_recipient(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    appointment_id = book(session_factory, frozen_now, world.patient_id)
    queue_sms(session_factory, frozen_now, world.other_patient_id, 2)  # no consent: cancelled
    run_once(session_factory, frozen_now, providers, config=config)
    with session_factory() as session:

        def list_notifications(
            session: Session, limit: int | None = None, **filters: str | int
        ) -> tuple[list[Notification], int]:
            found = session.scalars(notifications(**filters)).all()  # type: ignore[arg-type]
            return list(found[:limit]), len(found)

        # Two confirmations (sent), two reminders (queued, not due yet), two texts to Sarah.
        page, total = list_notifications(session, limit=2)
        assert (len(page), total) == (2, 6)
        cancelled, total = list_notifications(session, status=NotificationStatus.CANCELLED)
        assert total == 2 and {n.patient_id for n in cancelled} == {world.other_patient_id}
        queued, total = list_notifications(session, status=NotificationStatus.QUEUED)
        assert total == 2 and sorted(n.event for n in queued) == ["reminder_1h", "reminder_24h"]
        texts, total = list_notifications(session, channel=Channel.SMS, patient_id=world.patient_id)
        assert total == 3 and {n.patient_id for n in texts} == {world.patient_id}
        emails, total = list_notifications(session, channel=Channel.EMAIL, recipient_kind="nurse")
        assert total == 1 and emails[0].nurse_id == world.nurse_id
        history = notifications_for_appointment(session, appointment_id)
        assert sorted((n.event, n.channel, n.status) for n in history[:2]) == [
            ("appointment_booked", Channel.EMAIL, NotificationStatus.SENT),
            ("appointment_booked", Channel.SMS, NotificationStatus.SENT),
        ]
        assert [(n.event, n.status) for n in history[2:]] == [
            ("reminder_24h", NotificationStatus.QUEUED),
            ("reminder_1h", NotificationStatus.QUEUED),
        ]


def test_backlog_counts_due_unsent_messages_by_channel_with_the_oldest(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    queue_sms(session_factory, frozen_now - timedelta(minutes=10), world.patient_id, 2)
    queue_sms(session_factory, frozen_now - timedelta(minutes=3), world.patient_id, 1)
    queue_sms(session_factory, frozen_now + timedelta(minutes=5), world.patient_id, 4)  # not due
    with session_factory.begin() as session:
        for row in session.scalars(select(Notification).order_by(Notification.id).limit(1)):
            row.status = NotificationStatus.SENT  # one of the oldest two went out
    with session_factory() as session:
        [sms] = backlog(session, frozen_now)
    assert (sms.channel, sms.due) == (Channel.SMS, 2)
    assert sms.oldest_due == frozen_now - timedelta(minutes=10)
