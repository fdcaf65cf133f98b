"""The worker process: a clean stop on SIGTERM, and separate processes racing on one queue."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime

import pytest

from core.config import PROJECT_ROOT
from core.db import make_engine, make_session_factory
from core.models import NotificationStatus
from core.notifications.delivery import run_once
from core.notifications.providers import TwilioSms
from core.notifications.settings import NotifySettings
from core.notifications.worker import Worker
from tests.notifications.fakes import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER
from tests.notifications.helpers import book, queue_in_app, queue_sms, rows
from tests.services.world import build_world


def _wait_for(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _all_sent(factory, **where: object) -> bool:
    return {r.status for r in rows(factory, **where)} == {NotificationStatus.SENT}


def test_the_worker_loop_delivers_then_stops_promptly_when_asked(
    sqlite_url, frozen_now, fake_twilio, providers, config
):
    factory = make_session_factory(make_engine(sqlite_url))
    world = build_world(factory, frozen_now)
    queue_sms(factory, frozen_now, world.patient_id, 3)
    worker = Worker(
        factory, providers, replace(config, poll_seconds=0.05), clock=lambda: frozen_now
    )
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert _wait_for(lambda: _all_sent(factory))
    finally:
        worker.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(fake_twilio.messages) == 3


def test_the_worker_process_sends_and_exits_cleanly_on_sigterm_without_logging_phi(
    sqlite_url, frozen_now, fake_twilio
):
    factory = make_session_factory(make_engine(sqlite_url))
    world = build_world(factory, frozen_now)
    queue_sms(factory, frozen_now, world.patient_id, 2)
    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE_URL": fake_twilio.url,
        "PUBLIC_BASE_URL": "",
        "SMTP_HOST": "",
        "QUIET_HOURS": "off",
        "NOTIFY_POLL_SECONDS": "0.1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "core.notifications.worker"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Only the texts queued here: on the real clock the worker may also queue a nurse's
        # daily agenda (an email, which this worker cannot send) once 07:00 passes in her zone.
        delivered = _wait_for(lambda: _all_sent(factory, event="test"))
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert delivered, output
    assert process.returncode == 0, output
    assert "stopped" in output
    assert "+1202" not in output and "message 0" not in output  # no numbers, no bodies
    assert sorted(m["Body"] for m in fake_twilio.messages) == ["message 0", "message 1"]


def test_a_worker_without_sms_or_smtp_settings_sets_messages_aside_once_and_never_retries(
    sqlite_url, frozen_now, fake_twilio, smtp_sink
):
    factory = make_session_factory(make_engine(sqlite_url))
    world = build_world(factory, frozen_now)
    book(factory, frozen_now, world.patient_id)  # a text to the patient, an email to the nurse
    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url,
        # Where a configured worker would send, so a stray attempt would be seen; no credentials.
        "TWILIO_ACCOUNT_SID": "",
        "TWILIO_AUTH_TOKEN": "",
        "TWILIO_PHONE_NUMBER": "",
        "TWILIO_API_BASE_URL": fake_twilio.url,
        "SMTP_HOST": "",
        "SMTP_PORT": str(smtp_sink[1]),
        "QUIET_HOURS": "off",
        "NOTIFY_POLL_SECONDS": "0.1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "core.notifications.worker"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        set_aside = _wait_for(
            lambda: (
                {r.channel: r.status for r in rows(factory, event="appointment_booked")}
                == {"sms": "unconfigured", "email": "unconfigured"}
            )
        )
        # A message queued afterwards goes out: the worker has made later passes since.
        queue_in_app(factory, frozen_now, world.nurse_id)
        later_pass = _wait_for(lambda: _all_sent(factory, event="test"))
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert set_aside and later_pass, output
    booked = rows(factory, event="appointment_booked")
    assert {(r.status, r.attempts) for r in booked} == {("unconfigured", 0)}
    assert {r.last_error for r in booked} == {
        "Text messages: not configured (set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and"
        " TWILIO_PHONE_NUMBER (or TWILIO_MESSAGING_SERVICE_SID)).",
        "Email: not configured (set SMTP_HOST).",
    }
    assert fake_twilio.messages == [] and smtp_sink[0].messages == []
    assert output.count("set aside: their channel is not configured") == 1, output
    assert "failed" not in output


def _drain(url: str, now: datetime, config: NotifySettings, name: str, barrier) -> None:
    """A worker process: claim and send until the queue is empty."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    sms = TwilioSms(config)
    barrier.wait(timeout=60)
    try:
        while run_once(factory, now, {"sms": sms}, config=config, worker_id=name).claimed:
            pass
    finally:
        sms.close()
        engine.dispose()


@pytest.mark.postgresql
def test_two_worker_processes_on_postgresql_send_each_message_exactly_once(
    pg_url, frozen_now, fake_twilio, config
):
    factory = make_session_factory(make_engine(pg_url))
    world = build_world(factory, frozen_now)
    queue_sms(factory, frozen_now, world.patient_id, 30)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    small = replace(config, batch_size=2)
    processes = [
        context.Process(target=_drain, args=(pg_url, frozen_now, small, f"p{i}", barrier))
        for i in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0]
    bodies = sorted(m["Body"] for m in fake_twilio.messages)
    assert bodies == sorted(f"message {i}" for i in range(30))
    sent = rows(factory)
    assert {r.status for r in sent} == {NotificationStatus.SENT}
    assert {r.claimed_by for r in sent} == {"p0", "p1"}
