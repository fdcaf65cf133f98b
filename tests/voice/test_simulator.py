"""The built-in simulator: with no OpenAI key, a simulated call books, moves or cancels a visit
end to end, as a demo patient the database has."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Appointment, Call, ConversationLog
from core.services.booking import book_appointment
from tests.services.world import ACTOR, NY, build_world, local
from tests.voice.fakes import idle, twiml_verbs
from tests.voice.stack import INTERNAL_TOKEN, open_factory, voice_stack
from voice.simulate_call import plan_call, report, simulate_call
from voice.simulator import Intent

JOHN = "+12025550101"


def _weekday_ahead(days: int) -> date:
    day = datetime.now(ZoneInfo(NY)).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _tools_used(factory: sessionmaker[Session], call_id: int) -> list[str]:
    with factory() as session:
        return list(
            session.scalars(
                select(ConversationLog.tool_name)
                .where(ConversationLog.call_id == call_id, ConversationLog.role == "tool")
                .order_by(ConversationLog.position)
            )
        )


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
            planned = plan_call(stack.settings, from_number=JOHN)
            assert planned.description == (
                "Calling as John Smith (+12025550101), who has 0 upcoming visits and will ask"
                " to book a nurse visit."
            )
            result = await simulate_call(
                stack.settings, stack.base, planned=planned, speed=20, timeout=30
            )
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
            "list_appointments",
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
            planned = plan_call(stack.settings, from_number=JOHN)
            result = await simulate_call(
                stack.settings, stack.base, planned=planned, speed=20, timeout=30
            )
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
        planned = session.scalar(select(Call).where(Call.call_sid == simulated_sid))
        assert planned is not None
        assert (planned.simulated, planned.outcome, planned.status) == (True, "booked", "completed")
        button = session.scalar(select(Call).where(Call.call_sid == button_sid))
        assert button is not None and (button.simulated, button.status) == (True, "completed")
        real = session.scalar(select(Call).where(Call.call_sid == real_sid))
        assert real is not None
        assert (real.simulated, real.outcome) == (False, "callback_requested")
        first = session.scalar(select(Appointment).order_by(Appointment.id))
        assert first is not None and first.patient_id == world.patient_id
    # The button's caller is a demo patient at random: John (who now has a visit, so he may
    # book another, move it or cancel it) or Sarah (who books). The agent did what was asked.
    action = {
        "booked": "book_appointment",
        "rescheduled": "reschedule_appointment",
        "cancelled": "cancel_appointment",
    }
    assert button.outcome in action
    tools = _tools_used(factory, button.id)
    assert tools[:2] == ["verify_patient", "list_appointments"]
    assert tools[-2:] == [action[button.outcome], "end_call"]


@pytest.mark.parametrize(
    ("intent", "outcome", "last_tools"),
    [
        (Intent.MOVE, "rescheduled", ["check_availability", "reschedule_appointment"]),
        (Intent.CANCEL, "cancelled", ["cancel_appointment"]),
        (
            Intent.BOOK,
            "booked",
            ["get_assigned_nurse", "check_availability", "book_appointment"],
        ),
    ],
)
def test_the_agent_mentions_a_visit_already_booked_and_does_what_the_caller_asks(
    sqlite_url: str, intent: Intent, outcome: str, last_tools: list[str]
) -> None:
    factory = open_factory(sqlite_url)
    now = datetime.now(UTC)
    world = build_world(factory, now)
    visit_day = _weekday_ahead(3)
    with factory() as session:
        existing = book_appointment(
            session,
            patient_id=world.patient_id,
            start=local(visit_day, 11),
            actor=ACTOR,
            now=now,
        ).id
        session.commit()

    async def scenario() -> str:
        async with voice_stack(
            sqlite_url,
            idle,
            openai_api_key="",
            app_config={"SIMULATED": True, "SIMULATOR_PACE": 0.1},
        ) as stack:
            planned = plan_call(stack.settings, from_number=JOHN, intent=intent)
            assert "who has 1 upcoming visit and will ask" in planned.description
            result = await simulate_call(
                stack.settings, stack.base, planned=planned, speed=20, timeout=30
            )
            assert result.answered
            return result.call_sid

    call_sid = asyncio.run(scenario())
    with factory() as session:
        call = session.scalar(select(Call).where(Call.call_sid == call_sid))
        assert call is not None and (call.verified, call.outcome) == (True, outcome)
        said = session.scalars(
            select(ConversationLog.text).where(
                ConversationLog.call_id == call.id, ConversationLog.role == "assistant"
            )
        ).all()
        visits = session.scalars(select(Appointment).order_by(Appointment.id)).all()
        statuses = [(a.id == existing, a.status) for a in visits]
    assert any("already have a phone visit" in line for line in said), said
    tools = _tools_used(factory, call.id)
    assert tools[:2] == ["verify_patient", "list_appointments"]
    assert tools[2:] == [*last_tools, "end_call"]
    if intent == Intent.CANCEL:
        assert statuses == [(True, "cancelled")]
    elif intent == Intent.MOVE:  # the visit moved to a later day: the old one is replaced
        assert statuses[0] == (True, "cancelled") and statuses[1][1] == "scheduled"
        assert visits[1].start_at.astimezone(ZoneInfo(NY)).date() > visit_day
    else:  # kept, and another booked on a later day
        assert statuses == [(True, "scheduled"), (False, "scheduled")]


def test_the_caller_is_a_demo_patient_the_database_has_and_a_stranger_is_not_verified(
    sqlite_url: str,
) -> None:
    factory = open_factory(sqlite_url)
    build_world(factory, datetime.now(UTC))  # John and Sarah of the demo patients, no visits

    async def scenario() -> str:
        async with voice_stack(
            sqlite_url,
            idle,
            openai_api_key="",
            app_config={"SIMULATED": True, "SIMULATOR_PACE": 0.1},
        ) as stack:
            drawn = {plan_call(stack.settings).from_number for _ in range(60)}
            assert drawn == {JOHN, "+12025550102"}  # never a demo patient the world lacks
            planned = plan_call(stack.settings, from_number="+12025559999", intent=Intent.MOVE)
            assert planned.description == (
                "Calling as +12025559999, who is no demo patient, will ask to move their next"
                " visit."
            )
            result = await simulate_call(
                stack.settings, stack.base, planned=planned, speed=20, timeout=30
            )
            return result.call_sid

    call_sid = asyncio.run(scenario())
    with factory() as session:
        call = session.scalar(select(Call).where(Call.call_sid == call_sid))
        assert call is not None
        assert (call.verified, call.outcome) == (False, "callback_requested")
        assert session.scalar(select(Appointment)) is None
    assert _tools_used(factory, call.id) == ["verify_patient", "transfer_to_staff", "end_call"]
