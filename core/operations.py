"""One validation model per write operation, shared by the dashboard, the API and the phone agent.

Each model checks the input's shape (required, lengths, ranges, choices, formats) and reports
every problem at once; the services keep the rules that need the database or the clock (a
phone another patient has, a time already taken). `form_input` reads a model's fields from a
submitted form and `field_messages` turns a pydantic ValidationError into one sentence per
field, written for the person who filled the form in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Annotated, Any, TypeVar, get_args

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from core.errors import ValidationError
from core.limits import EARLIEST_YEAR, LATEST_YEAR, MAX_ID
from core.models import (
    AppointmentKind,
    AssignmentRole,
    CancelReason,
    Choices,
    OverrideKind,
    PartOfDay,
    Role,
    SeriesScope,
    Weekday,
)
from core.services.common import check_password, check_zone, normalise_email, normalise_phone

FORM = "_form"  # where a problem that belongs to no one field is reported


# ------------------------------------------------------------------ how a field is asked for


@dataclass(frozen=True)
class Choice:
    """Field metadata: the field is picked from a list; `prompt` says what is being chosen."""

    prompt: str  # "why the visit is cancelled", "a patient"
    members: tuple[Choices, ...] = ()

    @property
    def noun(self) -> str:
        """What is chosen, without its article ("nurse" for "a nurse")."""
        return re.sub(r"^(a|an|the) ", "", self.prompt)

    def message(self) -> str:
        """'Choose why the visit is cancelled: Patient asked to cancel, ... or Other.'"""
        if not self.members:
            return f"Choose {self.prompt}."
        return f"Choose {self.prompt}: {spoken_list([m.label for m in self.members])}."


def spoken_list(words: Sequence[str]) -> str:
    """'a, b or c', as a person lists choices."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} or {words[-1]}"


def problem(message: str) -> PydanticCustomError:
    """A validation error whose message is already written for people (shown as it is)."""
    return PydanticCustomError("problem", message)


