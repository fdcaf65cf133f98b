"""The phone agent's tools: thin wrappers over core services, one short transaction each.

Every tool returns a JSON object. Times carry ISO 8601 offsets plus a `spoken` phrase in the
patient's zone. A bad argument or refused change returns {"error": code, "message": ...} and
writes nothing. Nothing about a patient is disclosed or changed before `verify_patient`
succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db import read_only_sessions, transaction
from core.errors import DomainError, Slot, SlotUnavailable
from core.logs import log_failure
from core.models import AssignmentRole, CallDirection, LogRole, Nurse, Patient
from core.scheduling import PartOfDay, Preferences, local_to_utc, wall_time_exists, zone
from core.services import booking, calls
from core.services.assignments import active_assignment, auto_assign_best, patient_today
from core.services.common import Actor
from core.services.people import find_patient_by_phone
from core.timefmt import local_iso, spoken
from voice.log_writer import store_lines
from voice.tool_calls import ReadToolCall, WriteNeeded

if TYPE_CHECKING:  # the pool starts workers that import this module
    from voice.tool_processes import ToolProcesses

logger = logging.getLogger(__name__)

MAX_VERIFICATION_ATTEMPTS = 3
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_LOCAL_START = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{1,2}:\d{2})(?::00)?$")


def _fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict:
    return {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        },
    }


_STR = {"type": "string"}
TOOL_DEFINITIONS: list[dict[str, Any]] = [
    _fn(
        "verify_patient",
        "Verify the caller's identity with their date of birth (and name if given). "
        "Must succeed before any other tool except transfer_to_staff and end_call.",
        {
            "date_of_birth": {**_STR, "description": "YYYY-MM-DD"},
            "full_name": {**_STR, "description": "The caller's first and last name"},
        },
        ["date_of_birth"],
    ),
    _fn("get_assigned_nurse", "The patient's assigned nurse (assigns one if none).", {}, []),
    _fn(
        "check_availability",
        "Whether a date (and time) is free with the patient's nurse; alternatives if not.",
        {
            "date": {**_STR, "description": "YYYY-MM-DD in the patient's time zone"},
            "time": {**_STR, "description": "HH:MM (24 h) in the patient's time zone"},
            "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 480},
            "part_of_day": {
                "type": "string",
                "enum": ["morning", "afternoon", "evening"],
                "description": "When the caller prefers visits; alternatives keep to it",
            },
            "weekdays": {
                "type": "array",
                "items": {"type": "string", "enum": list(WEEKDAY_NAMES)},
                "description": "Days the caller prefers; alternatives keep to them",
            },
        },
        ["date"],
    ),
    _fn(
        "book_appointment",
        "Book a visit after the caller explicitly said yes to the read-back.",
        {
            "start": {**_STR, "description": "YYYY-MM-DDTHH:MM, patient's local time"},
            "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 480},
            "reason": _STR,
            "nurse_id": {
                "type": "integer",
                "description": "Only for an offered alternative with another nurse: its nurse_id",
            },
        },
        ["start"],
    ),
    _fn("list_appointments", "The patient's upcoming appointments.", {}, []),
    _fn(
        "cancel_appointment",
        "Cancel one of the patient's appointments (after an explicit yes).",
        {"appointment_id": {"type": "integer"}, "reason": _STR},
        ["appointment_id"],
    ),
    _fn(
        "reschedule_appointment",
        "Move one of the patient's appointments (after an explicit yes).",
        {
            "appointment_id": {"type": "integer"},
            "new_start": {**_STR, "description": "YYYY-MM-DDTHH:MM, patient's local time"},
        },
        ["appointment_id", "new_start"],
    ),
    _fn(
        "transfer_to_staff",
        "Hand the caller to a person (or record a callback request when none is available).",
        {"reason": _STR},
        ["reason"],
    ),
    _fn(
        "end_call",
        "Hang up after saying goodbye.",
        {"reason": _STR},
        [],
    ),
]
TOOL_NAMES = frozenset(t["name"] for t in TOOL_DEFINITIONS)
OPEN_BEFORE_VERIFICATION = frozenset({"verify_patient", "transfer_to_staff", "end_call"})
# Tools a worker process may run: they change nothing, not even the call's state.
# get_assigned_nurse writes only for a patient without a nurse: the worker answers WriteNeeded
# and the tool runs again in the service.
WORKER_TOOLS = frozenset({"check_availability", "list_appointments", "get_assigned_nurse"})


CALLBACK_REQUESTED = {
    "callback_requested": True,
    "message": "No one can take the call right now; a care coordinator will call back.",
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


def _parse_date(value: Any, field: str) -> date:
    if not isinstance(value, str) or not _DATE.match(value.strip()):
        raise ToolError("invalid_argument", f"{field} must be YYYY-MM-DD.", field=field)
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ToolError("invalid_argument", f"{field} is not a real date.", field=field) from exc


def _parse_minute(value: Any, field: str) -> int:
    match = _TIME.match(value.strip()) if isinstance(value, str) else None
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ToolError("invalid_argument", f"{field} must be HH:MM (24 hour).", field=field)
    return int(match[1]) * 60 + int(match[2])


def _local_instant(day: date, minute: int, tz: str, field: str) -> datetime:
    zone_info = zone(tz)
    if not wall_time_exists(day, minute, zone_info):
        raise ToolError("invalid_argument", "That clock time does not exist that day.", field=field)
    return local_to_utc(day, minute, zone_info)


def _parse_local_start(value: Any, tz: str, field: str) -> datetime:
    match = _LOCAL_START.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ToolError("invalid_argument", f"{field} must be YYYY-MM-DDTHH:MM.", field=field)
    return _local_instant(_parse_date(match[1], field), _parse_minute(match[2], field), tz, field)


def _preferences(part_of_day: Any, weekdays: Any, tz: str) -> Preferences | None:
    """The caller's stated preferences for alternatives (None: any time the nurse has)."""
    if part_of_day in (None, "") and not weekdays:
        return None
    if part_of_day not in (None, "") and part_of_day not in {p.value for p in PartOfDay}:
        raise ToolError(
            "invalid_argument",
            "part_of_day must be morning, afternoon or evening.",
            field="part_of_day",
        )
    days = weekdays or []
    if not isinstance(days, list) or any(
        not isinstance(d, str) or d.lower() not in WEEKDAY_NAMES for d in days
    ):
        raise ToolError(
            "invalid_argument", "weekdays must be a list of day names.", field="weekdays"
        )
    return Preferences(
        time_zone=tz,
        weekdays=frozenset(WEEKDAY_NAMES.index(d.lower()) for d in days),
        part_of_day=part_of_day or None,
    )


