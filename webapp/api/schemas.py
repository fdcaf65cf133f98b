"""The API's request and response models: they validate input, shape output and are the
single source of the OpenAPI document's schemas."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from datetime import date as Date
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from core.limits import EARLIEST_YEAR, LATEST_YEAR
from core.models import (
    AppointmentKind,
    AppointmentStatus,
    AssignmentRole,
    CallbackStatus,
    CallDirection,
    CallStatus,
    OfferStatus,
    OverrideKind,
    PartOfDay,
    SeriesBookMode,
    WaitlistStatus,
    Weekday,
)
from core.operations import (
    INSTANT_EXAMPLE,
    INSTANT_PATTERN,
    INSTANT_RULES,
    LANGUAGES,
    NO_NUL,
    BirthDate,
    CancelSeriesVisits,
    CancelVisit,
    CareTeamChange,
    Day,
    Id,
    Instant,
    JoinWaitlist,
    MoveSeriesVisits,
    Reschedule,
    SeriesDetails,
    Text500,
    VisitDetails,
    VisitIndex,
    VisitMinutes,
    VisitNote,
    whole_number,
    written_as,
)

_INSTANT = re.compile(INSTANT_PATTERN)
_SPACE_OFFSET = re.compile(r"^(\S+T[\d:.]+) (\d{2}(?::?\d{2})?)$")


def _plus_from_query(value: Any) -> Any:
    """An unencoded `+` in a query string arrives as a space: take `10:00 05:00` as `+05:00`."""
    if isinstance(value, str):
        return _SPACE_OFFSET.sub(r"\1+\2", value)
    return value


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


QueryInstant = Annotated[
    AwareDatetime,
    BeforeValidator(written_as(_INSTANT, datetime.fromisoformat, INSTANT_EXAMPLE)),
    BeforeValidator(_plus_from_query),  # runs first: validators before it run last-to-first
    AfterValidator(_utc),
    Field(
        description=f"{INSTANT_RULES} (URL-encode `+` as %2B)",
        json_schema_extra={"pattern": INSTANT_PATTERN},
    ),
]
# PostgreSQL refuses NUL characters in text: refuse them at the door instead of failing there.
Search = Annotated[str, StringConstraints(max_length=100, pattern=NO_NUL)]
WallTime = Annotated[
    str,
    StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"),
    Field(description="Wall-clock time HH:MM in each nurse's own time zone"),
]


class Strict(BaseModel):
    """Request models: unknown fields are refused, so a typo does not pass silently."""

    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------ queries


class PageQuery(Strict):
    page: int = Field(1, ge=1, le=10_000, description="Page number, from 1")
    per_page: int = Field(20, ge=1, le=100, description="Items per page (at most 100)")


class NurseListQuery(PageQuery):
    q: Search | None = Field(None, description="Search in first name, last name and title")
    active: bool | None = Field(None, description="Only active (true) or inactive (false)")


class AvailableNursesQuery(Strict):
    date: Day = Field(
        description=f"Local date YYYY-MM-DD (years {EARLIEST_YEAR}-{LATEST_YEAR}), in each "
        "nurse's own time zone"
    )
    time: WallTime | None = None
    duration_minutes: VisitMinutes | None = None


class SlotsQuery(Strict):
    start: QueryInstant
    end: QueryInstant
    duration_minutes: VisitMinutes | None = None


class AppointmentListQuery(PageQuery):
    nurse_id: Id | None = None
    patient_id: Id | None = None
    status: AppointmentStatus | None = None
    start: QueryInstant | None = Field(None, description="Appointments starting at or after")
    end: QueryInstant | None = Field(None, description="Appointments starting before")


class CallListQuery(PageQuery):
    patient_id: Id | None = None
    direction: CallDirection | None = None
    status: CallStatus | None = None
    start: QueryInstant | None = Field(None, description="Calls created at or after")
    end: QueryInstant | None = Field(None, description="Calls created before")


class WaitlistListQuery(PageQuery):
    patient_id: Id | None = None
    status: WaitlistStatus | None = None


class TranscriptListQuery(PageQuery):
    patient_id: Id | None = None
    call_id: Id | None = None


class PatientListQuery(PageQuery):
    q: Search | None = Field(
        None, description="Every word in the first or last name, or 3+ digits of the phone"
    )


class CallbackListQuery(PageQuery):
    status: CallbackStatus = Field(
        CallbackStatus.OPEN, description="`open` (oldest first, a queue) or `done` (latest first)"
    )


# ------------------------------------------------------------------------------ bodies


# The bodies of the writes the dashboard and the phone agent also make are their shared
# operations (core/operations.py); the API names them as its document always has.


OVERRIDE_REASON_DESCRIPTION = (
    "Coordinators and admins only: why the nurse's minimum notice or booking horizon is waived "
    "(kept in the audit log). Hours, time off and other visits still apply."
)


# Some text that is not only spaces, and no NUL (PostgreSQL cannot store one).
SOME_TEXT = r"^[^\x00]*[^\s\x00][^\x00]*$"


class Waiver(Strict):
    """A coordinator's reason to book inside minimum notice or past the horizon."""

    override_reason: Annotated[str, StringConstraints(max_length=500, pattern=SOME_TEXT)] | None = (
        Field(None, description=OVERRIDE_REASON_DESCRIPTION)
    )


