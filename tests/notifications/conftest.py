"""Fixtures for the notification tests: fake providers on loopback and a worker config."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.notifications.providers import InApp, Provider, SmtpEmail, TwilioSms
from core.notifications.settings import NotifySettings
from tests.notifications.fakes import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    FakeTwilio,
    SmtpSink,
    start_fake_twilio,
    start_smtp,
)


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A fake Twilio Messages API on a loopback port."""
    fake, server = start_fake_twilio()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def smtp_sink() -> Iterator[tuple[SmtpSink, int]]:
    """A local SMTP server and its port."""
    sink, controller = start_smtp()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


@pytest.fixture
def config(fake_twilio: FakeTwilio, smtp_sink: tuple[SmtpSink, int]) -> NotifySettings:
    """Worker settings pointing at the fakes; quiet hours off unless a test turns them on."""
    return NotifySettings(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_phone_number=FROM_NUMBER,
        twilio_api_base_url=fake_twilio.url,
        status_callback_url="https://carematix.example/twilio/message-status",
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink[1],
        smtp_starttls=False,
        smtp_from="Carematix <no-reply@carematix.test>",
        quiet_hours=None,
        max_attempts=3,
        send_timeout_seconds=5,
    )


@pytest.fixture
def providers(config: NotifySettings) -> Iterator[dict[str, Provider]]:
    """Real providers aimed at the fakes."""
    sms = TwilioSms(config)
    try:
        yield {"sms": sms, "email": SmtpEmail(config), "in_app": InApp()}
    finally:
        sms.close()
