"""The delivery worker against a fake Twilio API and a local SMTP server, on both databases."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import NullPool, select, update

from core.db import make_engine
from core.models import AuditEvent, Channel, Notification, NotificationStatus, Patient
from core.notifications.delivery import (
    claim_due,
    quiet_until,
    record_outcome,
    retry_notification,
    run_once,
)
from core.notifications.providers import DeliveryError, Failure, InApp, SmtpEmail, TwilioSms
from tests.notifications.fakes import FROM_NUMBER, free_port
from tests.notifications.helpers import book, queue_sms, rows
from tests.services.world import build_world

PATIENT_PHONE = "+12025550101"


def test_booking_confirmation_reaches_patient_by_sms_and_nurse_by_email(
    session_factory, frozen_now, fake_twilio, smtp_sink, providers, config
):
    world = build_world(session_factory, frozen_now)
    book(session_factory, frozen_now, world.patient_id)

    report = run_once(session_factory, frozen_now, providers, config=config)

    assert len(report.sent) == 2
    [text] = fake_twilio.messages
    assert text["To"] == PATIENT_PHONE
    assert text["From"] == FROM_NUMBER
    assert text["StatusCallback"] == config.status_callback_url
    assert "nurse Alice" in text["Body"]
    sink, _ = smtp_sink
    [email] = sink.messages
    assert email["to"] == ["alice@example.test"]
    assert email["subject"] == "Appointment confirmed"
    sms_row = rows(session_factory, channel=Channel.SMS)[0]
    assert sms_row.status == NotificationStatus.SENT
    assert sms_row.provider_id == text["sid"]
    assert sms_row.sent_at == frozen_now
    assert sms_row.attempts == 1
    email_row = rows(session_factory, channel=Channel.EMAIL)[0]
    assert email_row.provider_id == email["message_id"]


def test_a_second_pass_sends_nothing_again(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    book(session_factory, frozen_now, world.patient_id)
    run_once(session_factory, frozen_now, providers, config=config)
    report = run_once(session_factory, frozen_now + timedelta(hours=1), providers, config=config)
    assert report.claimed == 0
    assert len(fake_twilio.messages) == 1


def test_a_messaging_service_replaces_the_from_number(sqlite_url, frozen_now, fake_twilio, config):
    from core.db import make_engine, make_session_factory

    factory = make_session_factory(make_engine(sqlite_url))
    world = build_world(factory, frozen_now)
    queue_sms(factory, frozen_now, world.patient_id, 1)
    sms = TwilioSms(replace(config, twilio_messaging_service_sid="MG" + "1" * 32))
    run_once(factory, frozen_now, {"sms": sms}, config=config)
    [text] = fake_twilio.messages
    assert text["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in text


def test_a_twilio_500_is_retried_after_a_backoff(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    queue_sms(session_factory, frozen_now, world.patient_id, 1)
    fake_twilio.failures.append((500, 20500))

    first = run_once(session_factory, frozen_now, providers, config=config)
    [row] = rows(session_factory)
    assert first.retrying == [row.id]
    assert row.status == NotificationStatus.QUEUED
    assert row.send_after == frozen_now + timedelta(seconds=config.backoff_seconds)
    assert "HTTP 500" in (row.last_error or "")

    early = run_once(session_factory, frozen_now + timedelta(seconds=10), providers, config=config)
    assert early.claimed == 0
    later = frozen_now + timedelta(seconds=config.backoff_seconds)
    assert run_once(session_factory, later, providers, config=config).sent == [row.id]
    [row] = rows(session_factory)
    assert (row.status, row.attempts, row.last_error) == (NotificationStatus.SENT, 2, None)
    assert len(fake_twilio.messages) == 1


def test_the_worker_gives_up_after_the_maximum_attempts_and_keeps_the_error(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    queue_sms(session_factory, frozen_now, world.patient_id, 1)
    fake_twilio.fail_always = (503, 20503)
    now = frozen_now
    delays = []
    for _ in range(config.max_attempts):
        run_once(session_factory, now, providers, config=config)
        [row] = rows(session_factory)
        delays.append(row.send_after - now)
        now = row.send_after
    assert delays[:2] == [timedelta(seconds=30), timedelta(seconds=60)]
    assert row.status == NotificationStatus.FAILED
    assert row.attempts == config.max_attempts
    assert row.last_error == "gave up after 3 attempts: twilio HTTP 503 code 20503"
    assert run_once(session_factory, now + timedelta(days=1), providers, config=config).claimed == 0


def test_a_rejected_number_fails_at_once_without_the_number_in_the_error(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    queue_sms(session_factory, frozen_now, world.patient_id, 1)
    fake_twilio.failures.append((400, 21211))
    report = run_once(session_factory, frozen_now, providers, config=config)
    [row] = rows(session_factory)
    assert report.failed == [row.id]
    assert (row.status, row.attempts) == (NotificationStatus.FAILED, 1)
    assert row.last_error == "twilio HTTP 400 code 21211: invalid 'To' phone number"
    assert PATIENT_PHONE not in row.last_error


def test_an_unreachable_twilio_is_retried_not_lost(sqlite_url, frozen_now, config):
    from core.db import make_engine, make_session_factory

    factory = make_session_factory(make_engine(sqlite_url))
    world = build_world(factory, frozen_now)
    queue_sms(factory, frozen_now, world.patient_id, 1)
    dead = replace(config, twilio_api_base_url=f"http://127.0.0.1:{free_port()}")
    run_once(factory, frozen_now, {"sms": TwilioSms(dead)}, config=dead)
    [row] = rows(factory)
    assert row.status == NotificationStatus.QUEUED
    assert "twilio unreachable" in (row.last_error or "")


def test_a_worker_killed_mid_send_leaves_the_message_unknown_and_never_resends_it(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    queue_sms(session_factory, frozen_now, world.patient_id, 1)
    [claimed] = claim_due(
        session_factory, frozen_now, worker_id="doomed", config=config, channels={"sms"}
    )
    providers["sms"].send(claimed)  # the text went out, then the worker died before recording

    during = run_once(session_factory, frozen_now + timedelta(seconds=60), providers, config=config)
    assert during.claimed == 0 and during.reaped == []
    after_lease = frozen_now + timedelta(seconds=config.lease_seconds + 1)
    report = run_once(session_factory, after_lease, providers, config=config)
    assert report.reaped == [claimed.notification_id]
    run_once(session_factory, after_lease + timedelta(days=1), providers, config=config)

    [row] = rows(session_factory)
    assert row.status == NotificationStatus.UNKNOWN
    assert row.claimed_by == "doomed"
    assert "mid-send" in (row.last_error or "")
    assert len(fake_twilio.messages) == 1


def test_a_coordinator_can_retry_a_failed_message(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    queue_sms(session_factory, frozen_now, world.patient_id, 1)
    fake_twilio.failures.append((400, 21614))
    run_once(session_factory, frozen_now, providers, config=config)
    [row] = rows(session_factory)
    with session_factory() as session:
        assert retry_notification(session, row.id, frozen_now)
        session.commit()
    run_once(session_factory, frozen_now, providers, config=config)
    [row] = rows(session_factory)
    assert (row.status, row.attempts) == (NotificationStatus.SENT, 2)


def _race(factory, now, providers, config, workers: int) -> list[BaseException]:
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            while run_once(factory, now, providers, config=config, worker_id=f"w{index}").claimed:
                pass
        except BaseException as exc:  # a thread's error must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_four_workers_racing_on_one_queue_send_each_message_exactly_once(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    queue_sms(session_factory, frozen_now, world.patient_id, 40)
    errors = _race(session_factory, frozen_now, providers, replace(config, batch_size=3), 4)
    assert not errors, errors
    bodies = sorted(m["Body"] for m in fake_twilio.messages)
    assert bodies == sorted(f"message {i}" for i in range(40))
    sent = rows(session_factory)
    assert {r.status for r in sent} == {NotificationStatus.SENT}
    assert {r.attempts for r in sent} == {1}
    assert len({r.claimed_by for r in sent}) > 1  # the work really was shared


def test_a_patient_who_replied_stop_loses_sms_consent_and_gets_no_further_text(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    queue_sms(session_factory, frozen_now, world.patient_id, 1)
    fake_twilio.failures.append((400, 21610))
    report = run_once(session_factory, frozen_now, providers, config=config)
    [row] = rows(session_factory)
    assert report.failed == [row.id]
    assert row.last_error == "twilio HTTP 400 code 21610: recipient has unsubscribed (replied STOP)"
    with session_factory() as session:
        patient = session.get(Patient, world.patient_id)
        assert patient is not None and patient.sms_consent is False
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "patient.sms_consent_withdrawn")
        ).all()
        assert (event.entity_id, event.details) == (world.patient_id, {"notification_id": row.id})
    # The next text is cancelled before it reaches Twilio (which would refuse it again).
    queue_sms(session_factory, frozen_now, world.patient_id, 1)
    later = run_once(session_factory, frozen_now + timedelta(minutes=1), providers, config=config)
    assert len(later.cancelled) == 1 and len(fake_twilio.messages) == 0
    assert rows(session_factory)[-1].last_error == "patient has not consented to SMS"


def test_other_permanent_failures_leave_sms_consent_alone(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    queue_sms(session_factory, frozen_now, world.patient_id, 1)
    fake_twilio.failures.append((400, 21211))
    run_once(session_factory, frozen_now, providers, config=config)
    with session_factory() as session:
        patient = session.get(Patient, world.patient_id)
        assert patient is not None and patient.sms_consent is True


def test_sms_to_a_patient_without_consent_is_cancelled_with_a_reason(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    queue_sms(session_factory, frozen_now, world.other_patient_id, 1)  # Sarah has not consented
    report = run_once(session_factory, frozen_now, providers, config=config)
    [row] = rows(session_factory)
    assert report.cancelled == [row.id]
    assert row.status == NotificationStatus.CANCELLED
    assert row.last_error == "patient has not consented to SMS"
    assert fake_twilio.messages == []


def test_quiet_hours_defer_texts_to_the_morning_in_the_patients_zone(
    session_factory, frozen_now, fake_twilio, smtp_sink, providers, config
):
    quiet = replace(config, quiet_hours=(time(21), time(8)))
    world = build_world(session_factory, frozen_now)
    book(session_factory, frozen_now, world.patient_id)  # 03:00 in New York
    report = run_once(session_factory, frozen_now, providers, config=quiet)
    assert len(report.deferred) == 1 and len(report.sent) == 1  # the nurse's email goes now
    [sms] = rows(session_factory, channel=Channel.SMS, event="appointment_booked")
    morning = datetime(2025, 3, 3, 13, 0, tzinfo=UTC)  # 08:00 EST
    assert (sms.status, sms.send_after, sms.attempts) == (NotificationStatus.QUEUED, morning, 0)
    # The visit's reminders (queued at booking, due later) are not touched by quiet hours.
    reminders = [r for r in rows(session_factory, channel=Channel.SMS) if r.id != sms.id]
    assert [(r.event, r.send_after) for r in reminders] == [
        ("reminder_24h", datetime(2025, 3, 3, 15, 0, tzinfo=UTC)),
        ("reminder_1h", datetime(2025, 3, 4, 14, 0, tzinfo=UTC)),
    ]
    assert (
        run_once(session_factory, morning - timedelta(minutes=1), providers, config=quiet).claimed
        == 0
    )
    assert run_once(session_factory, morning, providers, config=quiet).sent == [sms.id]
    assert len(fake_twilio.messages) == 1


def test_quiet_hours_wrap_midnight_and_follow_the_zone():
    quiet = (time(21), time(8))
    ny = "America/New_York"
    evening = datetime(2025, 3, 3, 2, 30, tzinfo=UTC)  # 21:30 EST on Sunday
    assert quiet_until(evening, ny, quiet) == datetime(2025, 3, 3, 13, 0, tzinfo=UTC)
    assert quiet_until(datetime(2025, 3, 3, 15, 0, tzinfo=UTC), ny, quiet) is None
    assert quiet_until(evening, "Europe/London", quiet) == datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
    assert quiet_until(evening, "Asia/Tokyo", quiet) is None  # 11:30 in Tokyo
    assert quiet_until(evening, ny, None) is None


def test_email_without_smtp_is_set_aside_as_not_configured_and_never_retried(
    session_factory, frozen_now, fake_twilio, providers, smtp_sink, config
):
    world = build_world(session_factory, frozen_now)
    book(session_factory, frozen_now, world.patient_id)
    no_smtp = replace(config, smtp_host="")
    without_email = {k: v for k, v in providers.items() if k != "email"}
    report = run_once(session_factory, frozen_now, without_email, config=no_smtp)
    [email] = rows(session_factory, channel=Channel.EMAIL)
    assert email.status == NotificationStatus.UNCONFIGURED
    assert email.last_error == "Email: not configured (set SMTP_HOST)."
    assert (report.unconfigured, report.failed, email.attempts) == ([email.id], [], 0)
    [sms] = rows(session_factory, channel=Channel.SMS, event="appointment_booked")
    assert sms.status == NotificationStatus.SENT

    later = run_once(
        session_factory, frozen_now + timedelta(hours=2), without_email, config=no_smtp
    )
    [email] = rows(session_factory, channel=Channel.EMAIL)
    assert later.claimed == 0 and later.unconfigured == []
    assert (email.status, email.attempts) == (NotificationStatus.UNCONFIGURED, 0)
    assert smtp_sink[0].messages == []


def test_a_not_configured_message_goes_out_when_retried_once_the_channel_is_set_up(
    session_factory, frozen_now, fake_twilio, providers, smtp_sink, config
):
    world = build_world(session_factory, frozen_now)
    book(session_factory, frozen_now, world.patient_id)
    without_email = {k: v for k, v in providers.items() if k != "email"}
    run_once(session_factory, frozen_now, without_email, config=replace(config, smtp_host=""))
    [email] = rows(session_factory, channel=Channel.EMAIL)
    # Setting SMTP up sends nothing old on its own ...
    assert run_once(session_factory, frozen_now, providers, config=config).claimed == 0
    # ... until a coordinator asks for that message again.
    with session_factory() as session:
        assert retry_notification(session, email.id, frozen_now)
        session.commit()
    assert run_once(session_factory, frozen_now, providers, config=config).sent == [email.id]
    assert len(smtp_sink[0].messages) == 1


def test_in_app_notifications_are_marked_sent_immediately(session_factory, frozen_now, config):
    world = build_world(session_factory, frozen_now)
    book(session_factory, frozen_now, world.patient_id)
    with session_factory() as session:
        session.execute(update(Notification).values(channel=Channel.IN_APP))
        session.commit()
    report = run_once(session_factory, frozen_now, {"in_app": InApp()}, config=config)
    booked = rows(session_factory, event="appointment_booked")
    assert len(booked) == 2 and {r.status for r in booked} == {NotificationStatus.SENT}
    assert sorted(report.sent) == [r.id for r in booked]
    # The reminders queued at booking are not due yet: in-app or not, they wait their turn.
    later = [r for r in rows(session_factory) if r.event != "appointment_booked"]
    assert [(r.event, r.status) for r in later] == [
        ("reminder_24h", NotificationStatus.QUEUED),
        ("reminder_1h", NotificationStatus.QUEUED),
    ]


def test_a_provider_that_accepts_then_hangs_leaves_the_message_unknown_not_resent(
    sqlite_url, frozen_now, fake_twilio, config
):
    from core.db import make_engine, make_session_factory

    factory = make_session_factory(make_engine(sqlite_url))
    world = build_world(factory, frozen_now)
    queue_sms(factory, frozen_now, world.patient_id, 1)
    fake_twilio.stall_seconds = 1.0
    impatient = replace(config, send_timeout_seconds=0.2)
    sms = TwilioSms(impatient)
    try:
        report = run_once(factory, frozen_now, {"sms": sms}, config=impatient)
        [row] = rows(factory)
        assert report.unknown == [row.id]
        assert row.status == NotificationStatus.UNKNOWN
        assert "no answer" in (row.last_error or "")
        run_once(factory, frozen_now + timedelta(days=1), {"sms": sms}, config=impatient)
    finally:
        sms.close()
    assert len(fake_twilio.messages) == 1


def test_a_slow_send_that_finishes_after_its_lease_expired_is_still_recorded_sent(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    queue_sms(session_factory, frozen_now, world.patient_id, 1)
    [claimed] = claim_due(
        session_factory, frozen_now, worker_id="slow", config=config, channels={"sms"}
    )
    late = frozen_now + timedelta(seconds=config.lease_seconds + 1)
    assert run_once(session_factory, late, providers, config=config).reaped == [
        claimed.notification_id
    ]
    sid = providers["sms"].send(claimed)
    assert record_outcome(session_factory, claimed, late, config, provider_id=sid) == "sent"
    [row] = rows(session_factory)
    assert (row.status, row.provider_id) == (NotificationStatus.SENT, sid)


def test_an_outcome_from_a_superseded_claim_is_ignored(
    session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    queue_sms(session_factory, frozen_now, world.patient_id, 1)
    [claimed] = claim_due(
        session_factory, frozen_now, worker_id="a", config=config, channels={"sms"}
    )
    with session_factory() as session:  # a coordinator resolved it meanwhile
        session.execute(update(Notification).values(status=NotificationStatus.CANCELLED))
        session.commit()
    error = DeliveryError("twilio HTTP 500", Failure.TRANSIENT)
    assert record_outcome(session_factory, claimed, frozen_now, config, error=error) == "cancelled"
    assert rows(session_factory)[0].status == NotificationStatus.CANCELLED


def test_smtp_refusing_a_recipient_fails_the_email_and_an_unreachable_server_retries(
    sqlite_url, frozen_now, smtp_sink, config
):
    from core.db import make_engine, make_session_factory

    factory = make_session_factory(make_engine(sqlite_url))
    world = build_world(factory, frozen_now)
    book(factory, frozen_now, world.patient_id)
    sink, _ = smtp_sink
    sink.refuse["alice@example.test"] = "550 5.1.1 no such user"
    run_once(factory, frozen_now, {"email": SmtpEmail(config)}, config=config)
    [email] = rows(factory, channel=Channel.EMAIL)
    assert (email.status, email.last_error) == (
        NotificationStatus.FAILED,
        "smtp refused the recipient (550)",
    )
    with factory() as session:
        assert retry_notification(session, email.id, frozen_now)
        session.commit()
    down = replace(config, smtp_port=free_port())
    run_once(factory, frozen_now, {"email": SmtpEmail(down)}, config=down)
    [email] = rows(factory, channel=Channel.EMAIL)
    assert email.status == NotificationStatus.QUEUED
    assert "smtp unreachable" in (email.last_error or "")


def test_quiet_hours_end_at_local_eight_across_a_daylight_saving_change():
    quiet = (time(21), time(8))
    spring_night = datetime(2025, 3, 9, 4, 0, tzinfo=UTC)  # 23:00 EST, clocks go forward at 2
    assert quiet_until(spring_night, "America/New_York", quiet) == datetime(
        2025, 3, 9, 12, 0, tzinfo=UTC
    )  # 08:00 EDT


def test_no_transaction_is_held_while_a_text_is_sent(
    db_url, session_factory, frozen_now, fake_twilio, providers, config
):
    world = build_world(session_factory, frozen_now)
    book(session_factory, frozen_now, world.patient_id)
    other = make_engine(db_url, poolclass=NullPool)  # another process's connection
    seen: list[str] = []

    def write_meanwhile(form: dict[str, str]) -> None:
        # While Twilio has the text and the worker waits for its answer, another writer (the
        # dashboard, the voice service) updates the very row being sent, with a short wait.
        try:
            with other.begin() as connection:
                if connection.dialect.name == "sqlite":
                    connection.exec_driver_sql("PRAGMA busy_timeout=500")
                else:
                    connection.exec_driver_sql("SET LOCAL lock_timeout = '500ms'")
                connection.execute(
                    update(Notification)
                    .where(Notification.channel == Channel.SMS)
                    .values(subject=Notification.subject)
                )
            seen.append("written")
        except Exception as exc:
            seen.append(type(exc).__name__)

    fake_twilio.on_message = write_meanwhile
    try:
        report = run_once(session_factory, frozen_now, providers, config=config)
    finally:
        other.dispose()

    assert seen == ["written"]
    assert len(report.sent) == 2