class AppointmentCreate(VisitDetails, Waiver):
    """Book a visit for a patient, by default with their primary nurse."""


class CallScheduleCreate(Strict):
    start: Instant
    nurse_id: Id | None = Field(None, description="Default: the patient's primary nurse")
    duration_minutes: VisitMinutes | None = None
    kind: AppointmentKind = AppointmentKind.PHONE
    reason: Text500 = ""


class RescheduleRequest(Reschedule, Waiver):
    """Move a visit to another time with the same nurse."""


class CloseRequest(VisitNote):
    """Mark a started visit completed or a no-show; the body, with its note, may be left out."""


class CancelRequest(CancelVisit):
    """Cancel a visit with a reason and an optional note; the record is kept."""


class OccurrenceMove(Strict):
    """Another start for one visit of a series, such as an alternative a 409 offered."""

    index: VisitIndex = Field(description="Which visit (0 = the first)")
    start: Instant = Field(description="Its start instead of the rule's")


class SeriesCreate(SeriesDetails, Waiver):
    """Book recurring visits; every visit is checked as a single booking is."""

    book: SeriesBookMode = Field(
        SeriesBookMode.ALL,
        description="`all` (default): book only if every visit is free, else answer 409 "
        "listing the refused and the free; `free_only`: book the free visits, list the refused",
    )
    moves: Annotated[list[OccurrenceMove], Field(max_length=104)] = Field(
        [],
        description="Other starts for some visits (each checked like the rest, each visit at "
        "most once), such as the alternatives a 409 `series_refused` offered",
    )
    skip: Annotated[list[VisitIndex], Field(max_length=104)] = Field(
        [], description="Visits (by `index`) to leave out"
    )


class SeriesCancelRequest(CancelSeriesVisits):
    """Cancel one visit of the series (`this`), or it and every later one (`following`)."""


class SeriesMoveRequest(MoveSeriesVisits):
    """Move one visit of the series (`this`), or it and every later one (`following`)."""


class WaitlistCreate(JoinWaitlist):
    """Put a patient on the waitlist for an earlier time."""


class OutboundCallCreate(Strict):
    patient_id: Id


# People's details. The dashboard's form models trim and normalise as they validate, which no
# schema can state; these state exactly what they check (lengths, forms, choices) and leave
# the rest to the services both share: a phone that is not a possible number or is another
# patient's, an unknown time zone, a date of birth not yet come... (422, see each operation).
SomeText = Annotated[str, StringConstraints(max_length=100, pattern=SOME_TEXT)]
PhoneText = Annotated[
    str,
    StringConstraints(max_length=32, pattern=SOME_TEXT),
    Field(description="E.164 such as +12025550101 (other written forms are normalised)"),
]
EmailText = Annotated[str, StringConstraints(max_length=254, pattern=NO_NUL)]
ZoneName = Annotated[
    str,
    StringConstraints(max_length=64, pattern=SOME_TEXT),
    Field(description="An IANA time zone such as America/New_York"),
]
Language = Annotated[
    str,
    StringConstraints(pattern=f"^({'|'.join(LANGUAGES)})$"),
    Field(description="A supported language code"),
]
Labels = Annotated[
    list[Annotated[str, StringConstraints(max_length=100, pattern=NO_NUL)]],
    Field(max_length=50),
]
Line200 = Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)]
Line100 = Annotated[str, StringConstraints(max_length=100, pattern=NO_NUL)]
Line60 = Annotated[str, StringConstraints(max_length=60, pattern=NO_NUL)]
Line20 = Annotated[str, StringConstraints(max_length=20, pattern=NO_NUL)]
Notes = Annotated[str, StringConstraints(max_length=5000, pattern=NO_NUL)]


