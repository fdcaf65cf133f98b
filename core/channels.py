"""Whether each outside channel is set up: texts, email and phone calls, decided in one place.

The delivery worker, the dashboard (its banner, "Call patient", the home counts) and the API
all ask here, so a channel that lacks its settings is reported the same way everywhere, naming
the settings (as in `.env.example`) that would turn it on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.config import Settings
from core.models import Channel
from core.notifications.settings import NotifySettings


class OutsideChannel(StrEnum):
    """A way of reaching people that depends on an outside service."""

    SMS = Channel.SMS.value
    EMAIL = Channel.EMAIL.value
    CALLS = "calls"


CHANNEL_NAMES = {
    OutsideChannel.SMS: "Text messages",
    OutsideChannel.EMAIL: "Email",
    OutsideChannel.CALLS: "Phone calls",
}


@dataclass(frozen=True)
class ChannelSetup:
    """One channel: whether it can be used, and which settings it still needs."""

    channel: OutsideChannel
    missing: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        """Whether nothing is missing."""
        return not self.missing

    @property
    def name(self) -> str:
        """The channel in words ("Text messages")."""
        return CHANNEL_NAMES[self.channel]

    @property
    def reason(self) -> str:
        """Why the channel cannot be used, in a sentence, or "" when it can."""
        if self.configured:
            return ""
        return f"{self.name}: not configured (set {_listed(self.missing)})."


def _listed(names: tuple[str, ...]) -> str:
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def sms_setup(config: NotifySettings) -> ChannelSetup:
    """Texts go through Twilio: an account, its token, and a number or messaging service."""
    missing = [
        name
        for name, value in (
            ("TWILIO_ACCOUNT_SID", config.twilio_account_sid),
            ("TWILIO_AUTH_TOKEN", config.twilio_auth_token),
        )
        if not value
    ]
    if not config.twilio_phone_number and not config.twilio_messaging_service_sid:
        missing.append("TWILIO_PHONE_NUMBER (or TWILIO_MESSAGING_SERVICE_SID)")
    return ChannelSetup(OutsideChannel.SMS, tuple(missing))


def email_setup(config: NotifySettings) -> ChannelSetup:
    """Email goes through an SMTP relay; its host is the one setting without a default."""
    return ChannelSetup(OutsideChannel.EMAIL, () if config.smtp_host else ("SMTP_HOST",))


def calls_setup(settings: Settings) -> ChannelSetup:
    """Calls need Twilio (to dial, from the practice's number), a public https address for
    Twilio's webhooks and media stream, and the OpenAI key the phone agent speaks with."""
    required = (
        ("PUBLIC_BASE_URL", settings.public_base_url),
        ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
        ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
        ("TWILIO_PHONE_NUMBER", settings.twilio_phone_number),
        ("OPENAI_API_KEY", settings.openai_api_key),
    )
    return ChannelSetup(OutsideChannel.CALLS, tuple(name for name, value in required if not value))


def message_setups(config: NotifySettings) -> dict[str, ChannelSetup]:
    """The notification channels that depend on an outside service, by Channel value."""
    return {Channel.SMS: sms_setup(config), Channel.EMAIL: email_setup(config)}


def all_setups(settings: Settings, config: NotifySettings) -> list[ChannelSetup]:
    """Every outside channel, in the order the dashboard lists them."""
    return [sms_setup(config), email_setup(config), calls_setup(settings)]


def delivering_channels(config: NotifySettings) -> list[str]:
    """Notification channels whose messages can go out (in-app always can)."""
    usable = [name for name, setup in message_setups(config).items() if setup.configured]
    return [Channel.IN_APP.value, *usable]
