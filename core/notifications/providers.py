"""Delivery channels: Twilio SMS over its REST API, SMTP email, and in-app.

A provider either returns the provider's message id or raises DeliveryError saying whether a
retry is safe (transient), pointless (permanent), or possibly a duplicate (ambiguous: the
request may have reached the provider, so the worker flags the row instead of resending).
Error reasons never carry phone numbers, addresses or message text.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum
from typing import Protocol

import httpx

from core.channels import email_setup, sms_setup
from core.models import Channel
from core.notifications.settings import NotifySettings

log = logging.getLogger(__name__)

TWILIO_API_VERSION = "2010-04-01"

# Twilio error codes that no retry will fix, with a PHI-free description.
PERMANENT_TWILIO_CODES = {
    21211: "invalid 'To' phone number",
    21212: "invalid 'From' phone number",
    21408: "sending to this region is not enabled",
    21606: "'From' number cannot send SMS",
    21610: "recipient has unsubscribed (replied STOP)",
    21612: "cannot route to this number",
    21614: "'To' number is not a mobile number",
    21617: "message body too long",
    20003: "authentication failed",
    20404: "resource not found",
}


class Failure(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    AMBIGUOUS = "ambiguous"


# The recipient replied STOP: the carrier blocks every text to them until they reply START.
OPTED_OUT_TWILIO_CODES = frozenset({21610})


class DeliveryError(Exception):
    """A send that did not succeed; `kind` decides retry, give up, or flag for a person."""

    def __init__(self, reason: str, kind: Failure, *, opted_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.opted_out = opted_out  # the recipient has withdrawn consent to texts


@dataclass(frozen=True)
class Outgoing:
    """One claimed message, detached from any session: what a provider needs to send it."""

    notification_id: int
    channel: str
    to: str
    subject: str
    body: str
    attempt: int
    claimed_by: str


class Provider(Protocol):
    """Sends one message; returns the provider's id (or None) or raises DeliveryError."""

    def send(self, message: Outgoing) -> str | None: ...


class TwilioSms:
    """SMS through the Twilio Messages API (form POST, basic auth), as the real API expects."""

    def __init__(self, config: NotifySettings, client: httpx.Client | None = None) -> None:
        setup = sms_setup(config)
        if not setup.configured:
            raise ValueError(setup.reason)
        self.config = config
        self.client = client or httpx.Client(
            base_url=config.twilio_api_base_url,
            auth=(config.twilio_account_sid, config.twilio_auth_token),
            timeout=config.send_timeout_seconds,
        )
        self.path = f"/{TWILIO_API_VERSION}/Accounts/{config.twilio_account_sid}/Messages.json"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()

    def send(self, message: Outgoing) -> str | None:
        """POST the message; 201 gives its SID."""
        form = {"To": message.to, "Body": message.body}
        if self.config.twilio_messaging_service_sid:
            form["MessagingServiceSid"] = self.config.twilio_messaging_service_sid
        else:
            form["From"] = self.config.twilio_phone_number
        if self.config.status_callback_url:
            form["StatusCallback"] = self.config.status_callback_url
        try:
            response = self.client.post(self.path, data=form)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The request never left: retrying cannot duplicate the message.
            raise DeliveryError(
                f"twilio unreachable ({type(exc).__name__})", Failure.TRANSIENT
            ) from exc
        except httpx.HTTPError as exc:
            # Sent but no answer: Twilio may have accepted it, so a retry could text twice.
            raise DeliveryError(
                f"twilio gave no answer ({type(exc).__name__})", Failure.AMBIGUOUS
            ) from exc
        return self._outcome(response)

    @staticmethod
    def _outcome(response: httpx.Response) -> str:
        status = response.status_code
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if status in (200, 201):
            sid = payload.get("sid")
            if not isinstance(sid, str) or not sid:
                raise DeliveryError("twilio accepted but returned no sid", Failure.AMBIGUOUS)
            return sid
        code = payload.get("code")
        code = code if isinstance(code, int) else None
        described = PERMANENT_TWILIO_CODES.get(code or 0, "")
        reason = f"twilio HTTP {status}" + (f" code {code}" if code else "")
        if described:
            reason += f": {described}"
        if status == 429 or status >= 500:
            raise DeliveryError(reason, Failure.TRANSIENT)
        raise DeliveryError(reason, Failure.PERMANENT, opted_out=code in OPTED_OUT_TWILIO_CODES)


class SmtpEmail:
    """Email through an SMTP relay (STARTTLS or SSL, optional login)."""

    def __init__(self, config: NotifySettings) -> None:
        setup = email_setup(config)
        if not setup.configured:
            raise ValueError(setup.reason)
        self.config = config

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        timeout = config.send_timeout_seconds
        if config.smtp_ssl:
            return smtplib.SMTP_SSL(
                config.smtp_host,
                config.smtp_port,
                timeout=timeout,
                context=ssl.create_default_context(),
            )
        smtp = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=timeout)
        if config.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        return smtp

    def send(self, message: Outgoing) -> str | None:
        """Send one email; the Message-ID we generated is the provider id."""
        domain = self.config.smtp_from.rpartition("@")[2].strip("> ") or "carematix"
        message_id = f"<n{message.notification_id}.{secrets.token_hex(6)}@{domain}>"[:64]
        email = EmailMessage()
        email["From"] = self.config.smtp_from
        email["To"] = message.to
        email["Subject"] = message.subject or "Carematix"
        email["Message-ID"] = message_id
        email.set_content(message.body)
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"smtp unreachable ({type(exc).__name__})", Failure.TRANSIENT
            ) from exc
        try:
            if self.config.smtp_user:
                smtp.login(self.config.smtp_user, self.config.smtp_password)
        except smtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise DeliveryError(f"smtp login refused ({exc.smtp_code})", Failure.PERMANENT) from exc
        except (OSError, smtplib.SMTPException) as exc:
            smtp.close()
            raise DeliveryError(
                f"smtp unreachable ({type(exc).__name__})", Failure.TRANSIENT
            ) from exc
        try:
            smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            kind = Failure.TRANSIENT if all(400 <= c < 500 for c in codes) else Failure.PERMANENT
            raise DeliveryError(f"smtp refused the recipient ({codes[0]})", kind) from exc
        except smtplib.SMTPResponseException as exc:
            kind = Failure.TRANSIENT if 400 <= exc.smtp_code < 500 else Failure.PERMANENT
            raise DeliveryError(f"smtp refused the message ({exc.smtp_code})", kind) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"smtp dropped mid-send ({type(exc).__name__})", Failure.AMBIGUOUS
            ) from exc
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return message_id


class InApp:
    """In-app notifications are the rows themselves: delivering one is marking it sent."""

    def send(self, message: Outgoing) -> str | None:
        """Nothing to transmit."""
        return None


def providers_from_settings(config: NotifySettings) -> dict[str, Provider]:
    """The configured channels; messages for one missing here are set aside as unconfigured."""
    providers: dict[str, Provider] = {Channel.IN_APP: InApp()}
    sms, email = sms_setup(config), email_setup(config)
    if sms.configured:
        providers[Channel.SMS] = TwilioSms(config)
    else:
        log.warning("%s", sms.reason)
    if email.configured:
        providers[Channel.EMAIL] = SmtpEmail(config)
    else:
        log.warning("%s", email.reason)
    return providers