def _unchanged_is_no_default(schema: dict[str, Any]) -> None:
    """A field that cannot be null, left out of an update, stays: it has no default to state."""
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None and "anyOf" not in prop:
            del prop["default"]


class Partial(Strict):
    """A partial update: fields left out stay as they are; null clears a field that may be
    empty and is refused for one that may not."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_unchanged_is_no_default)


UNCHANGED: Any = None  # the default of a field that cannot be null (see Partial)


class PatientContacts(Strict):
    """A patient's optional parts: left out or null, they are empty (an update clears them)."""

    email: EmailText | None = None
    address_line1: Line200 | None = None
    address_line2: Line200 | None = None
    address_city: Line100 | None = None
    address_region: Line100 | None = None
    address_postal_code: Line20 | None = None
    emergency_contact_name: Line100 | None = None
    emergency_contact_relationship: Line60 | None = None
    emergency_contact_phone: PhoneText | None = None


class PatientCreate(PatientContacts):
    """Add a patient; an address and an emergency contact are given whole or not at all."""

    first_name: SomeText
    last_name: SomeText
    date_of_birth: BirthDate
    phone: PhoneText
    time_zone: ZoneName
    preferred_language: Language = "en"
    conditions: Labels = Field([], description="Conditions, for matching nurses")
    sms_consent: bool = False
    notes: Notes = ""


class PatientUpdate(PatientContacts, Partial):
    """Change some of a patient's details: fields left out stay; null clears an optional one."""

    first_name: SomeText = UNCHANGED
    last_name: SomeText = UNCHANGED
    date_of_birth: BirthDate = UNCHANGED
    phone: PhoneText = UNCHANGED
    time_zone: ZoneName = UNCHANGED
    preferred_language: Language = UNCHANGED
    conditions: Labels = UNCHANGED
    sms_consent: bool = UNCHANGED
    notes: Notes = UNCHANGED


VisitLength = Annotated[int, Field(ge=5, le=480), BeforeValidator(whole_number)]
Buffer = Annotated[int, Field(ge=0, le=240), BeforeValidator(whole_number)]
Notice = Annotated[int, Field(ge=0, le=60 * 24 * 30), BeforeValidator(whole_number)]
Horizon = Annotated[int, Field(ge=1, le=365), BeforeValidator(whole_number)]
SlotStep = Annotated[int, Field(ge=5, le=120), BeforeValidator(whole_number)]
DailyCap = Annotated[int, Field(ge=1, le=100), BeforeValidator(whole_number)]
NurseTitle = Annotated[str, StringConstraints(max_length=40, pattern=NO_NUL)]


class NurseContacts(Strict):
    """A nurse's optional parts: left out or null, they are empty (an update clears them)."""

    phone: PhoneText | None = None
    email: EmailText | None = None
    daily_cap: DailyCap | None = Field(None, description="Visits a day at most; null: no cap")


class NurseCreate(NurseContacts):
    """Add a nurse; visit settings not given take the usual values."""

    first_name: SomeText
    last_name: SomeText
    title: NurseTitle = "RN"
    specializations: Labels = []
    time_zone: ZoneName
    visit_minutes: VisitLength = 30
    buffer_before_minutes: Buffer = 0
    buffer_after_minutes: Buffer = 0
    min_notice_minutes: Notice = 120
    horizon_days: Horizon = 60
    slot_step_minutes: SlotStep = 15