def _service_check(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A core.services.common check as a validator: its ValidationError becomes a field error."""

    def validate(value: Any) -> Any:
        try:
            return check(value)
        except ValidationError as exc:
            raise problem(exc.message) from None

    return validate


def _choice_of(*members: Choices) -> Callable[[Any], Any]:
    """A validator taking only `members`' values (an enum error naming them otherwise)."""
    allowed = {member.value: member for member in members}

    def validate(value: Any) -> Any:
        if isinstance(value, str) and value in allowed:
            return allowed[value]
        expected = spoken_list([f"'{value}'" for value in allowed])
        raise PydanticCustomError("enum", "Input should be {expected}", {"expected": expected})

    return validate


# ------------------------------------------------------------------ value types


def _trimmed(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _text_or_empty(value: Any) -> Any:
    return "" if value is None else _trimmed(value)


def _listed(value: Any) -> Any:
    """Comma- or newline-separated text as a list; duplicates (any case) and blanks dropped."""
    if isinstance(value, str):
        value = value.replace("\n", ",").split(",")
    if not isinstance(value, list):
        return value
    kept: list[Any] = []
    for item in value:
        item = _trimmed(item)
        if isinstance(item, str) and (
            not item or item.lower() in {k.lower() for k in kept if isinstance(k, str)}
        ):
            continue
        kept.append(item)
    return kept


def whole_number(value: Any) -> Any:
    """A JSON number without a fraction (1.0) is an integer, as JSON Schema itself reads it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# PostgreSQL refuses NUL characters in text: refuse them at the door instead of failing there.
NO_NUL = r"^[^\x00]*$"
Name = Annotated[
    str,
    BeforeValidator(_trimmed),
    StringConstraints(min_length=1, max_length=100, pattern=NO_NUL),
]


# Free text, trimmed (a missing one is ""), up to a length.
Text20 = Annotated[str, BeforeValidator(_text_or_empty), StringConstraints(max_length=20)]
Text60 = Annotated[str, BeforeValidator(_text_or_empty), StringConstraints(max_length=60)]
Text100 = Annotated[str, BeforeValidator(_text_or_empty), StringConstraints(max_length=100)]
Text200 = Annotated[str, BeforeValidator(_text_or_empty), StringConstraints(max_length=200)]
Text5000 = Annotated[str, BeforeValidator(_text_or_empty), StringConstraints(max_length=5000)]
# The API's free text: taken as sent, NUL refused (PostgreSQL cannot store it).
Text500 = Annotated[str, StringConstraints(max_length=500, pattern=NO_NUL)]
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(whole_number)]
# Which visit of a series (0 = the first), as a 409 and the series' appointments number them.
VisitIndex = Annotated[int, Field(ge=0, le=103), BeforeValidator(whole_number)]
Phone = Annotated[str, AfterValidator(_service_check(normalise_phone))]
Email = Annotated[str, AfterValidator(_service_check(normalise_email))]
Password = Annotated[str, AfterValidator(_service_check(check_password))]  # taken as typed
TimeZone = Annotated[str, BeforeValidator(_trimmed), AfterValidator(_service_check(check_zone))]
Specialisations = Annotated[
    list[Annotated[str, StringConstraints(max_length=100, pattern=NO_NUL)]],
    BeforeValidator(_listed),
]

# The written forms the API reads, stated in its document as `pattern` and enforced with the same
# text: RFC 3339 (what JSON Schema's `date` and `date-time` formats mean) within the years of
# core.limits, which keeps the scheduling arithmetic away from year 1 and year 9999. Without them
# pydantic would also read a bare number ("1700000000") as a Unix time.
_YEAR = "(19[7-9][0-9]|20[0-9]{2}|2100)"
_DAY = "-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
DATE_PATTERN = f"^{_YEAR}{_DAY}$"
INSTANT_PATTERN = (
    f"^{_YEAR}{_DAY}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]+)?"
    "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_INSTANT = re.compile(INSTANT_PATTERN)
_DATE = re.compile(DATE_PATTERN)
INSTANT_EXAMPLE = "2025-03-04T10:00:00-05:00"
INSTANT_RULES = (
    f"RFC 3339 date-time with an offset (Z or +-HH:MM), years {EARLIEST_YEAR}-{LATEST_YEAR}"
)


def written_as(
    pattern: re.Pattern[str],
    parse: Callable[[str], Any],
    example: str,
    years: tuple[int, int] = (EARLIEST_YEAR, LATEST_YEAR),
) -> Callable[[Any], Any]:
    """A validator taking only text in `pattern`, parsed (strict mode takes no text after one)."""

    def check(value: Any) -> Any:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"write it like {example}, with a year from {years[0]} to {years[1]}")
        return parse(value)  # ValueError for a day the month does not have

    return check


# Kept with the offset as written: a booking checks it against the nurse's zone (a time the
# clocks skip, written with that zone's offset, is refused rather than moved an hour).
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(written_as(_INSTANT, datetime.fromisoformat, INSTANT_EXAMPLE)),
    Field(
        description=f"{INSTANT_RULES}, e.g. {INSTANT_EXAMPLE}",
        json_schema_extra={"pattern": INSTANT_PATTERN},
    ),
]
Day = Annotated[
    date,
    BeforeValidator(written_as(_DATE, date.fromisoformat, "2025-03-04")),
    Field(json_schema_extra={"pattern": DATE_PATTERN}),
]
# A date of birth: the scheduling years do not reach back far enough. Whether it has come yet
# is the service's check (it knows today).
BIRTH_DATE_PATTERN = f"^(19[0-9]{{2}}|20[0-9]{{2}}|2100){_DAY}$"
BirthDate = Annotated[
    date,
    BeforeValidator(
        written_as(re.compile(BIRTH_DATE_PATTERN), date.fromisoformat, "1940-01-02", (1900, 2100))
    ),
    Field(json_schema_extra={"pattern": BIRTH_DATE_PATTERN}),
]
MAX_VISIT_MINUTES = 8 * 60
VisitMinutes = Annotated[
    int,
    Field(ge=5, le=MAX_VISIT_MINUTES, description="Visit length in minutes"),
    BeforeValidator(whole_number),
]


def _in_scheduling_years(value: date) -> date:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise PydanticCustomError(
            "year_range",
            "must be between {first} and {last}",
            {"first": EARLIEST_YEAR, "last": LATEST_YEAR},
        )
    return value


def _minute(value: time) -> time:
    return value.replace(second=0, microsecond=0)


# What a form's date and time inputs send (YYYY-MM-DD, HH:MM).
FormDay = Annotated[date, AfterValidator(_in_scheduling_years)]
ClockTime = Annotated[time, AfterValidator(_minute)]

# Choices: the enum's own values, asked for in words with its labels.
KindOfOverride = Annotated[OverrideKind, Choice("time off or extra hours", tuple(OverrideKind))]
KindOfVisit = Annotated[AppointmentKind, Choice("the kind of visit", tuple(AppointmentKind))]
StaffRole = Annotated[Role, Choice("a role", tuple(Role))]
CareTeamRole = Annotated[AssignmentRole, Choice("the role on the care team", tuple(AssignmentRole))]
CANCEL_REASON_CHOICE = Choice("why the visit is cancelled", tuple(CancelReason.chosen_by_people()))
ChosenCancelReason = Annotated[
    CancelReason,
    BeforeValidator(_choice_of(*CANCEL_REASON_CHOICE.members)),
    WithJsonSchema({"type": "string", "enum": [r.value for r in CANCEL_REASON_CHOICE.members]}),
    CANCEL_REASON_CHOICE,
]


# ------------------------------------------------------------------ the operations


class Operation(BaseModel):
    """A write operation's input: unknown fields are refused, so a typo does not pass silently."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def problems_together(cls, data: Mapping[str, Any]) -> dict[str, str]:
        """Problems of fields taken together (an address without its city), by field."""
        return {}

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem_at_once(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        # Fields taken together are judged on the input as given, so that their problems are
        # reported with each field's own, not only once those are fixed.
        together = cls.problems_together(data) if isinstance(data, Mapping) else {}
        try:
            model = handler(data)
        except PydanticValidationError as exc:
            if not together:
                raise
            raise _with_problems(cls.__name__, exc.errors(include_url=False), together) from None
        if together:
            raise _with_problems(cls.__name__, [], together)
        return model


def _with_problems(
    title: str, issues: Sequence[Any], problems: Mapping[str, str]
) -> PydanticValidationError:
    """A ValidationError with `issues` (pydantic's) and `problems` (field: message) together."""
    named = {str(issue["loc"][0]) for issue in issues if issue["loc"]}
    details: list[InitErrorDetails] = [
        InitErrorDetails(
            type=PydanticCustomError(issue["type"], issue["msg"], issue.get("ctx")),
            loc=issue["loc"],
            input=issue.get("input"),
        )
        for issue in issues
    ]
    details += [
        InitErrorDetails(type=problem(message), loc=(name,), input=None)
        for name, message in problems.items()
        if name not in named  # the field's own problem comes first
    ]
    return PydanticValidationError.from_exception_data(title, details)


def _given(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name)
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


def _parsed(data: Mapping[str, Any], name: str, parse: Callable[[str], Any]) -> Any:
    """The field as `parse` reads it, or None when it is missing or unreadable."""
    value = data.get(name)
    if isinstance(value, str) and value.strip():
        try:
            return parse(value.strip())
        except ValueError:
            return None
    return value if isinstance(value, date | time) else None


def span_problems(data: Mapping[str, Any], *, all_day: str) -> dict[str, str]:
    """A date range and an optional time range: last date not before the first, both times or
    neither (`all_day` says what neither means), the end after the start (00:00 = midnight)."""
    problems: dict[str, str] = {}
    first = _parsed(data, "start_date", date.fromisoformat)
    last = _parsed(data, "end_date", date.fromisoformat)
    if isinstance(first, date) and isinstance(last, date) and last < first:
        problems["end_date"] = "The last date is before the first."
    if _given(data, "start_time") != _given(data, "end_time"):
        problems["end_time"] = f"Give both a start and an end time, or neither for {all_day}."
    begin = _parsed(data, "start_time", time.fromisoformat)
    end = _parsed(data, "end_time", time.fromisoformat)
    if isinstance(begin, time) and isinstance(end, time) and end != time(0) and end <= begin:
        problems["end_time"] = "The end time must be after the start (00:00 = midnight)."
    return problems


OperationT = TypeVar("OperationT", bound=Operation)


class NurseDetails(Operation):
    """Add a nurse, or change one's details and visit settings."""

    title: Annotated[str, Field(max_length=40, title="Title"), BeforeValidator(_text_or_empty)] = ""
    first_name: Name = Field(title="First name")
    last_name: Name = Field(title="Last name")
    specializations: Specialisations = Field(default_factory=list, title="Specialisation")
    phone: Phone | None = Field(None, title="Phone")
    email: Email | None = Field(None, title="Email")
    time_zone: TimeZone = Field(title="Time zone")
    # Visit settings are required: the form offers sensible ones, so a blank was cleared.
    visit_minutes: int = Field(ge=5, le=MAX_VISIT_MINUTES, title="Visit length")
    buffer_before_minutes: int = Field(ge=0, le=240, title="Buffer before")
    buffer_after_minutes: int = Field(ge=0, le=240, title="Buffer after")
    min_notice_minutes: int = Field(ge=0, le=60 * 24 * 30, title="Minimum notice")
    horizon_days: int = Field(ge=1, le=365, title="Booking horizon")
    slot_step_minutes: int = Field(ge=5, le=120, title="Slot step")
    daily_cap: int | None = Field(None, ge=1, le=100, title="Daily cap")
    active: bool = Field(True, title="Active")


LANGUAGES = ("en", "es", "fr", "de", "pt", "it", "zh", "vi", "ko", "tl", "ar", "ru", "hi")


def _language(value: str) -> str:
    language = value.strip().lower() or "en"
    if language not in LANGUAGES:
        raise problem(f"Supported languages: {', '.join(sorted(LANGUAGES))}.")
    return language


def _born(value: date, info: ValidationInfo) -> date:
    # `today` (validation context) is the patient's day as the entry point knows it.
    today = (info.context or {}).get("today")
    if value.year < 1900 or (today is not None and value > today):
        raise problem("That date of birth is not possible.")
    return value


class PatientDetails(Operation):
    """Add a patient, or change one's details (the service checks the phone is not taken)."""

    first_name: Name = Field(title="First name")
    last_name: Name = Field(title="Last name")
    date_of_birth: Annotated[date, AfterValidator(_born)] = Field(title="Date of birth")
    phone: Phone = Field(title="Phone")
    email: Email | None = Field(None, title="Email")
    time_zone: TimeZone = Field(title="Time zone")
    preferred_language: Annotated[str, AfterValidator(_language)] = Field(
        "en", title="Preferred language"
    )
    conditions: Specialisations = Field(default_factory=list, title="Condition")
    sms_consent: bool = Field(False, title="Text message consent")
    notes: Text5000 = Field("", title="Notes")
    address_line1: Text200 | None = Field(None, title="Address line 1")
    address_line2: Text200 | None = Field(None, title="Address line 2")
    address_city: Text100 | None = Field(None, title="City")
    address_region: Text100 | None = Field(None, title="State or region")
    address_postal_code: Text20 | None = Field(None, title="Postal code")
    emergency_contact_name: Text100 | None = Field(None, title="Emergency contact name")
    emergency_contact_relationship: Text60 | None = Field(None, title="Relationship")
    emergency_contact_phone: Phone | None = Field(None, title="Emergency contact phone")

    @classmethod
    def problems_together(cls, data: Mapping[str, Any]) -> dict[str, str]:
        """An address or an emergency contact is left out whole, or given with its parts."""
        return {
            **_missing_parts(data, ADDRESS_NEEDS, "address_line2", "address_region"),
            **_missing_parts(data, EMERGENCY_CONTACT_NEEDS, "emergency_contact_relationship"),
        }


ADDRESS_NEEDS = {
    "address_line1": "Give the street address, or leave the whole address empty.",
    "address_city": "Give the city, or leave the whole address empty.",
    "address_postal_code": "Give the postal code, or leave the whole address empty.",
}
EMERGENCY_CONTACT_NEEDS = {
    "emergency_contact_name": "Give the emergency contact's name.",
    "emergency_contact_phone": "Give the emergency contact's phone number.",
}


def _missing_parts(
    data: Mapping[str, Any], needed: Mapping[str, str], *optional: str
) -> dict[str, str]:
    """A group of fields given in part: each `needed` one missing, with its message."""
    if not any(_given(data, name) for name in (*needed, *optional)):
        return {}
    return {name: message for name, message in needed.items() if not _given(data, name)}


class WeeklyWindow(Operation):
    """One window of a nurse's weekly hours: wall-clock times in her zone, end 00:00 = midnight."""

    weekday: int = Field(ge=0, le=6, title="Weekday", description="0 = Monday ... 6 = Sunday")
    start: ClockTime = Field(title="Start")
    end: ClockTime = Field(title="End")
    valid_from: Day | None = Field(None, title="Valid from")
    valid_to: Day | None = Field(None, title="Valid to")

    @classmethod
    def problems_together(cls, data: Mapping[str, Any]) -> dict[str, str]:
        """The end after the start (00:00 = midnight)."""
        begin = _parsed(data, "start", time.fromisoformat)
        end = _parsed(data, "end", time.fromisoformat)
        if isinstance(begin, time) and isinstance(end, time) and end != time(0) and end <= begin:
            return {
                "end": f"The end ({end:%H:%M}) must be after the start ({begin:%H:%M}); "
                "use 00:00 for midnight."
            }
        return {}


class AvailabilityOverride(Operation):
    """Give a nurse time off or extra hours: dates in her zone, a time range or all day."""

    kind: KindOfOverride = Field(OverrideKind.TIME_OFF, title="Kind")
    start_date: FormDay = Field(title="First date")
    end_date: FormDay | None = Field(None, title="Last date")
    start_time: ClockTime | None = Field(None, title="From")
    end_time: ClockTime | None = Field(None, title="To")
    reason: Text200 = Field("", title="Reason")

    @classmethod
    def problems_together(cls, data: Mapping[str, Any]) -> dict[str, str]:
        """The dates and times as a span."""
        return span_problems(data, all_day="all day")


class AskTimeOff(Operation):
    """A nurse asks for time off, for a coordinator to approve; she must say why."""

    start_date: FormDay = Field(title="First date")
    end_date: FormDay | None = Field(None, title="Last date")
    start_time: ClockTime | None = Field(None, title="From")
    end_time: ClockTime | None = Field(None, title="To")
    reason: Annotated[
        str, BeforeValidator(_text_or_empty), StringConstraints(min_length=1, max_length=200)
    ] = Field(
        title="Reason",
        json_schema_extra={"required_message": "Say why, so the coordinator can plan"},
    )


class VisitDetails(Operation):
    """Book a visit for a patient (by default with their primary nurse, at her visit length)."""

    patient_id: Annotated[Id, Choice("a patient")] = Field(title="Patient")
    start: Instant = Field(title="Start")
    nurse_id: Id | None = Field(None, description="Default: the patient's primary nurse")
    duration_minutes: VisitMinutes | None = Field(
        None, description="Default: the nurse's visit length", title="Length"
    )
    kind: KindOfVisit = Field(AppointmentKind.PHONE, title="Kind")
    reason: Text500 = Field("", title="Reason")


SERIES_WEEKDAY = Choice("one or more weekdays", tuple(Weekday))
SeriesWeekday = Annotated[Weekday, BeforeValidator(_choice_of(*Weekday)), SERIES_WEEKDAY]


def _distinct_weekdays(value: list[Weekday]) -> list[Weekday]:
    """The chosen weekdays in week order, each once."""
    return sorted(set(value), key=lambda day: day.number)


def _visits_in_a_series(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 104:
        raise problem("A series has 1 to 104 visits.")
    return value


def _not_null(value: Any) -> Any:
    """An optional field given as null: leaving it out is how it is not given."""
    if value is None:
        raise problem("Give a value, or leave the field out.")
    return value


class SeriesDetails(Operation):
    """Book recurring visits: every N weeks on chosen weekdays at the first visit's wall-clock
    time in the nurse's zone, for a number of visits or until a date (a year at most)."""

    # The document states what `problems_together` enforces: a count or an end date, one.
    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["count"]}, {"required": ["until"]}]}
    )

    patient_id: Annotated[Id, Choice("a patient")] = Field(title="Patient")
    nurse_id: Id | None = Field(None, description="Default: the patient's primary nurse")
    start: Instant = Field(
        title="First visit", description="The first occurrence; its wall-clock time repeats"
    )
    weekdays: Annotated[
        list[SeriesWeekday], Field(min_length=1, max_length=7), AfterValidator(_distinct_weekdays)
    ] = Field(
        title="Weekdays",
        json_schema_extra={"required_message": "Choose at least one weekday"},
    )
    interval_weeks: Annotated[int, Field(ge=1, le=12), BeforeValidator(whole_number)] = Field(
        1, title="Every how many weeks"
    )
    count: Annotated[
        int | None,
        BeforeValidator(whole_number),
        BeforeValidator(_not_null),
        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 104}),
        AfterValidator(_visits_in_a_series),
    ] = Field(None, title="Number of visits", description="How many visits (or give `until`)")
    until: Annotated[
        Day | None,
        BeforeValidator(_not_null),
        WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
    ] = Field(
        None, title="Last date", description="Local date of the last possible visit (or `count`)"
    )
    duration_minutes: VisitMinutes | None = Field(
        None, description="Default: the nurse's visit length", title="Length"
    )
    kind: KindOfVisit = Field(AppointmentKind.PHONE, title="Kind")
    reason: Text500 = Field("", title="Reason")

    @classmethod
    def problems_together(cls, data: Mapping[str, Any]) -> dict[str, str]:
        """A series ends after a number of visits or on a date: one of the two."""
        if _given(data, "count") == _given(data, "until"):
            return {"count": "Give the number of visits or the last date, one of the two."}
        return {}


