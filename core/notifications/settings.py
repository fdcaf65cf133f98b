"""Worker settings read from the environment; Twilio credentials come from core.config."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time

from core.config import Settings

STATUS_CALLBACK_PATH = "/twilio/message-status"


def _flag(value: str | None, default: bool) -> bool:
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _clock(value: str) -> time:
    hours, minutes = value.strip().split(":")
    return time(int(hours), int(minutes))


def parse_quiet_hours(value: str | None) -> tuple[time, time] | None:
    """'21:00-08:00' -> (21:00, 08:00); empty or 'off' disables quiet hours."""
    if value is None:
        return (time(21), time(8))
    value = value.strip().lower()
    if value in {"", "off", "none", "0"}:
        return None
    start, _, end = value.partition("-")
    quiet = (_clock(start), _clock(end))
    if quiet[0] == quiet[1]:
        return None
    return quiet


@dataclass(frozen=True)
class NotifySettings:
    """Everything the delivery worker reads; see the module docstring of each field's user."""

    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_phone_number: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_base_url: str = "https://api.twilio.com"
    status_callback_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "Carematix <no-reply@localhost>"
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    quiet_hours: tuple[time, time] | None = (time(21), time(8))
    max_attempts: int = 5
    lease_seconds: int = 300
    poll_seconds: float = 5.0
    batch_size: int = 20
    backoff_seconds: int = 30
    backoff_max_seconds: int = 3600
    agenda_time: time = time(7)
    send_timeout_seconds: float = 15.0

    @classmethod
    def from_env(
        cls, settings: Settings | None = None, env: Mapping[str, str] | None = None
    ) -> NotifySettings:
        """Build from core Settings (Twilio, public URL) plus the NOTIFY_/SMTP_ variables."""
        settings = settings or Settings.from_env()
        env = os.environ if env is None else env
        port = int(env.get("SMTP_PORT") or 587)
        public = settings.public_base_url.rstrip("/")
        return cls(
            twilio_account_sid=settings.twilio_account_sid,
            twilio_auth_token=settings.twilio_auth_token,
            twilio_phone_number=settings.twilio_phone_number,
            twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID", ""),
            twilio_api_base_url=settings.twilio_api_base_url.rstrip("/"),
            status_callback_url=env.get(
                "TWILIO_STATUS_CALLBACK_URL",
                f"{public}{STATUS_CALLBACK_PATH}" if public else "",
            ),
            smtp_host=env.get("SMTP_HOST", ""),
            smtp_port=port,
            smtp_user=env.get("SMTP_USER", ""),
            smtp_password=env.get("SMTP_PASSWORD", ""),
            smtp_from=env.get("SMTP_FROM") or "Carematix <no-reply@localhost>",
            smtp_starttls=_flag(env.get("SMTP_STARTTLS"), port == 587),
            smtp_ssl=_flag(env.get("SMTP_SSL"), port == 465),
            quiet_hours=parse_quiet_hours(env.get("QUIET_HOURS")),
            max_attempts=int(env.get("NOTIFY_MAX_ATTEMPTS") or 5),
            lease_seconds=int(env.get("NOTIFY_LEASE_SECONDS") or 300),
            poll_seconds=float(env.get("NOTIFY_POLL_SECONDS") or 5),
            batch_size=int(env.get("NOTIFY_BATCH_SIZE") or 20),
            backoff_seconds=int(env.get("NOTIFY_BACKOFF_SECONDS") or 30),
            backoff_max_seconds=int(env.get("NOTIFY_BACKOFF_MAX_SECONDS") or 3600),
            agenda_time=_clock(env.get("NURSE_AGENDA_TIME") or "07:00"),
        )
