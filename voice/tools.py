"""The phone agent's tools: thin wrappers over core services, one short transaction each.

Each tool's arguments are one pydantic model: the JSON schema the model sees is generated from
it and every call's arguments are validated by it (an invalid call gets the validation errors
back as its output). Every tool returns a JSON object. Times carry ISO 8601 offsets plus a
`spoken` phrase in the patient's zone. A bad argument or refused change returns
{"error": code, "message": ...} and writes nothing; a bug inside a tool returns
{"error": "tool_failed", ...} so the agent can apologise. Nothing about a patient is disclosed
or changed before `verify_patient` succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db import read_only_sessions, transaction
from core.errors import DomainError, Slot, SlotUnavailable
from core.logs import log_failure
from core.models import (
    AppointmentKind,
    AssignmentRole,
    CallDirection,
    CancelReason,
    LogRole,
    Nurse,
    Patient,
)
from core.operations import CANCEL_REASON_CHOICE, MAX_VISIT_MINUTES, ChosenCancelReason
from core.scheduling import (
    PartOfDay,
    Preferences,
    local_to_utc,
    repeated_time,
    skipped_time,
    zone,
)
from core.services import booking, calls
from core.services.assignments import active_assignment, auto_assign_best, patient_today
from core.services.common import Actor
from core.services.people import find_patient_by_phone
from core.services.series import series_in_words
from core.timefmt import local_iso, spoken
from voice.log_writer import store_lines
from voice.tool_calls import ReadToolCall, WriteNeeded

if TYPE_CHECKING:  # the pool starts workers that import this module
    from voice.tool_processes import ToolProcesses

logger = logging.getLogger(__name__)

MAX_VERIFICATION_ATTEMPTS = 3
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_LOCAL_START = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{1,2}:\d{2})(?::00)?$")


class Weekday(StrEnum):
    """A day the caller prefers visits on, in Python's weekday order (Monday is 0)."""

    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def number(self) -> int:
        """0 for Monday to 6 for Sunday, as date.weekday() counts."""
        return list(Weekday).index(self)


# ------------------------------------------------------------ argument types


def _blank_is_none(value: Any) -> Any:
    # The model often sends "" or null for an optional argument it means to leave out.
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _text_or_empty(value: Any) -> Any:
    return "" if value is None else value