PART_OF_DAY = Choice("parts of the day", tuple(PartOfDay))
PartOfDayChoice = Annotated[PartOfDay, BeforeValidator(_choice_of(*PartOfDay)), PART_OF_DAY]


def _distinct_parts(value: list[PartOfDay]) -> list[PartOfDay]:
    """The chosen parts of the day in the day's order, each once."""
    return sorted(set(value), key=list(PartOfDay).index)


class JoinWaitlist(Operation):
    """Wait for an earlier time with one nurse of the patient's care team, or any nurse who
    covers their needs, within dates, weekdays and parts of the day (in the patient's zone)."""

    patient_id: Annotated[Id, Choice("a patient")] = Field(title="Patient")
    nurse_id: Id | None = Field(
        None,
        title="Nurse",
        description="Default: any nurse on the care team or who covers the patient's conditions",
    )
    from_date: Annotated[
        Day | None,
        BeforeValidator(_not_null),
        WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
    ] = Field(None, title="From", description="First date to wait for (default: today)")
    until_date: Day = Field(title="Until", description="Last date to wait for (92 days at most)")
    weekdays: Annotated[
        list[SeriesWeekday], Field(max_length=7), AfterValidator(_distinct_weekdays)
    ] = Field(default_factory=list, title="Weekdays", description="None chosen: any day")
    parts_of_day: Annotated[
        list[PartOfDayChoice], Field(max_length=3), AfterValidator(_distinct_parts)
    ] = Field(
        default_factory=list,
        title="Parts of the day",
        description="morning (before 12:00), afternoon (12:00-17:00), evening (from 17:00); "
        "none chosen: any time",
    )
    kind: KindOfVisit = Field(AppointmentKind.PHONE, title="Kind")
    appointment_id: Id | None = Field(
        None,
        title="Visit to bring earlier",
        description="One of the patient's scheduled visits: only earlier times are offered, and "
        "accepting moves this visit there instead of booking another (the window must end by "
        "its date)",
    )


