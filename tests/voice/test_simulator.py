"""The built-in simulator: with no OpenAI key, a simulated call books a visit end to end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select

from core.models import Appointment, Call, ConversationLog
from tests.services.world import build_world
from tests.voice.fakes import idle, twiml_verbs
from tests.voice.stack import INTERNAL_TOKEN, open_factory, voice_stack
from voice.simulate_call import report, simulate_call


def test_a_simulated_call_verifies_checks_and_books_with_no_openai_key(sqlite_url: str) -> None:
    factory = open_factory(sqlite_url)
    world = build_world(factory, datetime.now(UTC))

    async def scenario() -> str:
        async with voice_stack(
            sqlite_url,
            idle,
            openai_api_key="",
            app_config={"SIMULATED": True, "SIMULATOR_PACE": 0.1},
        ) as stack:
            result = await simulate_call(stack.settings, stack.base, speed=20, timeout=30)
            assert result.answered and result.audio_ms > 0 and result.marks > 0
            assert stack.realtime.sessions == []  # the real-API stand-in was never used
            assert stack.rest.requests == []  # nothing sent to Twilio for a simulated call
            return report(stack.settings, result.call_sid)

    printed = asyncio.run(scenario())

    with factory() as session:
        call = session.scalar(select(Call))
        assert call is not None
        assert (call.simulated, call.verified, call.outcome) == (True, True, "booked")
        assert call.status == "completed" and call.duration_seconds is not None
        appointment = session.scalar(select(Appointment))
        assert appointment is not None and appointment.call_id == call.id
        assert appointment.patient_id == world.patient_id
        tools = session.scalars(
            select(ConversationLog.tool_name)
            .where(ConversationLog.role == "tool")
            .order_by(ConversationLog.position)
        ).all()
        assert tools == [
            "verify_patient",
            "get_assigned_nurse",
            "check_availability",
            "book_appointment",
            "end_call",
        ]
    assert "(simulated)" in printed and "[book_appointment: ok]" in printed


def test_the_dashboard_can_place_a_simulated_call_with_no_credentials_at_all(
    sqlite_url: str,
) -> None:
    factory = open_factory(sqlite_url)
    build_world(factory, datetime.now(UTC))
    no_credentials = {"openai_api_key": "", "twilio_account_sid": "", "twilio_auth_token": ""}

    async def scenario() -> str:
        async with voice_stack(
            sqlite_url,
            idle,
            app_config={"SIMULATOR_PACE": 0.1, "SIMULATOR_SPEED": 20},
            **no_credentials,
        ) as stack:
            url = stack.base + "/simulate-call"
            assert (await stack.http.post(url)).status_code == 401
            # Still no unsigned webhooks: the simulator signs with a key derived from SECRET_KEY.
            _, answer = await stack.incoming_call(from_number="+12025550101", signature=None)
            assert answer.status == 403
            placed = await stack.http.post(
                url, headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"}
            )
            assert placed.status_code == 202, placed.text
            call_sid = placed.json()["call_sid"]
            for _ in range(500):
                with factory() as session:
                    call = session.scalar(select(Call).where(Call.call_sid == call_sid))
                    if call is not None and call.ended_at is not None:
                        break
                await asyncio.sleep(0.02)
            return call_sid

    call_sid = asyncio.run(scenario())
    with factory() as session:
        call = session.scalar(select(Call).where(Call.call_sid == call_sid))
        assert call is not None
        assert (call.simulated, call.outcome) == (True, "booked")


def test_with_twilio_but_no_openai_key_our_calls_are_simulated_and_real_callers_are_not(
    sqlite_url: str,
) -> None:
    factory = open_factory(sqlite_url)
    world = build_world(factory, datetime.now(UTC))

    async def scenario() -> tuple[str, str, str]:
        # Twilio fully configured (make_settings), no OpenAI key, nothing forced.
        async with voice_stack(
            sqlite_url,
            idle,
            openai_api_key="",
            app_config={"SIMULATOR_PACE": 0.1, "SIMULATOR_SPEED": 20},
        ) as stack:
            # `make simulate-call`: the simulator books, and Twilio is never asked anything.
            result = await simulate_call(stack.settings, stack.base, speed=20, timeout=30)
            assert result.answered and result.audio_ms > 0
            assert stack.rest.requests == []
            # The dashboard's "Simulate call" button is allowed too.
            placed = await stack.http.post(
                stack.base + "/simulate-call",
                headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
            )
            assert placed.status_code == 202, placed.text
            button_sid = placed.json()["call_sid"]
            # A real caller (signed by Twilio) meets no fake agent: an apology, a callback.
            real_sid, real = await stack.call_in("+12025550177")
            await real.wait_closed(timeout=10)
            [update] = stack.rest.updates(real_sid)
            [(verb, said, _), *_] = twiml_verbs(update["Twiml"])
            assert verb == "Say" and said.startswith("Sorry")
            for _ in range(1500):
                with factory() as session:
                    ended = session.scalar(select(Call.ended_at).where(Call.call_sid == button_sid))
                if ended is not None:
                    break
                await asyncio.sleep(0.02)
            return result.call_sid, button_sid, real_sid

    simulated_sid, button_sid, real_sid = asyncio.run(scenario())

    with factory() as session:
        for sid in (simulated_sid, button_sid):
            call = session.scalar(select(Call).where(Call.call_sid == sid))
            assert call is not None
            assert (call.simulated, call.outcome, call.status) == (True, "booked", "completed")
        real = session.scalar(select(Call).where(Call.call_sid == real_sid))
        assert real is not None
        assert (real.simulated, real.outcome) == (False, "callback_requested")
        booked = session.scalars(select(Appointment.patient_id)).all()
        assert booked == [world.patient_id, world.patient_id]