def _iso_day(value: Any) -> date:
    if not isinstance(value, str) or not _DATE.match(value.strip()):
        raise PydanticCustomError("day_format", "must be YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise PydanticCustomError("day_unreal", "is not a real date") from None


def _clock_time(value: Any) -> time:
    match = _TIME.match(value.strip()) if isinstance(value, str) else None
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise PydanticCustomError("time_format", "must be HH:MM (24 hour)")
    return time(int(match[1]), int(match[2]))


def _local_start(value: Any) -> datetime:
    match = _LOCAL_START.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise PydanticCustomError("start_format", "must be YYYY-MM-DDTHH:MM")
    return datetime.combine(_iso_day(match[1]), _clock_time(match[2]))


def _lower_case(value: Any) -> Any:
    if isinstance(value, list):
        return [item.strip().lower() if isinstance(item, str) else item for item in value]
    return value


_AS_STRING = WithJsonSchema({"type": "string"})
LocalDay = Annotated[date, BeforeValidator(_iso_day), _AS_STRING]
ClockTime = Annotated[time, BeforeValidator(_clock_time), _AS_STRING]
LocalStart = Annotated[datetime, BeforeValidator(_local_start), _AS_STRING]
# A booking's reason is refused past 500 characters (as the booking service does); a note that
# only accompanies an action (a transfer, a cancellation, a hang-up) is cut short instead, so
# that asking for a person never fails over its wording.
Reason = Annotated[str, BeforeValidator(_text_or_empty), Field(max_length=500)]
Note = Annotated[str, BeforeValidator(_text_or_empty), AfterValidator(lambda text: text[:500])]
# Optional arguments show in the schema as their type alone; a blank one counts as left out.
Minutes = Annotated[
    Annotated[int, Field(ge=5, le=MAX_VISIT_MINUTES)] | SkipJsonSchema[None],
    BeforeValidator(_blank_is_none),
    Field(description="Length of the visit in minutes"),
]
_START_HELP = "YYYY-MM-DDTHH:MM, patient's local time"


class ToolArguments(BaseModel):
    """The arguments of one tool; anything the schema does not name is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArguments(ToolArguments):
    """A tool that takes no arguments."""


class VerifyPatientArguments(ToolArguments):
    """verify_patient's arguments."""

    date_of_birth: LocalDay = Field(description="YYYY-MM-DD")
    full_name: Annotated[str | SkipJsonSchema[None], BeforeValidator(_blank_is_none)] = Field(
        None, description="The caller's first and last name"
    )


class CheckAvailabilityArguments(ToolArguments):
    """check_availability's arguments."""

    date: LocalDay = Field(description="YYYY-MM-DD in the patient's time zone")
    time: Annotated[ClockTime | SkipJsonSchema[None], BeforeValidator(_blank_is_none)] = Field(
        None, description="HH:MM (24 h) in the patient's time zone"
    )
    duration_minutes: Minutes = None
    part_of_day: Annotated[PartOfDay | SkipJsonSchema[None], BeforeValidator(_blank_is_none)] = (
        Field(None, description="When the caller prefers visits; alternatives keep to it")
    )
    weekdays: Annotated[list[Weekday], BeforeValidator(_lower_case)] = Field(
        default_factory=list, description="Days the caller prefers; alternatives keep to them"
    )


class BookAppointmentArguments(ToolArguments):
    """book_appointment's arguments."""

    start: LocalStart = Field(description=_START_HELP)
    duration_minutes: Minutes = None
    reason: Reason = ""
    kind: AppointmentKind = Field(
        AppointmentKind.PHONE,
        description="How the nurse sees the patient; a phone call unless the caller asks for "
        "another kind",
    )
    nurse_id: Annotated[int | SkipJsonSchema[None], BeforeValidator(_blank_is_none)] = Field(
        None, description="Only for an offered alternative with another nurse: its nurse_id"
    )


class CancelAppointmentArguments(ToolArguments):
    """cancel_appointment's arguments."""

    appointment_id: int
    # The same choice as the dashboard's and the API's (core.operations.CancelVisit).
    reason_code: ChosenCancelReason = Field(
        CancelReason.PATIENT_REQUEST,
        description="Why: patient_request unless the caller gives one of the others; "
        + "; ".join(
            f"{reason} ({reason.label.lower()})" for reason in CANCEL_REASON_CHOICE.members
        ),
    )
    reason: Note = Field("", description="The caller's own words, if they gave a reason")


class RescheduleAppointmentArguments(ToolArguments):
    """reschedule_appointment's arguments."""

    appointment_id: int
    new_start: LocalStart = Field(description=_START_HELP)


class TransferArguments(ToolArguments):
    """transfer_to_staff's arguments."""

    reason: Note


class EndCallArguments(ToolArguments):
    """end_call's arguments."""

    reason: Note = ""


def _parameters(arguments: type[ToolArguments]) -> dict[str, Any]:
    """The JSON schema of a tool's arguments as a Realtime function tool takes it: one flat
    object schema (enums inlined, no titles or defaults), no reference left to resolve."""
    schema = arguments.model_json_schema()
    definitions = schema.pop("$defs", {})

    def flat(node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            target = definitions[node["$ref"].rsplit("/", 1)[-1]]
            # The field's own description, never the enum class's docstring.
            target = {key: value for key, value in target.items() if key != "description"}
            node = {**target, **{key: value for key, value in node.items() if key != "$ref"}}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("title", "default"):
                continue
            if key == "properties":
                out[key] = {name: flat(field) for name, field in value.items()}
            elif key == "items":
                out[key] = flat(value)
            else:
                out[key] = value
        return out

    parameters = flat(schema)
    parameters.pop("description", None)  # the tool's description says what it does
    parameters.setdefault("required", [])
    return parameters


def _invalid(error: ValidationError) -> dict[str, Any]:
    """A validation failure as the tool's output: what to fix, and which argument first."""
    problems: list[str] = []
    fields: list[str] = []
    for problem in error.errors(include_input=False, include_url=False):
        if problem["type"] == "none_required":
            continue  # an optional argument's other half: its real type's error says enough
        # The location is the argument, then list positions (a union adds its member's tag).
        field = str(problem["loc"][0]) if problem["loc"] else ""
        where = field + "".join(f"[{part}]" for part in problem["loc"][1:] if isinstance(part, int))
        text = f"{where}: {problem['msg']}" if where else problem["msg"]
        if text not in problems:
            problems.append(text)
            fields.append(field)
    result: dict[str, Any] = {"error": "invalid_argument", "message": "; ".join(problems) + "."}
    if fields[0]:
        result["field"] = fields[0]
    return result


CALLBACK_REQUESTED = {
    "callback_requested": True,
    "message": "No one can take the call right now; a care coordinator will call back.",
}
TOOL_FAILED = {
    "error": "tool_failed",
    "message": "That action failed because of a problem on our side. Apologise, say it did not "
    "go through, and offer to transfer the caller to staff.",
}


class ToolError(Exception):
    """A refusal the model can recover from; nothing was written."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.payload = {"error": code, "message": message, **details}


@dataclass
class CallContext:
    """What the tools know about the call they serve."""

    call_id: int
    call_sid: str
    direction: str
    from_number: str
    to_number: str
    simulated: bool = False  # placed by our own simulator: no telephone network behind it

    @property
    def patient_phone(self) -> str:
        """The patient's side of the call: the caller inbound, the callee outbound."""
        return self.to_number if self.direction == CallDirection.OUTBOUND else self.from_number


@dataclass
class PendingAction:
    """Something to do to the live call once the agent has finished speaking."""

    kind: str  # "hang_up" or "transfer"
    number: str = ""


def _slot(slot: Slot, tz: str) -> dict[str, Any]:
    return {
        "start": local_iso(slot.start, tz),
        "end": local_iso(slot.end, tz),
        "spoken": spoken(slot.start, tz),
        "nurse_id": slot.nurse_id,
    }


def _alternatives(session: Session, slots: list[Slot], tz: str) -> list[dict[str, Any]]:
    """Offered slots with their nurse's name: the backup nurse's are offered when the
    patient's own nurse has no time, and the caller should hear whom they would see."""
    if not slots:
        return []
    nurses = session.scalars(select(Nurse).where(Nurse.id.in_({s.nurse_id for s in slots})))
    names = {nurse.id: nurse.display_name for nurse in nurses}
    return [{**_slot(slot, tz), "nurse_name": names.get(slot.nurse_id, "")} for slot in slots]


def _local_instant(day: date, clock: time, tz: str, field: str) -> datetime:
    """The instant a wall-clock time in the patient's zone names; refused when the clocks skip
    it that day (the spring-forward hour)."""
    zone_info = zone(tz)
    minute = clock.hour * 60 + clock.minute
    skipped = skipped_time(day, minute, zone_info)
    if skipped is not None:
        # The agent offers the nearest times that exist; it never books an hour later unasked.
        raise ToolError(
            "no_such_time",
            skipped.message(),
            field=field,
            nearest=[
                {"start": instant.isoformat(), "spoken": spoken(instant, tz)}
                for instant in skipped.nearest
            ],
        )
    return local_to_utc(day, minute, zone_info)


def _clock_note(instant: datetime, tz: str) -> dict[str, str]:
    """When the clocks go back that night and the time happens twice: which one it is."""
    zone_info = zone(tz)
    local = instant.astimezone(zone_info)
    both = repeated_time(local.date(), local.hour * 60 + local.minute, zone_info)
    if both is None:
        return {}
    which = "first" if local.utcoffset() == both[0].utcoffset() else "second"
    return {
        "clock_note": f"The clocks go back that night, so this time happens twice; this is the "
        f"{which} one ({local.tzname()})."
    }


def _local_start_instant(start: datetime, tz: str, field: str) -> datetime:
    return _local_instant(start.date(), start.time(), tz, field)


def _preferences(arguments: CheckAvailabilityArguments, tz: str) -> Preferences | None:
    """The caller's stated preferences for alternatives (None: any time the nurse has)."""
    if arguments.part_of_day is None and not arguments.weekdays:
        return None
    return Preferences(
        time_zone=tz,
        weekdays=frozenset(day.number for day in arguments.weekdays),
        part_of_day=arguments.part_of_day,
    )


def _names_match(given: str, patient: Patient) -> bool:
    words = given.casefold().split()
    return " ".join(words) == patient.full_name.casefold() or (
        patient.last_name.casefold() in words and patient.first_name.casefold() in words
    )


class ToolBox:
    """The tools of one call, with its verification state; not shared between calls."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        context: CallContext,
        *,
        staff_phone_number: str = "",
        can_transfer: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        processes: ToolProcesses | None = None,
        reads_only: bool = False,
    ) -> None:
        self.sessions = sessions
        self.processes = processes
        # In a tool worker: a tool that would write raises WriteNeeded instead.
        self.reads_only = reads_only
        # Tools that only look (availability, the visit list) never queue for SQLite's write lock.
        self.reads = read_only_sessions(sessions)
        self.context = context
        self.staff_phone_number = staff_phone_number
        self.can_transfer = can_transfer
        self.clock = clock
        self.patient_id: int | None = None
        self.time_zone: str = "UTC"
        self.failed_attempts = 0
        self.pending_action: PendingAction | None = None
        self.callback_requested = False
        self.actor = Actor.agent(context.call_id)
        self._lock = threading.Lock()

    @property
    def verified(self) -> bool:
        """Whether the caller has proved who they are on this call."""
        return self.patient_id is not None

    @property
    def locked(self) -> bool:
        """Whether verification failed too often on this call."""
        return self.failed_attempts >= MAX_VERIFICATION_ATTEMPTS

    async def run(
        self, name: str, arguments: dict[str, Any], *, tool_call_id: str
    ) -> dict[str, Any]:
        """Run one tool; its result (the caller logs it with `log_row`).

        A read-only tool for a verified caller runs in a worker process when there are some;
        everything else, and a read whose worker failed, runs in a thread of this process.
        """
        if self.processes is not None and name in WORKER_TOOLS and self.verified:
            try:
                return await self.processes.run(self.read_call(name, arguments, tool_call_id))
            except WriteNeeded:
                pass
            except Exception:
                call_id = self.context.call_id
                log_failure(logger, "call %s: tool worker failed; running it here", call_id)
        return await asyncio.to_thread(self.dispatch_sync, name, arguments, tool_call_id)

    def read_call(self, name: str, arguments: Any, tool_call_id: str) -> ReadToolCall:
        """A read-only tool call as a worker process runs it, for this verified caller."""
        assert self.patient_id is not None
        return ReadToolCall(
            database_url=self.sessions.kw["bind"].url.render_as_string(hide_password=False),
            context=self.context,
            patient_id=self.patient_id,
            time_zone=self.time_zone,
            name=name,
            arguments=arguments,
            tool_call_id=tool_call_id,
        )

    def run_sync(
        self, name: str, arguments: dict[str, Any], tool_call_id: str, position: int
    ) -> dict[str, Any]:
        """Run one tool and log it (blocking: call from a worker thread)."""
        result = self.dispatch_sync(name, arguments, tool_call_id)
        try:
            store_lines(
                self.sessions, [self.log_row(name, arguments, tool_call_id, position, result)]
            )
        except Exception:
            log_failure(logger, "call %s: could not store a tool log line", self.context.call_id)
        return result

    def dispatch_sync(
        self, name: str, arguments: dict[str, Any], tool_call_id: str
    ) -> dict[str, Any]:
        """Run one tool (blocking); whatever it changed is committed when this returns."""
        # One tool at a time per call: parallel calls in one response would otherwise race on
        # the verification state (and queue on SQLite's write lock anyway).
        with self._lock:
            return self._dispatch(name, arguments, tool_call_id)

    def log_row(
        self,
        name: str,
        arguments: dict[str, Any],
        tool_call_id: str,
        position: int,
        result: dict[str, Any],
    ) -> dict[str, Any]:
        """The conversation-log row of one tool call and its result."""
        return calls.log_row(
            call_id=self.context.call_id,
            position=position,
            role=LogRole.TOOL,
            now=self.clock(),
            item_id=tool_call_id[:64],
            tool_name=name[:64],
            tool_arguments=arguments,
            tool_result=result,
        )

    def _dispatch(self, name: str, arguments: dict[str, Any], tool_call_id: str) -> dict[str, Any]:
        tool = TOOLS.get(name)
        if tool is None:
            return {"error": "unknown_tool", "message": f"There is no tool called {name[:40]}."}
        if not tool.open_before_verification and not self.verified:
            return {
                "error": "not_verified",
                "message": "Verify the caller with verify_patient before anything else.",
            }
        try:
            parsed = tool.arguments.model_validate(arguments)
        except ValidationError as exc:
            return _invalid(exc)
        try:
            return tool.run(self, parsed, tool_call_id)
        except ToolError as exc:
            return exc.payload
        except WriteNeeded:
            raise
        except SlotUnavailable as exc:
            with transaction(self.reads) as session:
                offered = _alternatives(session, exc.alternatives, self.time_zone)
            return {
                "error": exc.code,
                "reason": exc.reason,
                "message": exc.message,
                "alternatives": offered,
                "escalate": exc.escalate,
            }
        except DomainError as exc:
            return {"error": exc.code, "message": exc.message}
        except Exception:
            # A bug, or a database that failed: the arguments were fine. Logged by class only
            # (the message may carry what the caller said); whatever it began is rolled back.
            log_failure(logger, "call %s: tool %s failed", self.context.call_id, name)
            return dict(TOOL_FAILED)

    # ------------------------------------------------------------ tools

    def tool_verify_patient(
        self, arguments: VerifyPatientArguments, tool_call_id: str
    ) -> dict[str, Any]:
        """Match the patient's phone on this call plus date of birth (and name if given)."""
        if self.verified:
            return {"verified": True, "message": "Already verified."}
        if self.locked:
            raise ToolError(
                "verification_locked",
                "Too many failed attempts; offer to transfer the caller to staff.",
            )
        with transaction(self.sessions) as session:
            patient = find_patient_by_phone(session, self.context.patient_phone)
            ok = patient is not None and patient.date_of_birth == arguments.date_of_birth
            if ok and arguments.full_name:
                ok = _names_match(arguments.full_name, patient)  # type: ignore[arg-type]
            if ok:
                assert patient is not None
                calls.mark_verified(session, self.context.call_id, patient.id)
                self.patient_id, self.time_zone = patient.id, patient.time_zone
                return {
                    "verified": True,
                    "first_name": patient.first_name,
                    "preferred_language": patient.preferred_language,
                    "time_zone": patient.time_zone,
                }
            self.failed_attempts += 1
            if self.locked:
                calls.set_outcome(session, self.context.call_id, "verification_failed")
        left = MAX_VERIFICATION_ATTEMPTS - self.failed_attempts
        if left <= 0:
            raise ToolError(
                "verification_locked",
                "Verification failed three times; offer to transfer the caller to staff.",
            )
        raise ToolError(
            "verification_failed",
            "Those details do not match our records.",
            attempts_left=left,
        )

    def tool_get_assigned_nurse(self, arguments: NoArguments, tool_call_id: str) -> dict[str, Any]:
        """The patient's primary nurse; one is assigned (by the agent) if there is none."""
        assert self.patient_id is not None
        now = self.clock()
        with transaction(self.sessions) as session:
            patient = session.get(Patient, self.patient_id)
            assert patient is not None
            current = active_assignment(session, patient.id, on=patient_today(patient, now))
            auto = current is None
            if current is None and self.reads_only:
                raise WriteNeeded
            if current is None:
                current = auto_assign_best(session, patient.id, actor=self.actor, now=now)
            if current is None:
                raise ToolError(
                    "no_nurse_available",
                    "No nurse can take this patient now; offer a transfer to staff.",
                )
            nurse = session.get(Nurse, current.nurse_id)
            assert nurse is not None
            if not nurse.active:
                # The primary is not taking visits: the backup nurse covers (as booking does).
                today = patient_today(patient, now)
                backup = active_assignment(
                    session, patient.id, on=today, role=AssignmentRole.BACKUP
                )
                if backup is None or not backup.nurse.active:
                    raise ToolError(
                        "no_nurse_available",
                        "The patient's nurse is not taking visits and no backup can; offer a"
                        " transfer to staff.",
                    )
                return {
                    "nurse_id": backup.nurse.id,
                    "nurse_name": backup.nurse.display_name,
                    "newly_assigned": False,
                    "covering": True,
                    "message": "The usual nurse is not available; this backup nurse takes the"
                    " patient's visits for now.",
                }
            return {
                "nurse_id": nurse.id,
                "nurse_name": nurse.display_name,
                "newly_assigned": auto,
            }

    def tool_check_availability(
        self, arguments: CheckAvailabilityArguments, tool_call_id: str
    ) -> dict[str, Any]:
        """Whether the asked time is free; alternatives (within the caller's preferences) if
        not; a day's free slots if no time."""
        assert self.patient_id is not None
        tz, now = self.time_zone, self.clock()
        day, minutes = arguments.date, arguments.duration_minutes
        preferences = _preferences(arguments, tz)
        if day < now.astimezone(zone(tz)).date():
            raise ToolError("in_the_past", "That date has already passed.", field="date")
        with transaction(self.reads) as session:
            if arguments.time is not None:
                start = _local_instant(day, arguments.time, tz, "time")
                answer = booking.check_availability(
                    session,
                    patient_id=self.patient_id,
                    start=start,
                    now=now,
                    duration_minutes=minutes,
                    preferences=preferences,
                )
                result: dict[str, Any] = {
                    "available": answer.available,
                    "start": local_iso(answer.start, tz),
                    "end": local_iso(answer.end, tz),
                    "spoken": spoken(answer.start, tz),
                    **_clock_note(answer.start, tz),
                }
                if not answer.available:
                    result.update(
                        reason=answer.refusal,
                        message=answer.message,
                        alternatives=_alternatives(session, answer.alternatives, tz),
                        escalate=answer.escalate,
                    )
                session.rollback()
                return result
            first = _local_instant(day, time(0), tz, "date")
            last = _local_instant(day + timedelta(days=1), time(0), tz, "date")
            nurse = booking.resolve_nurse(
                session,
                session.get(Patient, self.patient_id),  # type: ignore[arg-type]
                nurse_id=None,
                start=first,
                now=now,
            )
            slots = booking.free_slots(
                session, nurse.id, start=first, end=last, now=now, duration_minutes=minutes
            )
            session.rollback()
        return {"date": day.isoformat(), "slots": [_slot(s, tz) for s in slots[:8]]}

    def tool_book_appointment(
        self, arguments: BookAppointmentArguments, tool_call_id: str
    ) -> dict[str, Any]:
        """Book with the patient's nurse (or the assigned nurse of an offered alternative); the
        tool call id makes a retry return the same visit."""
        assert self.patient_id is not None
        tz, now = self.time_zone, self.clock()
        begin = _local_start_instant(arguments.start, tz, "start")
        with transaction(self.sessions) as session:
            appointment = booking.book_appointment(
                session,
                patient_id=self.patient_id,
                nurse_id=arguments.nurse_id,
                start=begin,
                actor=self.actor,
                now=now,
                duration_minutes=arguments.duration_minutes,
                kind=arguments.kind,
                reason=arguments.reason,
                idempotency_key=f"call:{self.context.call_id}:{tool_call_id}"[:200],
                call_id=self.context.call_id,
            )
            calls.set_outcome(session, self.context.call_id, "booked")
            return {
                "booked": True,
                "appointment_id": appointment.id,
                "start": local_iso(appointment.start_at, tz),
                "end": local_iso(appointment.end_at, tz),
                "spoken": spoken(appointment.start_at, tz),
                **_clock_note(appointment.start_at, tz),
                "nurse_name": appointment.nurse.display_name,
                "kind": appointment.kind,
            }

    def tool_list_appointments(self, arguments: NoArguments, tool_call_id: str) -> dict[str, Any]:
        """The patient's upcoming scheduled visits."""
        assert self.patient_id is not None
        tz = self.time_zone
        with transaction(self.reads) as session:
            found = calls.upcoming_appointments(session, self.patient_id, now=self.clock())
            return {
                "appointments": [
                    {
                        "appointment_id": a.id,
                        "start": local_iso(a.start_at, tz),
                        "spoken": spoken(a.start_at, tz),
                        "duration_minutes": a.duration_minutes,
                        "kind": a.kind,
                        "nurse_name": a.nurse.display_name,
                        # A visit of a recurring series says so, so the agent can tell the
                        # caller that cancelling or moving it leaves the other visits as they are.
                        "series": series_in_words(a.series) if a.series is not None else None,
                    }
                    for a in found
                ]
            }

    def tool_cancel_appointment(
        self, arguments: CancelAppointmentArguments, tool_call_id: str
    ) -> dict[str, Any]:
        """Cancel one of this patient's visits."""
        assert self.patient_id is not None
        tz, appointment_id = self.time_zone, arguments.appointment_id
        with transaction(self.sessions) as session:
            calls.patient_appointment(session, self.patient_id, appointment_id)
            appointment = booking.cancel_appointment(
                session,
                appointment_id,
                actor=self.actor,
                now=self.clock(),
                reason_code=arguments.reason_code,
                note=arguments.reason,
            )
            calls.set_outcome(session, self.context.call_id, "cancelled")
            return {
                "cancelled": True,
                "appointment_id": appointment.id,
                "start": local_iso(appointment.start_at, tz),
                "spoken": spoken(appointment.start_at, tz),
            }

    def tool_reschedule_appointment(
        self, arguments: RescheduleAppointmentArguments, tool_call_id: str
    ) -> dict[str, Any]:
        """Move one of this patient's visits to a new local start time."""
        assert self.patient_id is not None
        tz, now, appointment_id = self.time_zone, self.clock(), arguments.appointment_id
        begin = _local_start_instant(arguments.new_start, tz, "new_start")
        with transaction(self.sessions) as session:
            calls.patient_appointment(session, self.patient_id, appointment_id)
            new = booking.reschedule_appointment(
                session,
                appointment_id,
                new_start=begin,
                actor=self.actor,
                now=now,
                idempotency_key=f"call:{self.context.call_id}:{tool_call_id}"[:200],
            )
            calls.set_outcome(session, self.context.call_id, "rescheduled")
            return {
                "rescheduled": True,
                "appointment_id": new.id,
                "previous_appointment_id": appointment_id,
                "start": local_iso(new.start_at, tz),
                "end": local_iso(new.end_at, tz),
                "spoken": spoken(new.start_at, tz),
                **_clock_note(new.start_at, tz),
            }

    def tool_transfer_to_staff(
        self, arguments: TransferArguments, tool_call_id: str
    ) -> dict[str, Any]:
        """Transfer to the staff line after the agent's next words, or record a callback."""
        return self.transfer(arguments.reason)

    def transfer(self, reason: str) -> dict[str, Any]:
        """Arrange a transfer (or a callback request when no staff line is configured)."""
        if self.staff_phone_number and self.can_transfer:
            with transaction(self.sessions) as session:
                calls.set_outcome(session, self.context.call_id, "transferred")
            self.pending_action = PendingAction("transfer", self.staff_phone_number)
            return {
                "transferring": True,
                "message": "Tell the caller you are connecting them to a staff member now.",
            }
        return self.request_callback(reason)

    def request_callback(self, reason: str) -> dict[str, Any]:
        """Record that the caller should be called back (once per call)."""
        if self.callback_requested:
            # Asked again on this call (the keypad pressed twice, then the agent): one
            # request is what the coordinators should see.
            return dict(CALLBACK_REQUESTED)
        with transaction(self.sessions) as session:
            calls.record_callback_request(
                session,
                call_id=self.context.call_id,
                patient_id=self.patient_id,
                phone=self.context.patient_phone,
                reason=reason,
                now=self.clock(),
            )
            calls.set_outcome(session, self.context.call_id, "callback_requested")
        self.callback_requested = True
        return dict(CALLBACK_REQUESTED)

    def tool_end_call(self, arguments: EndCallArguments, tool_call_id: str) -> dict[str, Any]:
        """Hang up once the goodbye has played."""
        self.pending_action = self.pending_action or PendingAction("hang_up")
        return {"ending": True}


Arguments = TypeVar("Arguments", bound=ToolArguments)


@dataclass(frozen=True)
class Tool(Generic[Arguments]):
    """One tool the agent can call: what the model is told, what it must pass, what runs."""

    name: str
    description: str
    arguments: type[Arguments]
    run: Callable[[ToolBox, Arguments, str], dict[str, Any]]
    open_before_verification: bool = False
    # Changes nothing, not even the call's state, so a worker process may run it (see
    # voice.tool_processes). get_assigned_nurse writes only for a patient without a nurse: the
    # worker answers WriteNeeded and the tool runs again in the service.
    reads_only: bool = False

    def definition(self) -> dict[str, Any]:
        """The function tool as session.update declares it to the Realtime API."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": _parameters(self.arguments),
        }


TOOLS: dict[str, Tool[Any]] = {
    tool.name: tool
    for tool in (
        Tool(
            "verify_patient",
            "Verify the caller's identity with their date of birth (and name if given). "
            "Must succeed before any other tool except transfer_to_staff and end_call.",
            VerifyPatientArguments,
            ToolBox.tool_verify_patient,
            open_before_verification=True,
        ),
        Tool(
            "get_assigned_nurse",
            "The patient's assigned nurse (assigns one if none).",
            NoArguments,
            ToolBox.tool_get_assigned_nurse,
            reads_only=True,
        ),
        Tool(
            "check_availability",
            "Whether a date (and time) is free with the patient's nurse; alternatives if not.",
            CheckAvailabilityArguments,
            ToolBox.tool_check_availability,
            reads_only=True,
        ),
        Tool(
            "book_appointment",
            "Book a visit after the caller explicitly said yes to the read-back. If the patient "
            "already has an upcoming visit (list_appointments), mention it first and ask whether "
            "to keep it, move it or cancel it.",
            BookAppointmentArguments,
            ToolBox.tool_book_appointment,
        ),
        Tool(
            "list_appointments",
            "The patient's upcoming appointments.",
            NoArguments,
            ToolBox.tool_list_appointments,
            reads_only=True,
        ),
        Tool(
            "cancel_appointment",
            "Cancel one of the patient's appointments (after an explicit yes).",
            CancelAppointmentArguments,
            ToolBox.tool_cancel_appointment,
        ),
        Tool(
            "reschedule_appointment",
            "Move one of the patient's appointments (after an explicit yes).",
            RescheduleAppointmentArguments,
            ToolBox.tool_reschedule_appointment,
        ),
        Tool(
            "transfer_to_staff",
            "Hand the caller to a person (or record a callback request when none is available).",
            TransferArguments,
            ToolBox.tool_transfer_to_staff,
            open_before_verification=True,
        ),
        Tool(
            "end_call",
            "Hang up after saying goodbye.",
            EndCallArguments,
            ToolBox.tool_end_call,
            open_before_verification=True,
        ),
    )
}
TOOL_DEFINITIONS: list[dict[str, Any]] = [tool.definition() for tool in TOOLS.values()]
TOOL_NAMES = frozenset(TOOLS)
OPEN_BEFORE_VERIFICATION = frozenset(t.name for t in TOOLS.values() if t.open_before_verification)
WORKER_TOOLS = frozenset(t.name for t in TOOLS.values() if t.reads_only)