class NurseUpdate(NurseContacts, Partial):
    """Change some of a nurse's details or visit settings: fields left out stay."""

    first_name: SomeText = UNCHANGED
    last_name: SomeText = UNCHANGED
    title: NurseTitle = UNCHANGED
    specializations: Labels = UNCHANGED
    time_zone: ZoneName = UNCHANGED
    visit_minutes: VisitLength = UNCHANGED
    buffer_before_minutes: Buffer = UNCHANGED
    buffer_after_minutes: Buffer = UNCHANGED
    min_notice_minutes: Notice = UNCHANGED
    horizon_days: Horizon = UNCHANGED
    slot_step_minutes: SlotStep = UNCHANGED
    active: bool = Field(
        UNCHANGED,
        description="true reactivates; false deactivates a nurse with no visit or patient to "
        "hand over (else use /deactivate)",
    )


class PatientHandover(Strict):
    patient_id: Id
    nurse_id: Id | None = Field(
        description="The nurse who takes the patient over; null: their backup covers"
    )


class VisitHandover(Strict):
    appointment_id: Id
    nurse_id: Id | None = Field(description="The nurse who takes the visit; null: cancel it")


class NurseDeactivate(Strict):
    """Deactivate a nurse, handing over each patient she is primary for and each upcoming
    visit; her backup roles end. All of it happens, or none of it."""

    patients: Annotated[list[PatientHandover], Field(max_length=500)] = []
    visits: Annotated[list[VisitHandover], Field(max_length=2000)] = []


ClockText = Annotated[
    str,
    StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"),
    Field(description="HH:MM wall-clock time in the nurse's zone; as an end, 00:00 is midnight"),
]


class WeeklyWindowIn(Strict):
    weekday: Annotated[int, Field(ge=0, le=6), BeforeValidator(whole_number)] = Field(
        description="0 = Monday ... 6 = Sunday"
    )
    start: ClockText
    end: ClockText
    valid_from: Day | None = None
    valid_to: Day | None = None


class WeeklyHoursPut(Strict):
    """The nurse's whole weekly hours: these windows replace all of them."""

    windows: Annotated[list[WeeklyWindowIn], Field(max_length=70)]


class OverrideCreate(Strict):
    """Time off or extra hours, on dates in the nurse's zone: all day, or between two times."""

    kind: OverrideKind = OverrideKind.TIME_OFF
    start_date: Day
    end_date: Day | None = Field(None, description="Default: the start date")
    start_time: ClockText | None = None
    end_time: ClockText | None = None
    reason: Line200 = ""


class AssignmentCreate(CareTeamChange):
    """Make a nurse the patient's primary or backup nurse from today (in the patient's zone)."""


class CallbackCreate(Strict):
    """Record that someone needs a coordinator to call them back."""

    patient_id: Id | None = Field(None, description="Give the patient, the phone, or both")
    phone: PhoneText | None = Field(None, description="Default: the patient's phone")
    call_id: Id | None = Field(None, description="The call it came from, if any")
    reason: Annotated[str, StringConstraints(max_length=500, pattern=SOME_TEXT)]


# ------------------------------------------------------------------------------ responses


class FieldError(BaseModel):
    field: str = Field(description="Where: body.start, query.page, path.phone...")
    message: str
    code: str | None = None


class SlotOut(BaseModel):
    """A free time with a nurse; read straight from the engine's slots."""

    model_config = ConfigDict(from_attributes=True)

    nurse_id: int
    start: datetime
    end: datetime


class OccurrenceOut(BaseModel):
    """One visit of a series as the booking engine judged it."""

    index: int = Field(description="Which visit of the rule (0 = the first)")
    start: datetime
    end: datetime
    reason: str | None = Field(description="Why it cannot be booked; null when free")
    message: str = Field(description="The reason in words")
    alternatives: list[SlotOut] = Field(description="Bookable times nearest to it")
    escalate: bool = Field(description="No alternative found: a person must help")


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="A URI identifying the problem type (see the docs page)")
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do about it")
    code: str = Field(description="Stable, machine-readable problem code")
    errors: list[FieldError] | None = Field(None, description="Per-field problems")
    reason: str | None = Field(None, description="Why a time cannot be booked (409)")
    alternatives: list[SlotOut] | None = Field(None, description="Bookable times instead (409)")
    escalate: bool | None = Field(None, description="No alternative found: a person must help")
    nearest: list[datetime] | None = Field(
        None, description="A time the clocks skip (422): the nearest times that exist"
    )
    allowed_methods: list[str] | None = None
    refused: list[OccurrenceOut] | None = Field(
        None, description="Visits of a series that cannot be booked (409)"
    )
    free: list[OccurrenceOut] | None = Field(
        None, description="Visits of a series that could be booked (409)"
    )


