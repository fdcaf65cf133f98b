"""The outside channels as this app is configured: core.channels applied to its settings."""

from __future__ import annotations

from flask import current_app

from core import channels
from core.channels import ChannelSetup
from core.config import Settings
from core.notifications.settings import NotifySettings


def _settings() -> tuple[Settings, NotifySettings]:
    return current_app.config["SETTINGS"], current_app.config["NOTIFY_SETTINGS"]


def unconfigured() -> list[ChannelSetup]:
    """The channels that cannot be used for want of settings (the admins' banner)."""
    settings, notify = _settings()
    return [setup for setup in channels.all_setups(settings, notify) if not setup.configured]


def calls() -> ChannelSetup:
    """Whether phone calls can be placed, and what they still need."""
    return channels.calls_setup(_settings()[0])


def delivering() -> list[str]:
    """Notification channels whose messages go out (the rest are set aside)."""
    return channels.delivering_channels(_settings()[1])


def message_setup(channel: str) -> ChannelSetup | None:
    """The setup of a notification channel that needs one (None: in-app)."""
    return channels.message_setups(_settings()[1]).get(channel)
