"""The agent's tools against a real database (no sockets): arguments, errors, idempotency."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from openai.types.realtime import RealtimeFunctionTool
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.models import (
    Appointment,
    AppointmentKind,
    Call,
    CallbackRequest,
    CancelReason,
    ConversationLog,
    Nurse,
    PatientNurseAssignment,
)
from core.scheduling import PartOfDay
from core.services import calls
from core.services.people import create_patient, update_nurse
from tests.services.world import ACTOR, NY, assign_backup, away, build_world
from voice.tools import TOOL_DEFINITIONS, CallContext, ToolBox

JOHN = "+12025550101"


def _toolbox(factory: sessionmaker[Session], phone: str = JOHN, **options: object) -> ToolBox:
    with factory() as session:
        call = calls.answer_call(
            session,
            call_sid="CA" + phone[-4:] + "0" * 28,
            from_number=phone,
            to_number="+12025550199",
            outbound=False,
            now=datetime.now(UTC),
            stream_nonce="n",
        )
        session.commit()
        context = CallContext(call.id, call.call_sid or "", "inbound", phone, "+12025550199")
    return ToolBox(factory, context, **options)  # type: ignore[arg-type]


def _run(box: ToolBox, name: str, tool_call_id: str = "call_1", **arguments: object) -> dict:
    return box.run_sync(name, dict(arguments), tool_call_id, position=0)


def _appointments(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(Appointment)) or 0


def _next_weekday() -> date:
    day = datetime.now(ZoneInfo(NY)).date() + timedelta(days=2)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def test_a_patient_without_a_nurse_gets_one_assigned_by_the_agent(
    session_factory: sessionmaker[Session],
) -> None:
    now = datetime.now(UTC)
    build_world(session_factory, now)
    with session_factory() as session:
        create_patient(
            session, actor=ACTOR, now=now, first_name="Ann", last_name="Lee",
            date_of_birth=date(1970, 1, 2), phone="+12025550177", time_zone=NY,
        )  # fmt: skip
        session.commit()
    box = _toolbox(session_factory, "+12025550177")
    assert _run(box, "verify_patient", date_of_birth="1970-01-02", full_name="ann lee")["verified"]
    result = _run(box, "get_assigned_nurse")
    assert result["newly_assigned"] is True and result["nurse_name"]
    with session_factory() as session:
        assignment = session.scalar(
            select(PatientNurseAssignment).order_by(PatientNurseAssignment.id.desc())
        )
        assert assignment is not None and assignment.source == "agent"
    assert _run(box, "get_assigned_nurse")["newly_assigned"] is False


def test_a_wrong_name_fails_verification_even_with_the_right_birth_date(
    session_factory: sessionmaker[Session],
) -> None:
    build_world(session_factory, datetime.now(UTC))
    box = _toolbox(session_factory)
    failed = _run(box, "verify_patient", date_of_birth="1958-04-12", full_name="Sarah Johnson")
    assert failed["error"] == "verification_failed"
    assert _run(box, "verify_patient", date_of_birth="12/04/1958")["error"] == "invalid_argument"
    assert box.failed_attempts == 1  # a malformed date is not an attempt


def test_booking_is_idempotent_per_tool_call(session_factory: sessionmaker[Session]) -> None:
    build_world(session_factory, datetime.now(UTC))
    box = _toolbox(session_factory)
    _run(box, "verify_patient", date_of_birth="1958-04-12")
    start = f"{_next_weekday().isoformat()}T11:00"
    first = _run(box, "book_appointment", "call_7", start=start, duration_minutes=45)
    again = _run(box, "book_appointment", "call_7", start=start, duration_minutes=45)
    assert first["booked"] and again["appointment_id"] == first["appointment_id"]
    other = _run(box, "book_appointment", "call_8", start=start)
    assert other["error"] == "slot_unavailable"
    assert _appointments(session_factory) == 1
    with session_factory() as session:
        logged = session.scalars(select(ConversationLog.tool_name)).all()
        assert logged.count("book_appointment") == 3


def test_bad_arguments_return_recoverable_errors_and_write_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    build_world(session_factory, datetime.now(UTC))
    box = _toolbox(session_factory)
    _run(box, "verify_patient", date_of_birth="1958-04-12")
    day = _next_weekday().isoformat()
    cases = {
        ("book_appointment", "start", "2020-01-06T10:00"): "slot_unavailable",
        ("book_appointment", "start", f"{day} at ten"): "invalid_argument",
        ("book_appointment", "start", f"{day}T25:00"): "invalid_argument",
        ("book_appointment", "duration_minutes", "forty"): "invalid_argument",
        ("check_availability", "date", "2020-01-06"): "in_the_past",
        ("check_availability", "date", "2026-02-30"): "invalid_argument",
        ("cancel_appointment", "appointment_id", 4242): "not_found",
        ("cancel_appointment", "appointment_id", "abc"): "invalid_argument",
    }
    for (tool, field, value), code in cases.items():
        arguments: dict[str, object] = {field: value}
        if tool == "book_appointment" and field != "start":
            arguments["start"] = f"{day}T10:00"
        result = box.run_sync(tool, arguments, "c", 0)
        assert result["error"] == code, (tool, field, value, result)
        assert result["message"]
    assert _run(box, "no_such_tool")["error"] == "unknown_tool"
    assert _run(box, "list_appointments", surprise=1)["error"] == "invalid_argument"
    # 02:30 does not exist in New York on the spring-forward night.
    skipped = _run(box, "book_appointment", start="2027-03-14T02:30")
    assert skipped["error"] == "no_such_time"
    assert [n["start"] for n in skipped["nearest"]] == [
        "2027-03-14T01:45:00-05:00",
        "2027-03-14T03:00:00-04:00",
    ]
    assert "01:45 or 03:00" in skipped["message"]
    assert _appointments(session_factory) == 0


def test_transfer_waits_for_the_goodbye_when_a_staff_line_exists(
    session_factory: sessionmaker[Session],
) -> None:
    build_world(session_factory, datetime.now(UTC))
    box = _toolbox(session_factory, staff_phone_number="+12025550150", can_transfer=True)
    result = _run(box, "transfer_to_staff", reason="wants a person")
    assert result["transferring"] is True
    assert box.pending_action is not None and box.pending_action.number == "+12025550150"
    with session_factory() as session:
        call = session.get(Call, box.context.call_id)
        assert call is not None and call.outcome == "transferred"


def test_a_call_asking_for_a_person_twice_records_one_callback_request(
    session_factory: sessionmaker[Session],
) -> None:
    build_world(session_factory, datetime.now(UTC))
    box = _toolbox(session_factory)  # no staff line: a callback instead
    # However long the agent's reason, asking for a person never fails over its wording.
    first = _run(box, "transfer_to_staff", reason="wants a person " * 60)
    again = _run(box, "transfer_to_staff", "call_2", reason="still wants a person")
    assert first["callback_requested"] is True and again == first
    with session_factory() as session:
        [request] = session.scalars(select(CallbackRequest)).all()
        assert request.reason.startswith("wants a person") and len(request.reason) <= 500


def test_an_alternative_with_the_backup_nurse_can_be_booked_by_its_nurse_id(
    session_factory: sessionmaker[Session],
) -> None:
    now = datetime.now(UTC)
    world = build_world(session_factory, now)
    day = _next_weekday()
    with session_factory() as session:  # the primary nurse is away for the whole horizon
        away(session, world.nurse_id, day - timedelta(days=3), day + timedelta(days=120), now)
        session.commit()
    box = _toolbox(session_factory)
    _run(box, "verify_patient", date_of_birth="1958-04-12")
    start = f"{day.isoformat()}T10:00"
    unassigned = _run(box, "book_appointment", "c1", start=start, nurse_id=world.other_nurse_id)
    assert unassigned["error"] == "not_assigned"
    assert _run(box, "book_appointment", "c2", start=start, nurse_id="x")["error"] == (
        "invalid_argument"
    )
    with session_factory() as session:
        assign_backup(session, world.patient_id, world.other_nurse_id, now)
        session.commit()
        backup_name = session.get(Nurse, world.other_nurse_id).display_name  # type: ignore[union-attr]

    answer = _run(box, "check_availability", date=day.isoformat(), time="10:00")
    assert answer["available"] is False and answer["alternatives"]
    offered = answer["alternatives"][0]
    assert offered["nurse_id"] == world.other_nurse_id and offered["nurse_name"] == backup_name
    booked = _run(
        box, "book_appointment", "c3", start=offered["start"][:16], nurse_id=offered["nurse_id"]
    )
    assert booked["booked"] and booked["nurse_name"] == backup_name
    with session_factory() as session:
        nurses = session.scalars(select(Appointment.nurse_id)).all()
    assert nurses == [world.other_nurse_id]  # the refused attempts wrote nothing


def test_alternatives_keep_to_the_callers_stated_preferences(
    session_factory: sessionmaker[Session],
) -> None:
    build_world(session_factory, datetime.now(UTC))
    box = _toolbox(session_factory)
    _run(box, "verify_patient", date_of_birth="1958-04-12")
    day = _next_weekday()
    _run(box, "book_appointment", "taken", start=f"{day.isoformat()}T10:00")

    def offered(**preferences: object) -> list[datetime]:
        answer = _run(box, "check_availability", date=day.isoformat(), time="10:00", **preferences)
        assert answer["available"] is False and answer["alternatives"], answer
        return [datetime.fromisoformat(a["start"]) for a in answer["alternatives"]]

    assert any(start.hour < 12 for start in offered())  # nearest first: the same morning
    assert all(12 <= start.hour < 17 for start in offered(part_of_day="afternoon"))
    friday = offered(weekdays=["friday"])
    assert all(start.weekday() == 4 for start in friday)
    bad = _run(box, "check_availability", date=day.isoformat(), time="10:00", part_of_day="night")
    assert bad["error"] == "invalid_argument" and bad["field"] == "part_of_day"
    odd = _run(box, "check_availability", date=day.isoformat(), time="10:00", weekdays="friday")
    assert odd["error"] == "invalid_argument"


def test_the_backup_nurse_is_named_while_the_primary_is_inactive(
    session_factory: sessionmaker[Session],
) -> None:
    now = datetime.now(UTC)
    world = build_world(session_factory, now)
    with session_factory() as session:
        update_nurse(session, world.nurse_id, actor=ACTOR, now=now, active=False)
        session.commit()
    box = _toolbox(session_factory)
    _run(box, "verify_patient", date_of_birth="1958-04-12")
    assert _run(box, "get_assigned_nurse")["error"] == "no_nurse_available"
    with session_factory() as session:
        assign_backup(session, world.patient_id, world.other_nurse_id, now)
        session.commit()
    covering = _run(box, "get_assigned_nurse")
    assert covering["nurse_id"] == world.other_nurse_id and covering["covering"] is True
    booked = _run(box, "book_appointment", start=f"{_next_weekday().isoformat()}T10:00")
    assert booked["booked"] and booked["nurse_name"] == covering["nurse_name"]


def _properties(tool: str) -> dict[str, dict]:
    definition = next(d for d in TOOL_DEFINITIONS if d["name"] == tool)
    return definition["parameters"]["properties"]


def test_the_tool_schemas_are_flat_function_tools_whose_choices_come_from_core() -> None:
    for definition in TOOL_DEFINITIONS:
        RealtimeFunctionTool.model_validate(definition)  # the SDK's own type for a function tool
        parameters = definition["parameters"]
        assert parameters["type"] == "object" and parameters["additionalProperties"] is False
        assert set(parameters["required"]) <= set(parameters["properties"]), definition["name"]
        # Nothing the API would have to resolve or that the model need not read.
        text = json.dumps(parameters)
        assert not [key for key in ('"$defs"', '"$ref"', '"title"') if key in text], text
        assert definition["description"]
    assert _properties("book_appointment")["kind"]["enum"] == [k.value for k in AppointmentKind]
    assert _properties("check_availability")["part_of_day"]["enum"] == [p.value for p in PartOfDay]
    reasons = _properties("cancel_appointment")["reason_code"]["enum"]
    assert set(reasons) == {reason.value for reason in CancelReason} - {"rescheduled"}
    duration = _properties("check_availability")["duration_minutes"]
    assert duration == {
        "type": "integer",
        "minimum": 5,
        "maximum": 480,
        "description": "Length of the visit in minutes",
    }


def test_a_tool_that_breaks_is_reported_as_failed_not_as_wrong_arguments(
    session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    build_world(session_factory, datetime.now(UTC))

    def broken_clock() -> datetime:
        # A fault inside the tool (here its clock), with words the log must never repeat.
        raise TypeError("John Smith +12025550101 cannot be compared")

    box = _toolbox(session_factory, clock=broken_clock)
    assert box.dispatch_sync("verify_patient", {"date_of_birth": "1958-04-12"}, "v")["verified"]
    day = _next_weekday().isoformat()
    with caplog.at_level(logging.DEBUG, logger="voice.tools"):
        failed = box.dispatch_sync("book_appointment", {"start": f"{day}T10:00"}, "b")
    assert failed["error"] == "tool_failed" and "apologise" in failed["message"].lower()
    assert _appointments(session_factory) == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "TypeError" in errors[0].getMessage()
    assert "John" not in errors[0].getMessage() and "555" not in errors[0].getMessage()
    # Wrong arguments are still told apart, and name the argument to fix.
    wrong = box.dispatch_sync("book_appointment", {"start": f"{day} at ten"}, "c")
    assert wrong["error"] == "invalid_argument" and wrong["field"] == "start"


def test_the_visit_kind_and_the_cancellation_reason_reach_the_appointment(
    session_factory: sessionmaker[Session],
) -> None:
    build_world(session_factory, datetime.now(UTC))
    box = _toolbox(session_factory)
    _run(box, "verify_patient", date_of_birth="1958-04-12")
    start = f"{_next_weekday().isoformat()}T10:00"
    refused = _run(box, "book_appointment", "b0", start=start, kind="teleport")
    assert refused["error"] == "invalid_argument" and refused["field"] == "kind"
    assert _appointments(session_factory) == 0
    booked = _run(box, "book_appointment", "b1", start=start, kind="video")
    assert booked["kind"] == "video"
    listed = _run(box, "list_appointments")["appointments"]
    assert [a["kind"] for a in listed] == ["video"]
    bad = _run(box, "cancel_appointment", appointment_id=booked["appointment_id"], reason_code="x")
    assert bad["error"] == "invalid_argument" and bad["field"] == "reason_code"
    moved = _run(
        box,
        "cancel_appointment",
        appointment_id=booked["appointment_id"],
        reason_code="rescheduled",
    )
    assert moved["error"] == "invalid_argument"
    cancelled = _run(
        box,
        "cancel_appointment",
        "x1",
        appointment_id=booked["appointment_id"],
        reason_code="duplicate",
    )
    assert cancelled["cancelled"] is True
    with session_factory() as session:
        appointment = session.get(Appointment, booked["appointment_id"])
        assert appointment is not None
        assert (appointment.kind, appointment.cancel_reason) == ("video", "duplicate")


def test_the_agent_tells_a_series_visit_and_cancels_or_moves_one_occurrence(
    session_factory: sessionmaker[Session],
) -> None:
    from core.operations import SeriesDetails
    from core.services.series import book_series

    now = datetime.now(UTC)
    world = build_world(session_factory, now)
    first = _next_weekday()
    with session_factory() as session:
        booked = book_series(
            session,
            SeriesDetails.model_validate(
                {
                    "patient_id": world.patient_id,
                    "start": datetime.combine(first, time(10), ZoneInfo(NY)).isoformat(),
                    "weekdays": [["mon", "tue", "wed", "thu", "fri"][first.weekday()]],
                    "count": 3,
                }
            ),
            actor=ACTOR,
            now=now,
        )
        session.commit()
        series_id = booked.series.id
    box = _toolbox(session_factory)
    _run(box, "verify_patient", date_of_birth="1958-04-12")

    listed = _run(box, "list_appointments")["appointments"]
    assert len(listed) == 3
    assert all(a["series"] and a["series"].startswith("Every week on") for a in listed)

    cancelled = _run(
        box,
        "cancel_appointment",
        "x1",
        appointment_id=listed[0]["appointment_id"],
        reason_code="patient_request",
    )
    assert "error" not in cancelled, cancelled
    moved = _run(
        box,
        "reschedule_appointment",
        "r1",
        appointment_id=listed[1]["appointment_id"],
        new_start=f"{(first + timedelta(days=7)).isoformat()}T14:00",
    )
    assert "error" not in moved, moved
    with session_factory() as session:
        visits = session.scalars(
            select(Appointment)
            .where(Appointment.series_id == series_id, Appointment.status == "scheduled")
            .order_by(Appointment.start_at)
        ).all()
        assert [v.series_index for v in visits] == [1, 2]
        assert visits[0].start_at.astimezone(ZoneInfo(NY)).hour == 14