def _minutes(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ToolError("invalid_argument", "duration_minutes must be a whole number.")
    return value


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
        if name not in TOOL_NAMES:
            return {"error": "unknown_tool", "message": f"There is no tool called {name[:40]}."}
        if name not in OPEN_BEFORE_VERIFICATION and not self.verified:
            return {
                "error": "not_verified",
                "message": "Verify the caller with verify_patient before anything else.",
            }
        method = getattr(self, f"tool_{name}")
        try:
            return method(tool_call_id=tool_call_id, **arguments)
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
        except TypeError:
            return {"error": "invalid_argument", "message": f"Wrong arguments for {name}."}
        except Exception:
            log_failure(logger, "call %s: tool %s failed", self.context.call_id, name)
            return {"error": "internal", "message": "Something went wrong; offer a transfer."}

    # ------------------------------------------------------------ tools

    def tool_verify_patient(
        self, *, tool_call_id: str, date_of_birth: Any = None, full_name: Any = None
    ) -> dict[str, Any]:
        """Match the patient's phone on this call plus date of birth (and name if given)."""
        if self.verified:
            return {"verified": True, "message": "Already verified."}
        if self.locked:
            raise ToolError(
                "verification_locked",
                "Too many failed attempts; offer to transfer the caller to staff.",
            )
        dob = _parse_date(date_of_birth, "date_of_birth")
        with transaction(self.sessions) as session:
            patient = find_patient_by_phone(session, self.context.patient_phone)
            ok = patient is not None and patient.date_of_birth == dob
            if ok and isinstance(full_name, str) and full_name.strip():
                ok = _names_match(full_name, patient)  # type: ignore[arg-type]
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

    def tool_get_assigned_nurse(self, *, tool_call_id: str) -> dict[str, Any]:
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
        self,
        *,
        tool_call_id: str,
        date: Any = None,
        time: Any = None,
        duration_minutes: Any = None,
        part_of_day: Any = None,
        weekdays: Any = None,
    ) -> dict[str, Any]:
        """Whether the asked time is free; alternatives (within the caller's preferences) if
        not; a day's free slots if no time."""
        assert self.patient_id is not None
        tz, now = self.time_zone, self.clock()
        day = _parse_date(date, "date")
        minutes = _minutes(duration_minutes)
        preferences = _preferences(part_of_day, weekdays, tz)
        if day < now.astimezone(zone(tz)).date():
            raise ToolError("in_the_past", "That date has already passed.", field="date")
        with transaction(self.reads) as session:
            if time is not None and time != "":
                start = _local_instant(day, _parse_minute(time, "time"), tz, "time")
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
            first = _local_instant(day, 0, tz, "date")
            last = _local_instant(day + timedelta(days=1), 0, tz, "date")
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
        self,
        *,
        tool_call_id: str,
        start: Any = None,
        duration_minutes: Any = None,
        reason: Any = "",
        nurse_id: Any = None,
    ) -> dict[str, Any]:
        """Book with the patient's nurse (or the assigned nurse of an offered alternative); the
        tool call id makes a retry return the same visit."""
        assert self.patient_id is not None
        tz, now = self.time_zone, self.clock()
        begin = _parse_local_start(start, tz, "start")
        with_nurse = _optional_id(nurse_id, "nurse_id")
        with transaction(self.sessions) as session:
            appointment = booking.book_appointment(
                session,
                patient_id=self.patient_id,
                nurse_id=with_nurse,
                start=begin,
                actor=self.actor,
                now=now,
                duration_minutes=_minutes(duration_minutes),
                reason=str(reason or ""),
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
                "nurse_name": appointment.nurse.display_name,
            }

    def tool_list_appointments(self, *, tool_call_id: str) -> dict[str, Any]:
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
                        "nurse_name": a.nurse.display_name,
                    }
                    for a in found
                ]
            }

    def tool_cancel_appointment(
        self, *, tool_call_id: str, appointment_id: Any = None, reason: Any = ""
    ) -> dict[str, Any]:
        """Cancel one of this patient's visits."""
        assert self.patient_id is not None
        tz = self.time_zone
        appointment_id = _appointment_id(appointment_id)
        with transaction(self.sessions) as session:
            calls.patient_appointment(session, self.patient_id, appointment_id)
            appointment = booking.cancel_appointment(
                session,
                appointment_id,
                actor=self.actor,
                now=self.clock(),
                reason_code="patient_request",
                note=str(reason or "")[:500],
            )
            calls.set_outcome(session, self.context.call_id, "cancelled")
            return {
                "cancelled": True,
                "appointment_id": appointment.id,
                "start": local_iso(appointment.start_at, tz),
                "spoken": spoken(appointment.start_at, tz),
            }

    def tool_reschedule_appointment(
        self, *, tool_call_id: str, appointment_id: Any = None, new_start: Any = None
    ) -> dict[str, Any]:
        """Move one of this patient's visits to a new local start time."""
        assert self.patient_id is not None
        tz, now = self.time_zone, self.clock()
        appointment_id = _appointment_id(appointment_id)
        begin = _parse_local_start(new_start, tz, "new_start")
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
            }

    def tool_transfer_to_staff(self, *, tool_call_id: str, reason: Any = "") -> dict[str, Any]:
        """Transfer to the staff line after the agent's next words, or record a callback."""
        return self.transfer(str(reason or ""))

    def transfer(self, reason: str) -> dict[str, Any]:
        """Arrange a transfer (or a callback request when no staff line is configured)."""
        with transaction(self.sessions) as session:
            if self.staff_phone_number and self.can_transfer:
                calls.set_outcome(session, self.context.call_id, "transferred")
                self.pending_action = PendingAction("transfer", self.staff_phone_number)
                return {
                    "transferring": True,
                    "message": "Tell the caller you are connecting them to a staff member now.",
                }
            if self.callback_requested:
                # Asked again on this call (the keypad pressed twice, then the agent): one
                # request is what the coordinators should see.
                return dict(CALLBACK_REQUESTED)
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

    def tool_end_call(self, *, tool_call_id: str, reason: Any = "") -> dict[str, Any]:
        """Hang up once the goodbye has played."""
        self.pending_action = self.pending_action or PendingAction("hang_up")
        return {"ending": True}


def _record_id(value: Any, field: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ToolError("invalid_argument", f"{field} must be a number.", field=field)
    return value


def _appointment_id(value: Any) -> int:
    return _record_id(value, "appointment_id")


def _optional_id(value: Any, field: str) -> int | None:
    return None if value is None or value == "" else _record_id(value, field)