class CancelSeriesVisits(Operation):
    """Cancel one visit of a series, or it and every later one, with a reason."""

    appointment_id: Annotated[Id, Choice("a visit of the series")] = Field(title="Visit")
    scope: Annotated[SeriesScope, Choice("which visits", tuple(SeriesScope))] = Field(
        SeriesScope.THIS, title="Which visits"
    )
    reason_code: ChosenCancelReason = Field(title="Cancellation reason")
    note: Text500 = Field("", title="Note")


class MoveSeriesVisits(Operation):
    """Move one visit of a series, or it and every later one by the same change of date and
    wall-clock time (they then continue as a new series)."""

    appointment_id: Annotated[Id, Choice("a visit of the series")] = Field(title="Visit")
    scope: Annotated[SeriesScope, Choice("which visits", tuple(SeriesScope))] = Field(
        SeriesScope.THIS, title="Which visits"
    )
    start: Instant = Field(title="New start", description="The chosen visit's new start")


class Reschedule(Operation):
    """Move a visit to another time with the same nurse."""

    start: Instant = Field(title="New start")
    duration_minutes: VisitMinutes | None = Field(
        None, description="Default: keep the length", title="Length"
    )


class CancelVisit(Operation):
    """Cancel a visit with a reason and an optional note (the row is kept)."""

    reason_code: ChosenCancelReason = Field(title="Cancellation reason")
    note: Text500 = Field("", title="Note")