class Health(BaseModel):
    status: Literal["ok", "error"]
    database: Literal["ok", "error"]
    version: str


class OpenAICheck(BaseModel):
    reachable: bool
    configured: bool = Field(description="Whether an API key is configured")
    base_url: str
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None


class NurseOut(BaseModel):
    id: int
    first_name: str
    last_name: str
    title: str
    display_name: str
    specializations: list[str]
    email: str | None
    phone: str | None
    time_zone: str
    visit_minutes: int
    slot_step_minutes: int
    active: bool


class NurseAvailabilityOut(BaseModel):
    nurse: NurseOut
    slot_count: int
    slots: list[SlotOut] = Field(description="Free visit starts (the asked time, if given)")


class AvailableNurses(BaseModel):
    date: Date
    time: str | None
    duration_minutes: int | None
    items: list[NurseAvailabilityOut]


class NurseSlots(BaseModel):
    nurse_id: int
    start: datetime
    end: datetime
    duration_minutes: int
    items: list[SlotOut]


class WeeklyWindowOut(BaseModel):
    weekday: int = Field(description="0 = Monday ... 6 = Sunday")
    start_time: str = Field(description="HH:MM wall-clock in the nurse's zone")
    end_time: str = Field(description="HH:MM; 00:00 means midnight (end of day)")
    valid_from: Date | None
    valid_to: Date | None


class OverrideOut(BaseModel):
    id: int
    kind: Literal["time_off", "extra_hours"]
    start_date: Date
    end_date: Date
    start_time: str | None = Field(description="HH:MM, or null for whole days")
    end_time: str | None


class NurseAvailabilityRules(BaseModel):
    nurse_id: int
    time_zone: str
    weekly: list[WeeklyWindowOut]
    overrides: list[OverrideOut] = Field(description="Time off and extra hours not yet over")


class AddressOut(BaseModel):
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str
    one_line: str = Field(description="The whole address on one line, as reminders give it")


class EmergencyContactOut(BaseModel):
    name: str
    relationship: str | None
    phone: str = Field(description="E.164")


class PatientOut(BaseModel):
    id: int
    first_name: str
    last_name: str
    date_of_birth: Date
    phone: str = Field(description="E.164")
    email: str | None
    time_zone: str
    preferred_language: str
    sms_consent: bool
    address: AddressOut | None = Field(description="Where home visits happen; null if none")
    emergency_contact: EmergencyContactOut | None


class AssignedNurse(BaseModel):
    patient_id: int
    patient_name: str
    time_zone: str
    primary: NurseOut | None
    primary_since: Date | None
    backup: NurseOut | None


class AppointmentOut(BaseModel):
    id: int
    nurse_id: int
    patient_id: int
    start: datetime
    end: datetime
    duration_minutes: int
    patient_time_zone: str
    start_local: str = Field(description="The start in the patient's time zone, with its offset")
    status: AppointmentStatus
    kind: AppointmentKind
    reason: str
    source: str
    call_id: int | None
    rescheduled_from_id: int | None
    cancel_reason: str | None
    cancel_note: str | None
    cancelled_at: datetime | None
    created_at: datetime
    updated_at: datetime | None
    series_id: int | None = Field(description="The recurring series this visit belongs to")
    series_index: int | None = Field(description="Which visit of the series (0 = the first)")


