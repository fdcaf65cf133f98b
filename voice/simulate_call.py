"""Place a simulated call against a running voice service: `python -m voice.simulate_call`.

This plays Twilio's part (a signed /incoming-call webhook, then a signed media stream with
20 ms frames and marks echoed as a phone would play them); with no OPENAI_API_KEY the
service's built-in simulator plays the agent and the demo caller. It first says who calls
(a demo patient of the database, at random unless --from-number names one) and what they will
ask for (a visit, or to move or cancel one they have); at the end it prints what the call
recorded: its outcome, the transcript and any appointment booked, moved or cancelled.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import random
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import httpx
import websockets
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from core.config import Settings, with_shared_secrets
from core.db import make_engine, make_session_factory
from core.models import Appointment
from core.seed import PATIENTS
from core.services import calls
from core.services.people import find_patient_by_phone
from voice.security import (
    media_stream_url,
    public_url,
    signing_token,
    simulator_signing_token,
)
from voice.simulator import CallerPlan, Intent

FRAME_MS = 20


@dataclass
class SimulatedCallResult:
    """What the Twilio side saw."""

    call_sid: str
    answered: bool
    plan: CallerPlan | None = None
    audio_ms: float = 0.0
    marks: int = 0
    events: list[str] = field(default_factory=list)


def new_call_sid() -> str:
    """A CallSid for a simulated call (34 characters, like Twilio's)."""
    return "CAsim" + uuid.uuid4().hex[:29]


@dataclass(frozen=True)
class PlannedCall:
    """Who the simulated caller is, what they will ask for, and what the person at the
    terminal is told about it."""

    plan: CallerPlan
    from_number: str
    description: str


def plan_call(
    settings: Settings, *, from_number: str | None = None, intent: Intent | None = None
) -> PlannedCall:
    """Pick the caller (a demo patient the database has, at random unless `from_number` says)
    and what they want: a patient with upcoming visits may want one moved or cancelled."""
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            present = [
                row[3] for row in PATIENTS if find_patient_by_phone(session, row[3]) is not None
            ]
            phone = from_number or (random.choice(present) if present else PATIENTS[0][3])
            patient = find_patient_by_phone(session, phone)
            visits = (
                len(calls.upcoming_appointments(session, patient.id, now=datetime.now(UTC)))
                if patient is not None
                else 0
            )
    finally:
        engine.dispose()
    if intent is None:
        intent = random.choice(list(Intent)) if visits else Intent.BOOK
    plan = CallerPlan.for_phone(phone, intent)
    who = f"{plan.full_name} ({phone})" if plan.known else f"{phone}, who is no demo patient,"
    has = f"has {visits} upcoming visit{'s' if visits != 1 else ''}" if plan.known else ""
    description = f"Calling as {who}{', who ' + has + ' and' if has else ''} will ask to "
    return PlannedCall(plan, phone, description + intent.phrase + ".")


def _sign(settings: Settings, url: str, params: dict[str, str]) -> dict[str, str]:
    if settings.openai_api_key:
        # Trying the real agent: signed as Twilio signs (or as the simulator, without Twilio).
        token = signing_token(settings, simulated=not settings.twilio_account_sid)
    else:
        # The service simulates only calls signed with the simulator's secret, never Twilio's.
        token = simulator_signing_token(settings)
    if not token:
        return {}  # accepted only when ALLOW_UNSIGNED_WEBHOOKS is set on the service
    validator = RequestValidator(token)
    return {"X-Twilio-Signature": validator.compute_signature(url, params)}


async def simulate_call(
    settings: Settings,
    voice_url: str,
    *,
    planned: PlannedCall | None = None,
    speed: float = 1.0,
    timeout: float = 120.0,
    call_sid: str | None = None,
) -> SimulatedCallResult:
    """Call the service as Twilio would (as `planned`, or a demo caller picked now) and stay
    on the line until it hangs up."""
    if planned is None:
        planned = await asyncio.to_thread(plan_call, settings)
    call_sid = call_sid or new_call_sid()
    params = {
        "CallSid": call_sid,
        "AccountSid": settings.twilio_account_sid or "ACsimulated",
        "From": planned.from_number,
        "To": settings.twilio_phone_number or "+10000000000",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            voice_url.rstrip("/") + "/incoming-call",
            data=params,
            headers=_sign(settings, public_url(settings, "/incoming-call"), params),
        )
    if response.status_code != 200 or "<Stream" not in response.text:
        return SimulatedCallResult(
            call_sid, answered=False, events=[f"HTTP {response.status_code}"]
        )
    stream = ElementTree.fromstring(response.text).find("./Connect/Stream")
    assert stream is not None
    custom = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    result = SimulatedCallResult(call_sid, answered=True, plan=planned.plan)
    # As Twilio does: connect to the TwiML's stream path (it may name the instance that
    # answered), signed over that path at the public URL.
    path = urlsplit(stream.get("url", "")).path
    ws_url = voice_url.rstrip("/").replace("http", "ws", 1) + path
    headers = _sign(settings, media_stream_url(settings, path), {})
    async with websockets.connect(ws_url, additional_headers=headers) as ws:
        await asyncio.wait_for(_talk(ws, call_sid, custom, speed, result), timeout)
    return result


async def _talk(
    ws: Any, call_sid: str, custom: dict[str, str], speed: float, result: SimulatedCallResult
) -> None:
    assert result.plan is not None
    # The simulated caller's "voice": each frame carries who calls and what for.
    voice = base64.b64encode(result.plan.cue(160)).decode()
    stream_sid = "MZsim" + uuid.uuid4().hex[:27]
    await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    start = {
        "streamSid": stream_sid,
        "callSid": call_sid,
        "customParameters": custom,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    await ws.send(json.dumps({"event": "start", "streamSid": stream_sid, "start": start}))
    queue: list[tuple[str, Any]] = []  # the playout buffer: ("audio", ms) or ("mark", name)

    async def caller_audio() -> None:
        chunk = 0
        while True:
            chunk += 1
            media = {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(chunk * FRAME_MS),
                "payload": voice,
            }
            await ws.send(json.dumps({"event": "media", "streamSid": stream_sid, "media": media}))
            await asyncio.sleep(FRAME_MS / 1000)

    async def playout() -> None:
        while True:
            await asyncio.sleep(FRAME_MS / 1000)
            budget = FRAME_MS * speed
            while queue:
                kind, value = queue[0]
                if kind == "mark":
                    queue.pop(0)
                    mark = {"event": "mark", "streamSid": stream_sid, "mark": {"name": value}}
                    await ws.send(json.dumps(mark))
                    continue
                if budget <= 0:
                    break
                played = min(budget, value)
                budget -= played
                if played >= value:
                    queue.pop(0)
                else:
                    queue[0] = ("audio", value - played)

    tasks = [asyncio.create_task(caller_audio()), asyncio.create_task(playout())]
    try:
        async for frame in ws:
            message = json.loads(frame)
            event = message.get("event")
            result.events.append(str(event))
            if event == "media":
                ms = len(base64.b64decode(message["media"]["payload"])) / 8
                result.audio_ms += ms
                queue.append(("audio", ms))
            elif event == "mark":
                result.marks += 1
                queue.append(("mark", message["mark"]["name"]))
            elif event == "clear":
                names = [value for kind, value in queue if kind == "mark"]
                queue.clear()
                for name in names:
                    mark = {"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}
                    await ws.send(json.dumps(mark))
    except websockets.ConnectionClosed:
        pass
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


def report(settings: Settings, call_sid: str) -> str:
    """What the database recorded for the call, for a person to read."""
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            call = calls.get_call_by_sid(session, call_sid)
            if call is None:
                return "No call was recorded."
            lines = [
                f"Call {call.id}: outcome {call.outcome or 'unknown'}"
                f"{' (simulated)' if call.simulated else ''}, verified: {call.verified}"
            ]
            for line in calls.conversation(session, call.id):
                if line.role == "tool":
                    verdict = (line.tool_result or {}).get("error", "ok")
                    lines.append(f"  [{line.tool_name}: {verdict}]")
                else:
                    lines.append(f"  {line.role}: {line.text}")
            booked = session.scalars(select(Appointment).where(Appointment.call_id == call.id))
            for appointment in booked:
                lines.append(
                    f"Appointment {appointment.id} booked: {appointment.start_at.isoformat()}"
                )
            for line in calls.conversation(session, call.id):
                result = line.tool_result or {}
                if line.role == "tool" and result.get("rescheduled"):
                    lines.append(f"Appointment {result['appointment_id']} now: {result['start']}")
                elif line.role == "tool" and result.get("cancelled"):
                    lines.append(f"Appointment {result['appointment_id']} cancelled")
            return "\n".join(lines)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The same generated key (and derived tokens) as the running services when none is set.
    settings = with_shared_secrets(Settings.from_env())
    parser.add_argument("--voice-url", default=settings.voice_service_url)
    parser.add_argument(
        "--from-number", default=None, help="the caller's number (default: a demo patient)"
    )
    parser.add_argument(
        "--intent",
        choices=[intent.name.lower() for intent in Intent],
        default=None,
        help="what the caller wants (default: a visit, or to move or cancel one they have)",
    )
    parser.add_argument("--speed", type=float, default=1.0, help="playout speed (1 = real time)")
    args = parser.parse_args(argv)
    intent = Intent[args.intent.upper()] if args.intent else None
    planned = plan_call(settings, from_number=args.from_number, intent=intent)
    _say(planned.description)
    result = asyncio.run(simulate_call(settings, args.voice_url, planned=planned, speed=args.speed))
    if not result.answered:
        _say(f"The voice service did not answer the call ({', '.join(result.events)}).")
        _say("Is it running (make run), with the same SECRET_KEY?")
        return 1
    printed = report(settings, result.call_sid)
    _say(printed)
    if not settings.openai_api_key and "(simulated)" not in printed.splitlines()[0]:
        _say("The service did not simulate the call: does it have an OPENAI_API_KEY?")
        return 1
    return 0


def _say(text: str) -> None:
    """Command output for the person at the terminal (not a log line)."""
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
