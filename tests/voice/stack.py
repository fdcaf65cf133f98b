"""The voice service running for real on loopback, wired to the fake Twilio and Realtime."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.db import make_engine, make_session_factory
from core.models import ConversationLog
from tests.voice.fakes import (
    Answer,
    FakeRealtime,
    FakeTwilioCall,
    FakeTwilioRest,
    Script,
    parse_stream_twiml,
    served,
    sign,
)
from voice import create_app

PUBLIC_BASE = "https://voice.example.test"
PUBLIC_STREAM_URL = "wss://voice.example.test/media-stream"
AUTH_TOKEN = "twilio-auth-token-for-tests"
ACCOUNT_SID = "AC" + "1" * 32
PRACTICE_NUMBER = "+12025550199"
INTERNAL_TOKEN = "internal-token-for-tests"


def fakes_env(realtime_url: str, twilio_url: str) -> dict[str, str]:
    """Settings pointing a product process at the fake Realtime server and Twilio REST API."""
    return {
        "PUBLIC_BASE_URL": PUBLIC_BASE,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": realtime_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": PRACTICE_NUMBER,
        "TWILIO_API_BASE_URL": twilio_url,
    }


async def ring(http: httpx.AsyncClient, call_sid: str, caller: str) -> httpx.Response:
    """Twilio's signed /incoming-call for a new inbound call from `caller`, posted to `http`."""
    form = {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "From": caller,
        "To": PRACTICE_NUMBER,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    signature = sign(AUTH_TOKEN, PUBLIC_BASE + "/incoming-call", form)
    return await http.post("/incoming-call", data=form, headers={"X-Twilio-Signature": signature})


_ENGINES: list[Engine] = []


def open_factory(database_url: str) -> sessionmaker[Session]:
    """A session factory on `database_url`; its engine is disposed after the test."""
    engine = make_engine(database_url)
    _ENGINES.append(engine)
    return make_session_factory(engine)


def dispose_engines() -> None:
    """Dispose every engine `open_factory` opened."""
    while _ENGINES:
        _ENGINES.pop().dispose()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings pointing every outside service at loopback fakes."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": "secret-key-for-tests",
        "public_base_url": PUBLIC_BASE,
        "internal_api_token": INTERNAL_TOKEN,
        "openai_api_key": "sk-test",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_phone_number": PRACTICE_NUMBER,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Stack:
    """The running service and its fakes."""

    settings: Settings
    base: str
    rest: FakeTwilioRest
    realtime: FakeRealtime
    sessions: sessionmaker[Session]
    http: httpx.AsyncClient

    @property
    def ws_url(self) -> str:
        """Where the fake Twilio connects (the real socket, not the public URL)."""
        return self.base.replace("http://", "ws://") + "/media-stream"

    async def post_twilio(
        self, path: str, params: dict[str, str], *, signature: str | None = "valid"
    ) -> httpx.Response:
        """A webhook as Twilio sends it: form-encoded, signed over the public URL."""
        headers = {}
        if signature == "valid":
            headers["X-Twilio-Signature"] = sign(AUTH_TOKEN, PUBLIC_BASE + path, params)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        return await self.http.post(self.base + path, data=params, headers=headers)

    async def incoming_call(
        self,
        *,
        from_number: str,
        call_sid: str | None = None,
        direction: str = "inbound",
        to_number: str = PRACTICE_NUMBER,
        signature: str | None = "valid",
    ) -> tuple[str, Answer]:
        """POST /incoming-call; returns the CallSid and the parsed answer."""
        call_sid = call_sid or "CA" + uuid.uuid4().hex
        response = await self.post_twilio(
            "/incoming-call",
            {
                "CallSid": call_sid,
                "AccountSid": ACCOUNT_SID,
                "From": from_number,
                "To": to_number,
                "CallStatus": "ringing",
                "Direction": direction,
            },
            signature=signature,
        )
        answer = Answer(response.status_code, response.text)
        if response.status_code == 200 and "<Stream" in response.text:
            answer.stream_url, answer.params = parse_stream_twiml(response.text)
        return call_sid, answer

    async def open_stream(
        self,
        call_sid: str,
        params: dict[str, str],
        *,
        signed: bool = True,
        speed: float = 10.0,
        audio_byte: int = 0x7F,
        stream_url: str = PUBLIC_STREAM_URL,
    ) -> FakeTwilioCall:
        """Connect a fake Twilio media stream to `stream_url`'s path (as the TwiML gives it)
        and start it; hang-ups/transfers stop it."""
        ws_url = self.base.replace("http://", "ws://") + urlsplit(stream_url).path
        call = FakeTwilioCall(ws_url, speed=speed, audio_byte=audio_byte)
        signature = sign(AUTH_TOKEN, stream_url, {})
        await call.connect(signature if signed else None)

        async def ended(form: dict[str, str]) -> None:
            if form.get("Status") == "completed" or "Twiml" in form:
                await call.stop()

        self.rest.on_update[call_sid] = ended
        await call.start(call_sid, params)
        return call

    async def call_in(self, from_number: str, **kwargs: Any) -> tuple[str, FakeTwilioCall]:
        """An inbound call: webhook, then the media stream with the token from the TwiML."""
        call_sid, answer = await self.incoming_call(from_number=from_number)
        assert answer.status == 200, answer.body
        kwargs.setdefault("stream_url", answer.stream_url)
        return call_sid, await self.open_stream(call_sid, answer.params, **kwargs)


@contextlib.asynccontextmanager
async def voice_stack(
    database_url: str, script: Script, *, app_config: dict[str, Any] | None = None, **overrides: Any
) -> AsyncIterator[Stack]:
    """Start the fakes and the voice service (production server settings) for one test."""
    rest = FakeTwilioRest()
    engine: Engine = make_engine(database_url)
    try:
        async with FakeRealtime(script) as realtime, served(rest.app) as rest_base:
            settings = make_settings(
                database_url,
                **{
                    "openai_base_url": realtime.base_url,
                    "twilio_api_base_url": rest_base,
                    **overrides,
                },
            )
            app = create_app({"TESTING": True, "SETTINGS": settings, **(app_config or {})})
            async with served(app) as base, httpx.AsyncClient(timeout=10) as http:
                app.config["SELF_URL"] = base  # where the service reaches itself (simulator)
                yield Stack(
                    settings=settings,
                    base=base,
                    rest=rest,
                    realtime=realtime,
                    sessions=make_session_factory(engine),
                    http=http,
                )
    finally:
        engine.dispose()


def stored_lines(factory: sessionmaker[Session]) -> list[ConversationLog]:
    """Every conversation line stored, in conversation order."""
    with factory() as session:
        return list(
            session.scalars(
                select(ConversationLog).order_by(ConversationLog.position, ConversationLog.id)
            )
        )


def visit_day() -> date:
    """A weekday at least two days ahead in New York (the nurse works Mon-Fri 09-17)."""
    day = datetime.now(ZoneInfo("America/New_York")).date() + timedelta(days=2)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def replace_settings(settings: Settings, **changes: Any) -> Settings:
    """A copy of `settings` with some values changed."""
    return dataclasses.replace(settings, **changes)
