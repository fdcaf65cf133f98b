"""Twilio's REST API for placing, transferring and hanging up calls (base URL configurable)."""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape, quoteattr

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from core.config import Settings

logger = logging.getLogger(__name__)

REST_TIMEOUT_SECONDS = 10


class TwilioRest:
    """A thin, synchronous wrapper: call it from a worker thread (asyncio.to_thread)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """The Twilio client, created on first use, pointed at TWILIO_API_BASE_URL."""
        if self._client is None:
            if not self.settings.twilio_account_sid or not self.settings.twilio_auth_token:
                raise RuntimeError("Twilio credentials are not configured")
            client = Client(
                self.settings.twilio_account_sid,
                self.settings.twilio_auth_token,
                http_client=TwilioHttpClient(timeout=REST_TIMEOUT_SECONDS),
            )
            client.api.base_url = self.settings.twilio_api_base_url
            self._client = client
        return self._client

    def hang_up(self, call_sid: str) -> None:
        """End the live call."""
        self.client.calls(call_sid).update(status="completed")

    def transfer(self, call_sid: str, number: str, *, say: str = "") -> None:
        """Replace the call's TwiML with a <Dial> to `number` (ends the media stream)."""
        spoken = f"<Say>{escape(say)}</Say>" if say else ""
        twiml = f"<Response>{spoken}<Dial>{escape(number)}</Dial></Response>"
        self.client.calls(call_sid).update(twiml=twiml)

    def say_and_hang_up(self, call_sid: str, text: str) -> None:
        """Replace the call's TwiML with a short message, then hang up."""
        self.client.calls(call_sid).update(twiml=say_twiml(text))

    def place_call(self, *, to: str, answer_url: str, status_callback: str) -> str:
        """Place an outbound call from TWILIO_PHONE_NUMBER; returns its CallSid."""
        call = self.client.calls.create(
            to=to,
            from_=self.settings.twilio_phone_number,
            url=answer_url,
            status_callback=status_callback,
            status_callback_event=["initiated", "ringing", "answered", "completed"],
        )
        return str(call.sid)


def stream_twiml(stream_url: str, token: str) -> str:
    """The answer: connect the call's audio to our media stream, carrying the stream token."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(stream_url)}>"
        f'<Parameter name="token" value={quoteattr(token)}/>'
        "</Stream></Connect></Response>"
    )


def say_twiml(text: str) -> str:
    """A short spoken answer followed by hanging up."""
    return f"<Response><Say>{escape(text)}</Say><Hangup/></Response>"