class SeriesOut(BaseModel):
    """A recurring series, its visits (every status) and, when just booked, those refused."""

    id: int
    patient_id: int
    nurse_id: int
    weekdays: list[Weekday]
    interval_weeks: int
    start_date: Date = Field(description="The first visit's date in the nurse's zone")
    time: str = Field(description="HH:MM wall-clock in `time_zone`, kept across DST changes")
    time_zone: str
    duration_minutes: int
    count: int | None
    until: Date | None
    ends_on: Date | None = Field(description="Set when a visit and those after it were cancelled")
    kind: AppointmentKind
    reason: str
    created_at: datetime
    appointments: list[AppointmentOut]
    refused: list[OccurrenceOut] = Field(description="Visits not booked (when just booked)")


class WaitlistOfferOut(BaseModel):
    """Freed time offered to a waiting patient, held for them until `expires_at`."""

    id: int
    nurse_id: int
    start: datetime
    end: datetime
    expires_at: datetime
    status: OfferStatus
    held: bool = Field(description="Still held now: offered and not yet expired")
    appointment_id: int | None = Field(description="The visit booked when it was accepted")
    created_at: datetime
    responded_at: datetime | None


class WaitlistEntryOut(BaseModel):
    """A patient waiting for an earlier time, and the times offered to them."""

    id: int
    patient_id: int
    nurse_id: int | None = Field(
        description="Null: any nurse on the care team or who covers the patient's conditions"
    )
    appointment_id: int | None = Field(
        description="The visit to bring earlier (accepting moves it); null: a new visit"
    )
    from_date: Date
    until_date: Date
    weekdays: list[Weekday] = Field(description="Empty: any day")
    parts_of_day: list[PartOfDay] = Field(description="Empty: any time of day")
    kind: AppointmentKind
    status: WaitlistStatus
    joined_at: datetime
    offers: list[WaitlistOfferOut]


class CallOut(BaseModel):
    id: int
    call_sid: str | None
    direction: CallDirection
    status: CallStatus
    from_number: str
    to_number: str
    patient_id: int | None
    created_at: datetime
    started_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    duration_seconds: int | None
    outcome: str | None
    verified: bool
    simulated: bool
    has_transcript: bool


class TranscriptLine(BaseModel):
    position: int
    role: str
    text: str
    started_at: datetime | None
    tool_name: str | None


class TranscriptOut(BaseModel):
    call_id: int
    patient_id: int | None
    text: str
    summary: str
    created_at: datetime | None
    lines: list[TranscriptLine]


class TranscriptSummary(BaseModel):
    id: int
    call_id: int
    patient_id: int | None
    summary: str
    text: str
    created_at: datetime


class AssignmentOut(BaseModel):
    id: int
    patient_id: int
    nurse_id: int
    role: AssignmentRole
    valid_from: Date
    valid_to: Date | None = Field(description="Last day; null: open-ended")
    nurse: NurseOut


class CareTeamOut(BaseModel):
    patient_id: int
    primary: AssignmentOut | None = Field(description="Today's primary nurse")
    backup: AssignmentOut | None = Field(description="Today's backup nurse")
    assignments: list[AssignmentOut] = Field(description="Current and later ones, by start")


class VisitOutsideHours(BaseModel):
    """A booked visit that the change leaves outside the nurse's working time: move it."""

    appointment_id: int
    patient_id: int
    start: datetime
    end: datetime


class WeeklyHoursOut(BaseModel):
    nurse_id: int
    time_zone: str
    weekly: list[WeeklyWindowOut]
    outside_hours: list[VisitOutsideHours] = Field(
        description="Booked visits from now on that the new hours no longer cover"
    )


class OverrideAdded(BaseModel):
    override: OverrideOut
    collisions: list[VisitOutsideHours] = Field(
        description="Booked visits the time off covers (kept: move or cancel them)"
    )


class OverrideRemoved(BaseModel):
    override_id: int
    outside_hours: list[VisitOutsideHours] = Field(
        description="Visits booked in the removed extra hours, now outside her hours"
    )


class CallbackRequestOut(BaseModel):
    id: int
    call_id: int | None
    patient_id: int | None
    phone: str
    reason: str
    status: CallbackStatus
    created_at: datetime
    resolved_at: datetime | None
    resolved_by_user_id: int | None


class OutboundCallOut(BaseModel):
    call_id: int | None
    call_sid: str | None
    status: str


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    page: int
    per_page: int
    total: int
    next: str | None = Field(description="URL of the next page, or null on the last one")
    prev: str | None