class VisitNote(Operation):
    """Mark a visit completed or a no-show, with an optional note."""

    note: Text500 = Field("", title="Note")


class NewStaffUser(Operation):
    """Add a staff login; a nurse's login is linked to her nurse record."""

    email: Annotated[str, AfterValidator(_service_check(normalise_email))] = Field(title="Email")
    password: Password = Field(title="Password")
    role: StaffRole = Field(title="Role")
    nurse_id: Id | None = Field(None, title="Nurse")


class NewPassword(Operation):
    """Set a staff login's password (its sessions end)."""

    password: Password = Field(title="Password")


class NurseLink(Operation):
    """Link a staff login to a nurse record, or unlink it (no nurse)."""

    nurse_id: Annotated[Id | None, Choice("a nurse")] = Field(None, title="Nurse")


class NewApiToken(Operation):
    """Create an API token for one's own login; the name is a reminder of what uses it."""

    name: Annotated[
        str, BeforeValidator(_text_or_empty), StringConstraints(min_length=1, max_length=100)
    ] = Field(
        title="Token name",
        json_schema_extra={"required_message": "Give the token a name, e.g. what will use it"},
    )


class CareTeamChange(Operation):
    """Make a nurse a patient's primary or backup nurse."""

    nurse_id: Annotated[Id, Choice("a nurse")] = Field(title="Nurse")
    role: CareTeamRole = Field(AssignmentRole.PRIMARY, title="As")


