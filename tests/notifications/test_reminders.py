"""Patient reminders follow their appointment; nurses get one morning agenda a day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from core.models import Appointment, AppointmentStatus, Channel, NotificationStatus, Role, User
from core.notifications.delivery import run_once
from core.notifications.reminders import (
    queue_daily_agendas,
    queue_upcoming_reminders,
    schedule_reminders,
    sync_reminders,
    withdraw_reminders,
)
from core.services.booking import cancel_appointment, reschedule_appointment
from tests.notifications.helpers import TUESDAY, book, reminder_hooks_off, rows
from tests.services.world import ACTOR, build_world, local

VISIT = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York


def _reminders(factory, **where):
    return [r for r in rows(factory, **where) if r.event.startswith("reminder")]


def _schedule(factory, appointment_id: int, now: datetime) -> None:
    with factory() as session:
        appointment = session.get(Appointment, appointment_id)
        schedule_reminders(session, appointment, now)
        session.commit()


def test_a_booking_gets_reminders_24_hours_and_1_hour_before(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    appointment_id = book(session_factory, frozen_now, world.patient_id)
    _schedule(session_factory, appointment_id, frozen_now)
    _schedule(session_factory, appointment_id, frozen_now)  # idempotent

    reminders = _reminders(session_factory)
    assert [(r.event, r.send_after, r.channel) for r in reminders] == [
        ("reminder_24h", VISIT - timedelta(hours=24), Channel.SMS),
        ("reminder_1h", VISIT - timedelta(hours=1), Channel.SMS),
    ]
    assert all(r.appointment_id == appointment_id for r in reminders)
    assert "tomorrow" in reminders[0].body and "nurse Alice" in reminders[0].body
    assert "Diabetes" not in reminders[0].body


def test_reminders_already_past_are_skipped(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    late = VISIT - timedelta(hours=5)
    appointment_id = book(session_factory, late, world.patient_id)  # booked 5 hours ahead
    assert [r.event for r in _reminders(session_factory)] == ["reminder_1h"]
    with session_factory() as session:
        appointment = session.get(Appointment, appointment_id)
        assert schedule_reminders(session, appointment, late) == []  # nothing new
        assert schedule_reminders(session, appointment, VISIT - timedelta(minutes=30)) == []
        session.commit()
    assert len(_reminders(session_factory)) == 1


def test_a_visit_without_reminders_gets_only_those_still_ahead(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    with reminder_hooks_off():
        appointment_id = book(session_factory, frozen_now, world.patient_id)
    assert _reminders(session_factory) == []
    _schedule(session_factory, appointment_id, VISIT - timedelta(hours=5))
    assert [r.event for r in _reminders(session_factory)] == ["reminder_1h"]
    _schedule(session_factory, appointment_id, VISIT - timedelta(minutes=30))
    assert len(_reminders(session_factory)) == 1


def test_reminders_shift_on_reschedule(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    old_id = book(session_factory, frozen_now, world.patient_id)
    _schedule(session_factory, old_id, frozen_now)
    with session_factory() as session:
        new = reschedule_appointment(
            session, old_id, new_start=local(TUESDAY, 14), actor=ACTOR, now=frozen_now
        )
        sync_reminders(session, session.get(Appointment, old_id), frozen_now)
        sync_reminders(session, new, frozen_now)
        session.commit()
        new_id = new.id

    old = _reminders(session_factory, appointment_id=old_id)
    assert {r.status for r in old} == {NotificationStatus.CANCELLED}
    moved = _reminders(session_factory, appointment_id=new_id)
    new_visit = VISIT + timedelta(hours=4)
    assert [(r.send_after, r.status) for r in moved] == [
        (new_visit - timedelta(hours=24), NotificationStatus.QUEUED),
        (new_visit - timedelta(hours=1), NotificationStatus.QUEUED),
    ]


def test_booking_queues_both_reminders_and_a_reschedule_moves_them(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    old_id = book(session_factory, frozen_now, world.patient_id)  # no sweep, no manual call
    booked = _reminders(session_factory)
    assert [(r.event, r.dedupe_key, r.send_after, r.status, r.channel) for r in booked] == [
        (
            "reminder_24h",
            f"reminder:{old_id}:24h",
            VISIT - timedelta(hours=24),
            NotificationStatus.QUEUED,
            Channel.SMS,
        ),
        (
            "reminder_1h",
            f"reminder:{old_id}:1h",
            VISIT - timedelta(hours=1),
            NotificationStatus.QUEUED,
            Channel.SMS,
        ),
    ]
    assert {r.appointment_id for r in booked} == {old_id}

    moved_at = frozen_now + timedelta(hours=1)
    with session_factory() as session:
        new_id = reschedule_appointment(
            session, old_id, new_start=local(TUESDAY, 14), actor=ACTOR, now=moved_at
        ).id
        session.commit()

    old = _reminders(session_factory, appointment_id=old_id)
    assert [(r.event, r.status, r.last_error) for r in old] == [
        ("reminder_24h", NotificationStatus.CANCELLED, "appointment changed or cancelled"),
        ("reminder_1h", NotificationStatus.CANCELLED, "appointment changed or cancelled"),
    ]
    new_visit = VISIT + timedelta(hours=4)
    moved = _reminders(session_factory, appointment_id=new_id)
    assert [(r.dedupe_key, r.send_after, r.status, r.created_at) for r in moved] == [
        (
            f"reminder:{new_id}:24h",
            new_visit - timedelta(hours=24),
            NotificationStatus.QUEUED,
            moved_at,
        ),
        (
            f"reminder:{new_id}:1h",
            new_visit - timedelta(hours=1),
            NotificationStatus.QUEUED,
            moved_at,
        ),
    ]
    assert "2:00 PM" in moved[0].body
    assert len(_reminders(session_factory)) == 4  # nothing else was queued


def test_reminders_vanish_on_cancel(session_factory, frozen_now, fake_twilio, providers, config):
    world = build_world(session_factory, frozen_now)
    appointment_id = book(session_factory, frozen_now, world.patient_id)
    assert [r.status for r in _reminders(session_factory)] == [NotificationStatus.QUEUED] * 2
    with session_factory() as session:
        cancel_appointment(session, appointment_id, actor=ACTOR, now=frozen_now)
        session.commit()
    reminders = _reminders(session_factory)
    assert [(r.status, r.last_error) for r in reminders] == [
        (NotificationStatus.CANCELLED, "appointment changed or cancelled")
    ] * 2
    with session_factory() as session:
        assert withdraw_reminders(session, appointment_id, frozen_now) == 0  # nothing left
        assert queue_upcoming_reminders(session, VISIT - timedelta(hours=24, minutes=30)) == 0
        session.commit()
    run_once(session_factory, VISIT - timedelta(hours=1), providers, config=config)
    assert not any("reminder" in m["Body"] for m in fake_twilio.messages)


def test_the_worker_drops_a_reminder_whose_appointment_was_cancelled_without_withdrawal(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    appointment_id = book(session_factory, frozen_now, world.patient_id)
    with session_factory() as session:  # cancelled behind the services' back: no withdrawal
        session.execute(
            update(Appointment)
            .where(Appointment.id == appointment_id)
            .values(status=AppointmentStatus.CANCELLED)
        )
        session.commit()
    assert [r.status for r in _reminders(session_factory)] == [NotificationStatus.QUEUED] * 2
    run_once(session_factory, VISIT - timedelta(hours=1), providers, config=config)
    reminders = _reminders(session_factory)
    assert {r.status for r in reminders} == {NotificationStatus.CANCELLED}
    assert {r.last_error for r in reminders} == {"appointment no longer scheduled"}
    assert not any("reminder" in m["Body"] for m in fake_twilio.messages)


def test_the_sweep_queues_reminders_and_the_worker_sends_them_on_time(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    with reminder_hooks_off():  # a visit the booking hook missed: the sweep must catch it
        appointment_id = book(session_factory, frozen_now, world.patient_id)
    assert _reminders(session_factory) == []
    with session_factory() as session:
        assert queue_upcoming_reminders(session, frozen_now) == 0  # 31 hours ahead: not yet
        day_before = VISIT - timedelta(hours=24, minutes=30)
        assert queue_upcoming_reminders(session, day_before) == 2
        assert queue_upcoming_reminders(session, day_before) == 0
        session.commit()
    assert [r.dedupe_key for r in _reminders(session_factory)] == [
        f"reminder:{appointment_id}:24h",
        f"reminder:{appointment_id}:1h",
    ]
    run_once(session_factory, frozen_now, providers, config=config)  # the confirmation
    run_once(session_factory, VISIT - timedelta(hours=24), providers, config=config)
    assert "tomorrow" in fake_twilio.messages[-1]["Body"]
    run_once(session_factory, VISIT - timedelta(hours=1), providers, config=config)
    assert "in about an hour" in fake_twilio.messages[-1]["Body"]
    assert len(fake_twilio.messages) == 3


def test_the_sweep_adds_nothing_to_reminders_the_booking_queued(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    appointment_id = book(session_factory, frozen_now, world.patient_id)
    queued = [(r.id, r.dedupe_key) for r in _reminders(session_factory)]
    assert [key for _, key in queued] == [
        f"reminder:{appointment_id}:24h",
        f"reminder:{appointment_id}:1h",
    ]
    with session_factory() as session:
        for when in (
            frozen_now,
            VISIT - timedelta(hours=24, minutes=30),
            VISIT - timedelta(hours=2),
        ):
            assert queue_upcoming_reminders(session, when) == 0
        session.commit()
    assert [(r.id, r.dedupe_key) for r in _reminders(session_factory)] == queued
    run_once(session_factory, frozen_now, providers, config=config)  # the confirmation
    run_once(session_factory, VISIT - timedelta(hours=24), providers, config=config)
    assert "tomorrow" in fake_twilio.messages[-1]["Body"]
    run_once(session_factory, VISIT - timedelta(hours=1), providers, config=config)
    assert "in about an hour" in fake_twilio.messages[-1]["Body"]
    assert len(fake_twilio.messages) == 3


def test_each_nurse_gets_one_agenda_per_local_morning(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    book(session_factory, frozen_now, world.patient_id)
    with session_factory() as session:
        session.add(
            User(
                email="alice@login.test",
                password_hash="x",
                role=Role.NURSE,
                nurse_id=world.nurse_id,
                created_at=frozen_now,
            )
        )
        session.commit()
    seven_am = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)  # 07:00 EST
    with session_factory() as session:
        assert queue_daily_agendas(session, seven_am - timedelta(minutes=1)) == []
        added = queue_daily_agendas(session, seven_am)
        assert queue_daily_agendas(session, seven_am + timedelta(hours=1)) == []
        session.commit()
        assert sorted(r.channel for r in added) == [Channel.EMAIL, Channel.IN_APP]
        assert {r.nurse_id for r in added} == {world.nurse_id}  # the other nurse has no channel
        body = added[0].body
    assert "10:00 phone call with John (appointment #" in body
    assert "Smith" not in body
    with session_factory() as session:
        assert queue_daily_agendas(session, seven_am + timedelta(days=1)) != []
        assert queue_daily_agendas(session, seven_am + timedelta(hours=6)) == []  # afternoon
        assert session.scalar(select(User.id)) is not None


def test_without_booking_hooks_the_worker_still_follows_a_reschedule(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    day_before = VISIT - timedelta(hours=24, minutes=30)
    with reminder_hooks_off():
        old_id = book(session_factory, frozen_now, world.patient_id)
        with session_factory() as session:
            assert queue_upcoming_reminders(session, day_before) == 2
            new = reschedule_appointment(
                session, old_id, new_start=local(TUESDAY, 14), actor=ACTOR, now=day_before
            )
            session.commit()
            new_id = new.id
    # Nothing withdrew the old visit's reminders nor queued the new one's.
    assert [r.status for r in _reminders(session_factory)] == [NotificationStatus.QUEUED] * 2
    assert _reminders(session_factory, appointment_id=new_id) == []
    # The old 24h reminder is due; the new visit's 24h point has just passed.
    worker_now = local(TUESDAY, 14) - timedelta(hours=23, minutes=30)
    with session_factory() as session:
        queue_upcoming_reminders(session, worker_now)
        session.commit()
    run_once(session_factory, worker_now, providers, config=config)
    old = _reminders(session_factory, appointment_id=old_id)
    assert [(r.event, r.status, r.last_error) for r in old] == [
        ("reminder_24h", NotificationStatus.CANCELLED, "appointment no longer scheduled"),
        ("reminder_1h", NotificationStatus.QUEUED, None),  # not due yet; dropped when it is
    ]
    moved = _reminders(session_factory, appointment_id=new_id)
    assert [r.event for r in moved] == ["reminder_1h"]  # its 24h point had passed
    assert not any("reminder" in m["Body"] for m in fake_twilio.messages)
