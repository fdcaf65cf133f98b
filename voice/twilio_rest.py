"""Twilio's REST API for placing, transferring and hanging up calls (base URL configurable)."""

from __future__ import annotations

import logging

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from core.config import Settings
from voice.security import public_url

logger = logging.getLogger(__name__)

REST_TIMEOUT_SECONDS = 10
# How long staff's phone rings on a transfer before the caller is offered a callback instead.
TRANSFER_RING_SECONDS = 20
DIAL_STATUS_PATH = "/dial-status"
AMD_STATUS_PATH = "/amd-status"


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
        twiml = transfer_twiml(number, public_url(self.settings, DIAL_STATUS_PATH), say=say)
        self.client.calls(call_sid).update(twiml=twiml)

    def say_and_hang_up(self, call_sid: str, text: str) -> None:
        """Replace the call's TwiML with a short message, then hang up."""
        self.client.calls(call_sid).update(twiml=say_twiml(text))

    def place_call(self, *, to: str, answer_url: str, status_callback: str) -> str:
        """Place an outbound call from TWILIO_PHONE_NUMBER; returns its CallSid.

        Answering-machine detection runs asynchronously, so a person is greeted by the agent
        at once; on a machine Twilio reports at the end of its greeting (after the beep), to
        AMD_STATUS_PATH, and the call then leaves its short message there.
        """
        call = self.client.calls.create(
            to=to,
            from_=self.settings.twilio_phone_number,
            url=answer_url,
            status_callback=status_callback,
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            machine_detection="DetectMessageEnd",
            async_amd="true",
            async_amd_status_callback=public_url(self.settings, AMD_STATUS_PATH),
            async_amd_status_callback_method="POST",
        )
        return str(call.sid)


def stream_twiml(stream_url: str, token: str) -> str:
    """The answer: connect the call's audio to our media stream, carrying the stream token."""
    response = VoiceResponse()
    response.connect().stream(url=stream_url).parameter(name="token", value=token)
    return str(response)


def transfer_twiml(number: str, action_url: str, *, say: str = "") -> str:
    """Ring staff for a while; Twilio then reports how the <Dial> ended to `action_url`
    (where an unanswered transfer becomes a callback request)."""
    response = VoiceResponse()
    if say:
        response.say(say)
    response.dial(number, timeout=TRANSFER_RING_SECONDS, action=action_url, method="POST")
    return str(response)


def say_twiml(text: str) -> str:
    """A short spoken answer followed by hanging up."""
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


def message_twiml(text: str) -> str:
    """A reply to an incoming text."""
    response = MessagingResponse()
    response.message(text)
    return str(response)


def redirect_twiml(url: str) -> str:
    """Ask Twilio to fetch the call's instructions again from `url`."""
    response = VoiceResponse()
    response.redirect(url, method="POST")
    return str(response)


def hang_up_twiml() -> str:
    """End the call without a word."""
    response = VoiceResponse()
    response.hangup()
    return str(response)