class DeclineTimeOff(Operation):
    """Decline a nurse's time-off request, with an optional note she sees."""

    note: Text200 = Field("", title="Note")


class ConditionMapping(Operation):
    """Say which specialisations cover a condition, for matching nurses to patients."""

    condition: Name = Field(title="The condition")
    specializations: Specialisations = Field(default_factory=list, title="Specialisation")


# ------------------------------------------------------------------ forms and messages


def form_input(model: type[Operation], form: Mapping[str, str], **given: Any) -> dict[str, Any]:
    """The model's fields from a submitted form: blanks left out (so defaults apply), `given`
    (values the page itself decides, like a checkbox's state) added."""
    values: dict[str, Any] = {}
    for name in model.model_fields:
        raw = form.get(name)
        if raw is not None and raw.strip():
            values[name] = raw.strip()
    return {**values, **given}


def validate_form(
    model: type[OperationT],
    form: Mapping[str, str],
    *,
    context: dict[str, Any] | None = None,
    **given: Any,
) -> tuple[OperationT | None, dict[str, str]]:
    """The validated model, or None with every field's problem (see `field_messages`);
    `context` is what rules need to know besides the input (today's date)."""
    try:
        return model.model_validate(form_input(model, form, **given), context=context), {}
    except PydanticValidationError as exc:
        return None, field_messages(exc, model)


def field_messages(exc: PydanticValidationError, model: type[BaseModel]) -> dict[str, str]:
    """One sentence per field with a problem (the first), for the person who filled it in."""
    messages: dict[str, str] = {}
    for issue in exc.errors(include_url=False):
        name = str(issue["loc"][0]) if issue["loc"] else FORM
        if name not in messages:
            messages[name] = _sentence(issue, model.model_fields.get(name), name)
    return messages


def _title(info: FieldInfo | None, name: str) -> str:
    if info is not None and info.title:
        return info.title
    return name.replace("_", " ").capitalize()


def _constraint(info: FieldInfo | None, kind: type) -> Any:
    """The field's constraint of type `kind` (Ge, Choice...), also inside an optional type."""
    if info is None:
        return None
    found = [*info.metadata]
    for member in get_args(info.annotation):  # `Annotated[int, Field(ge=5)] | None`
        for item in getattr(member, "__metadata__", ()):
            found += item.metadata if isinstance(item, FieldInfo) else [item]
    return next((item for item in found if isinstance(item, kind)), None)


_DATE_TYPES = ("date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact")
_WHOLE_NUMBER_TYPES = ("int_parsing", "int_type", "int_from_float")


def _sentence(issue: Any, info: FieldInfo | None, name: str) -> str:
    kind = issue["type"]
    context = issue.get("ctx") or {}
    title = _title(info, name)
    choice = _constraint(info, Choice)
    if kind == "problem":
        return str(issue["msg"])
    if kind == "year_range":
        return f"{title} {issue['msg']}."
    if kind == "enum" or (choice and choice.members and kind != "problem"):
        return choice.message() if choice else f"Choose one of the {title.lower()} choices."
    if choice and kind == "missing":
        return choice.message()
    if choice:  # an id that cannot be one of the listed records
        return f"There is no such {choice.noun}: choose one from the list."
    if kind == "missing" or (
        kind in ("string_too_short", "too_short") and context.get("min_length") == 1
    ):
        extra = (info.json_schema_extra if info is not None else None) or {}
        custom = extra.get("required_message") if isinstance(extra, dict) else None
        return f"{custom}." if custom else f"{title} is required."
    # Text checked after a validator of ours reports as a sequence ("too_long"), not a string.
    if kind in ("string_too_long", "too_long"):
        return f"{title} is too long ({context['max_length']} characters at most)."
    if kind == "string_pattern_mismatch":
        return f"{title} holds characters that cannot be saved; retype it."
    if kind in _WHOLE_NUMBER_TYPES:
        return f"{title} must be a whole number."
    if kind in ("greater_than_equal", "less_than_equal"):
        low, high = _constraint(info, Ge), _constraint(info, Le)
        if low is not None and high is not None:
            return f"{title} must be between {low.ge} and {high.le}."
        bound = context.get("ge", context.get("le"))
        return f"{title} must be {'at least' if 'ge' in context else 'at most'} {bound}."
    if kind in _DATE_TYPES or kind == "date_type":
        return f"{title} must be a date (YYYY-MM-DD)."
    if kind.startswith("time_"):
        return f"{title} must be a time (HH:MM)."
    if kind.startswith("datetime_") or kind == "timezone_aware":
        return f"{title} must be a date and time."
    if kind.startswith("bool_"):
        return f"{title} must be yes or no."
    if kind == "list_type":
        return f"{title} must be a list."
    return f"{title}: {issue['msg']}."
