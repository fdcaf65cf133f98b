"""The data model, shared by the dashboard and the voice service."""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import Any, Self

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, UTCDateTime


class Choices(enum.StrEnum):
    """A string enum whose values are stored as-is and checked by a CHECK constraint.

    Each member may carry its words for people beside its value (`PHONE = "phone", "Phone
    call"`); `label` falls back to the value in words. Pages and messages show `label`.
    """

    _value_: str
    label: str

    def __new__(cls, value: str, label: str = "") -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label or value.replace("_", " ").replace("-", " ").capitalize()
        return member

    @classmethod
    def check(cls, column: str) -> str:
        """SQL for a CHECK constraint allowing only this enum's values in `column`."""
        values = ", ".join(f"'{member.value}'" for member in cls)
        return f"{column} IN ({values})"


class AssignmentRole(Choices):
    PRIMARY = "primary", "Primary nurse"
    BACKUP = "backup", "Backup nurse"


class OverrideKind(Choices):
    TIME_OFF = "time_off", "Time off"
    EXTRA_HOURS = "extra_hours", "Extra hours"


class AppointmentStatus(Choices):
    """A subset of FHIR Appointment.status."""

    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show", "No-show"
    ENTERED_IN_ERROR = "entered_in_error", "Entered in error"


class AppointmentKind(Choices):
    PHONE = "phone", "Phone call"
    VIDEO = "video", "Video call"
    HOME_VISIT = "home_visit", "Home visit"


class CancelReason(Choices):
    """Why a visit was cancelled; RESCHEDULED is recorded by a move, never chosen."""

    PATIENT_REQUEST = "patient_request", "Patient asked to cancel"
    NURSE_UNAVAILABLE = "nurse_unavailable", "Nurse unavailable"
    CLINICAL = "clinical", "Clinical reason"
    DUPLICATE = "duplicate", "Booked twice"
    OTHER = "other", "Other"
    RESCHEDULED = "rescheduled", "Moved to another time"

    @classmethod
    def chosen_by_people(cls) -> list[CancelReason]:
        """The reasons a person may give (a move is recorded by rescheduling)."""
        return [reason for reason in cls if reason is not cls.RESCHEDULED]


class Weekday(Choices):
    """Days of the week as a series names them; `number` is datetime.weekday()."""

    MON = "mon", "Monday"
    TUE = "tue", "Tuesday"
    WED = "wed", "Wednesday"
    THU = "thu", "Thursday"
    FRI = "fri", "Friday"
    SAT = "sat", "Saturday"
    SUN = "sun", "Sunday"

    @property
    def number(self) -> int:
        """0 for Monday ... 6 for Sunday."""
        return list(Weekday).index(self)

    @classmethod
    def numbered(cls, number: int) -> Weekday:
        """The weekday whose datetime.weekday() is `number`."""
        return list(cls)[number]


class SeriesScope(Choices):
    """Which visits of a series a cancellation takes."""

    THIS = "this", "This visit only"
    FOLLOWING = "following", "This visit and all after it"


class SeriesBookMode(Choices):
    """Book a series only when every visit is free, or the free visits alone."""

    ALL = "all", "Only if every visit is free"
    FREE_ONLY = "free_only", "The free visits only"


class Source(Choices):
    """Which entry point made a change."""

    DASHBOARD = "dashboard"
    API = "api"
    AGENT = "agent"
    CLI = "cli"
    SYSTEM = "system"


class CallDirection(Choices):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class CallStatus(Choices):
    """Twilio's call statuses."""

    QUEUED = "queued"
    INITIATED = "initiated"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"


class AnsweredBy(Choices):
    """Who picked up an outbound call, as Twilio's answering-machine detection judged it."""

    HUMAN = "human", "A person"
    MACHINE = "machine", "Answering machine"
    FAX = "fax", "Fax"
    UNKNOWN = "unknown", "Could not tell"

    @classmethod
    def from_twilio(cls, answered_by: str) -> AnsweredBy:
        """Twilio's AnsweredBy (`machine_end_beep`, `human`, ...) in our words."""
        if answered_by.startswith("machine"):
            return cls.MACHINE
        return cls(answered_by) if answered_by in {"human", "fax"} else cls.UNKNOWN


class LogRole(Choices):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    SYSTEM = "system"


class RecipientKind(Choices):
    PATIENT = "patient"
    NURSE = "nurse"
    USER = "user"


class Channel(Choices):
    SMS = "sms", "Text message"
    EMAIL = "email"
    IN_APP = "in_app", "In the app"


class NotificationStatus(Choices):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    # Its channel (texts, email) had no settings when it came due: never tried, not an error.
    UNCONFIGURED = "unconfigured", "Not configured"


class Role(Choices):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    NURSE = "nurse"


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Patient(TimestampMixin, Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[date] = mapped_column(Date)
    phone: Mapped[str] = mapped_column(String(16), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    time_zone: Mapped[str] = mapped_column(String(64))
    preferred_language: Mapped[str] = mapped_column(String(16), default="en")
    conditions: Mapped[list[str]] = mapped_column(JSON, default=list)
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str] = mapped_column(Text, default="")
    # Where home visits happen; all empty, or at least line 1, city and postal code.
    address_line1: Mapped[str | None] = mapped_column(String(200), default=None)
    address_line2: Mapped[str | None] = mapped_column(String(200), default=None)
    address_city: Mapped[str | None] = mapped_column(String(100), default=None)
    address_region: Mapped[str | None] = mapped_column(String(100), default=None)
    address_postal_code: Mapped[str | None] = mapped_column(String(20), default=None)
    # Whom to call when the patient cannot be reached at a visit; all empty, or name and phone.
    emergency_contact_name: Mapped[str | None] = mapped_column(String(100), default=None)
    emergency_contact_relationship: Mapped[str | None] = mapped_column(String(60), default=None)
    emergency_contact_phone: Mapped[str | None] = mapped_column(String(16), default=None)

    assignments: Mapped[list[PatientNurseAssignment]] = relationship(back_populates="patient")
    appointments: Mapped[list[Appointment]] = relationship(back_populates="patient")

    @property
    def full_name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}"

    @property
    def has_address(self) -> bool:
        """Whether the record holds an address a nurse can visit."""
        return bool(self.address_line1 and self.address_city and self.address_postal_code)

    @property
    def address(self) -> str:
        """The address on one line ("12 Elm St, Apt 2, Springfield, IL 62704"), or ""."""
        if not self.has_address:
            return ""
        return one_line_address(
            self.address_line1,
            self.address_line2,
            self.address_city,
            self.address_region,
            self.address_postal_code,
        )


def one_line_address(
    line1: str | None,
    line2: str | None,
    city: str | None,
    region: str | None,
    postal_code: str | None,
) -> str:
    """An address on one line, skipping empty parts; region and postal code share a part."""
    place = " ".join(part for part in (region, postal_code) if part)
    return ", ".join(part for part in (line1, line2, city, place) if part)


class Nurse(TimestampMixin, Base):
    __tablename__ = "nurses"
    __table_args__ = (
        CheckConstraint("visit_minutes > 0", name="visit_minutes_positive"),
        CheckConstraint(
            "buffer_before_minutes >= 0 AND buffer_after_minutes >= 0", name="buffers_non_negative"
        ),
        CheckConstraint("min_notice_minutes >= 0", name="min_notice_non_negative"),
        CheckConstraint("horizon_days > 0", name="horizon_positive"),
        CheckConstraint("daily_cap IS NULL OR daily_cap > 0", name="daily_cap_positive"),
        CheckConstraint("slot_step_minutes > 0", name="slot_step_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(40), default="RN")
    specializations: Mapped[list[str]] = mapped_column(JSON, default=list)
    phone: Mapped[str | None] = mapped_column(String(16), default=None)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    time_zone: Mapped[str] = mapped_column(String(64))
    visit_minutes: Mapped[int] = mapped_column(Integer, default=30)
    buffer_before_minutes: Mapped[int] = mapped_column(Integer, default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=0)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=120)
    horizon_days: Mapped[int] = mapped_column(Integer, default=60)
    daily_cap: Mapped[int | None] = mapped_column(Integer, default=None)
    slot_step_minutes: Mapped[int] = mapped_column(Integer, default=15)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # SHA-256 of the secret in the nurse's private calendar feed URL; rotating it revokes the old.
    calendar_token_hash: Mapped[str | None] = mapped_column(
        String(64), unique=True, index=True, default=None
    )

    availability: Mapped[list[NurseAvailability]] = relationship(
        back_populates="nurse", order_by="(NurseAvailability.weekday, NurseAvailability.start_time)"
    )
    overrides: Mapped[list[NurseAvailabilityOverride]] = relationship(back_populates="nurse")
    assignments: Mapped[list[PatientNurseAssignment]] = relationship(back_populates="nurse")
    appointments: Mapped[list[Appointment]] = relationship(back_populates="nurse")

    @property
    def full_name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}"

    @property
    def display_name(self) -> str:
        """Title and full name, as patients hear it."""
        return nurse_display_name(self.title, self.first_name, self.last_name)


def nurse_display_name(title: str, first_name: str, last_name: str) -> str:
    """A nurse's title and full name, for callers that read the columns without the object."""
    return f"{title} {first_name} {last_name}".strip()


class PatientNurseAssignment(Base):
    __tablename__ = "patient_nurse_assignments"
    __table_args__ = (
        CheckConstraint(AssignmentRole.check("role"), name="role"),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_range"),
        # Backstop for "one active primary": at most one open-ended primary per patient.
        Index(
            "uq_assignment_open_primary",
            "patient_id",
            unique=True,
            sqlite_where=text("role = 'primary' AND valid_to IS NULL"),
            postgresql_where=text("role = 'primary' AND valid_to IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    nurse_id: Mapped[int] = mapped_column(ForeignKey("nurses.id"), index=True)
    role: Mapped[str] = mapped_column(String(16), default=AssignmentRole.PRIMARY)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date, default=None)
    source: Mapped[str] = mapped_column(String(16), default=Source.DASHBOARD)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    patient: Mapped[Patient] = relationship(back_populates="assignments")
    nurse: Mapped[Nurse] = relationship(back_populates="assignments")

    def is_active_on(self, day: date) -> bool:
        """Whether the assignment covers `day`."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class NurseAvailability(Base):
    """A weekly wall-clock window in the nurse's zone; end 00:00 means midnight (end of day)."""

    __tablename__ = "nurse_availability"
    __table_args__ = (
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday_range"),
        CheckConstraint(
            "valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from", name="valid_range"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nurse_id: Mapped[int] = mapped_column(ForeignKey("nurses.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday, as datetime.weekday()
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    valid_from: Mapped[date | None] = mapped_column(Date, default=None)
    valid_to: Mapped[date | None] = mapped_column(Date, default=None)

    nurse: Mapped[Nurse] = relationship(back_populates="availability")


class NurseAvailabilityOverride(Base):
    """Time off or extra hours on a date or date range; all day when no times are given."""

    __tablename__ = "nurse_availability_overrides"
    __table_args__ = (
        CheckConstraint(OverrideKind.check("kind"), name="kind"),
        CheckConstraint("end_date >= start_date", name="date_range"),
        CheckConstraint(
            "(start_time IS NULL AND end_time IS NULL) OR "
            "(start_time IS NOT NULL AND end_time IS NOT NULL)",
            name="times_together",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nurse_id: Mapped[int] = mapped_column(ForeignKey("nurses.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    start_time: Mapped[time | None] = mapped_column(Time, default=None)
    end_time: Mapped[time | None] = mapped_column(Time, default=None)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    nurse: Mapped[Nurse] = relationship(back_populates="overrides")

    @property
    def all_day(self) -> bool:
        """True when the override covers whole days."""
        return self.start_time is None


class Appointment(TimestampMixin, Base):
    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="ends_after_start"),
        CheckConstraint(AppointmentStatus.check("status"), name="status"),
        CheckConstraint(AppointmentKind.check("kind"), name="kind"),
        CheckConstraint(Source.check("source"), name="source"),
        Index("ix_appointments_nurse_start", "nurse_id", "start_at"),
        Index("ix_appointments_patient_start", "patient_id", "start_at"),
        Index("ix_appointments_start", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nurse_id: Mapped[int] = mapped_column(ForeignKey("nurses.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default=AppointmentStatus.SCHEDULED)
    kind: Mapped[str] = mapped_column(String(16), default=AppointmentKind.PHONE)
    reason: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(16), default=Source.DASHBOARD)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    rescheduled_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id"), default=None, index=True
    )
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), default=None, index=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    cancel_note: Mapped[str | None] = mapped_column(String(500), default=None)
    cancelled_by: Mapped[str | None] = mapped_column(String(80), default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_by: Mapped[str] = mapped_column(String(80), default="")
    # Bumped on every change so calendar feeds can carry a rising SEQUENCE.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    # A visit of a recurring series, and which occurrence of its rule (0 = the first); a moved
    # occurrence keeps both, so it stays in its series.
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointment_series.id"), default=None, index=True
    )
    series_index: Mapped[int | None] = mapped_column(Integer, default=None)

    nurse: Mapped[Nurse] = relationship(back_populates="appointments")
    patient: Mapped[Patient] = relationship(back_populates="appointments")
    rescheduled_from: Mapped[Appointment | None] = relationship(
        remote_side="Appointment.id", foreign_keys=[rescheduled_from_id]
    )

    series: Mapped[AppointmentSeries | None] = relationship(back_populates="appointments")

    @property
    def duration_minutes(self) -> int:
        """Length of the visit in minutes."""
        return int((self.end_at - self.start_at).total_seconds() // 60)


class AppointmentSeries(TimestampMixin, Base):
    """Recurring visits: every `interval_weeks` weeks on `weekdays` at a wall-clock time in
    the nurse's zone, from `start_date` for `count` visits or until `until`. Each occurrence
    booked is an Appointment; cancelling "this and following" moves `ends_on` earlier."""

    __tablename__ = "appointment_series"
    __table_args__ = (
        CheckConstraint(AppointmentKind.check("kind"), name="kind"),
        CheckConstraint(Source.check("source"), name="source"),
        CheckConstraint("interval_weeks >= 1", name="interval_positive"),
        CheckConstraint("count IS NULL OR count >= 1", name="count_positive"),
        CheckConstraint("count IS NOT NULL OR until IS NOT NULL", name="count_or_until"),
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    nurse_id: Mapped[int] = mapped_column(ForeignKey("nurses.id"), index=True)
    weekdays: Mapped[list[int]] = mapped_column(JSON)  # 0 = Monday, as datetime.weekday()
    interval_weeks: Mapped[int] = mapped_column(Integer, default=1)
    start_date: Mapped[date] = mapped_column(Date)
    wall_time: Mapped[time] = mapped_column(Time)
    time_zone: Mapped[str] = mapped_column(String(64))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    count: Mapped[int | None] = mapped_column(Integer, default=None)
    until: Mapped[date | None] = mapped_column(Date, default=None)
    # Set when "this and following" is cancelled: no occurrence on or after it is kept.
    ends_on: Mapped[date | None] = mapped_column(Date, default=None)
    kind: Mapped[str] = mapped_column(String(16), default=AppointmentKind.PHONE)
    reason: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(16), default=Source.DASHBOARD)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_by: Mapped[str] = mapped_column(String(80), default="")

    patient: Mapped[Patient] = relationship()
    nurse: Mapped[Nurse] = relationship()
    appointments: Mapped[list[Appointment]] = relationship(
        back_populates="series", order_by="(Appointment.start_at, Appointment.id)"
    )


class WaitlistStatus(Choices):
    """Where a patient's wait for an earlier time stands."""

    WAITING = "waiting"
    OFFERED = "offered", "Offered a time"
    BOOKED = "booked"
    CANCELLED = "cancelled"
    EXPIRED = "expired", "Window passed"


class OfferStatus(Choices):
    """A held time offered to a waiting patient, and what became of it."""

    OFFERED = "offered", "Held for the patient"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    LAPSED = "lapsed", "Not answered in time"


class PartOfDay(Choices):
    """Parts of a patient's day a waitlist window may name; `hours` is [first, last) hour."""

    MORNING = "morning"
    AFTERNOON = "afternoon"
    EVENING = "evening"

    @property
    def hours(self) -> tuple[int, int]:
        """The local hours this part covers, [first, last)."""
        return {"morning": (0, 12), "afternoon": (12, 17), "evening": (17, 24)}[self.value]


class WaitlistEntry(TimestampMixin, Base):
    """A patient waiting for an earlier time with one nurse, or any who covers their needs
    (`nurse_id` empty), within a window: dates, weekdays and parts of the patient's day."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        CheckConstraint(WaitlistStatus.check("status"), name="status"),
        CheckConstraint(AppointmentKind.check("kind"), name="kind"),
        CheckConstraint(Source.check("source"), name="source"),
        CheckConstraint("until_date >= from_date", name="date_range"),
        Index("ix_waitlist_entries_status_joined", "status", "joined_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    nurse_id: Mapped[int | None] = mapped_column(ForeignKey("nurses.id"), default=None)
    # The visit to bring earlier: only earlier times are offered, and accepting moves it.
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), default=None)
    from_date: Mapped[date] = mapped_column(Date)
    until_date: Mapped[date] = mapped_column(Date)
    weekdays: Mapped[list[int]] = mapped_column(JSON, default=list)  # empty: any day
    parts_of_day: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: any time
    kind: Mapped[str] = mapped_column(String(16), default=AppointmentKind.PHONE)
    status: Mapped[str] = mapped_column(String(10), default=WaitlistStatus.WAITING)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(16), default=Source.DASHBOARD)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_by: Mapped[str] = mapped_column(String(80), default="")

    patient: Mapped[Patient] = relationship()
    nurse: Mapped[Nurse | None] = relationship()
    appointment: Mapped[Appointment | None] = relationship()
    offers: Mapped[list[WaitlistOffer]] = relationship(
        back_populates="entry", order_by="(WaitlistOffer.created_at, WaitlistOffer.id)"
    )


class WaitlistOffer(Base):
    """Freed time held for one waiting patient until `expires_at`; while held it is busy for
    everyone else. A hold past `expires_at` never blocks, whatever its status says."""

    __tablename__ = "waitlist_offers"
    __table_args__ = (
        CheckConstraint(OfferStatus.check("status"), name="status"),
        CheckConstraint("end_at > start_at", name="ends_after_start"),
        Index("ix_waitlist_offers_nurse_status_start", "nurse_id", "status", "start_at"),
        Index("ix_waitlist_offers_status_expires", "status", "expires_at"),
        # Backstop: a waiting patient holds at most one time at once.
        Index(
            "uq_waitlist_offers_open_entry",
            "entry_id",
            unique=True,
            sqlite_where=text("status = 'offered'"),
            postgresql_where=text("status = 'offered'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("waitlist_entries.id"))
    nurse_id: Mapped[int] = mapped_column(ForeignKey("nurses.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(10), default=OfferStatus.OFFERED)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    entry: Mapped[WaitlistEntry] = relationship(back_populates="offers")
    nurse: Mapped[Nurse] = relationship()
    appointment: Mapped[Appointment | None] = relationship()


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint(CallDirection.check("direction"), name="direction"),
        CheckConstraint(CallStatus.check("status"), name="status"),
        Index("ix_calls_created", "created_at"),
        # The reconciler looks for calls that have not reached a final state.
        Index("ix_calls_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    direction: Mapped[str] = mapped_column(String(10))
    from_number: Mapped[str] = mapped_column(String(32), default="")
    to_number: Mapped[str] = mapped_column(String(32), default="")
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id"), default=None, index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=CallStatus.QUEUED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    duration_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    outcome: Mapped[str | None] = mapped_column(String(40), default=None)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    placed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    # Single-use media-stream token: its nonce, and when a stream consumed it.
    stream_nonce: Mapped[str | None] = mapped_column(String(64), default=None)
    stream_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The voice service instance that holds the call (see VoiceInstance), to notice a crash.
    handled_by: Mapped[str | None] = mapped_column(String(128), default=None)
    # An outbound call's answering-machine detection (AnsweredBy); written from the enum only.
    answered_by: Mapped[str | None] = mapped_column(String(10), default=None)

    patient: Mapped[Patient | None] = relationship()
    logs: Mapped[list[ConversationLog]] = relationship(
        back_populates="call", order_by="(ConversationLog.position, ConversationLog.id)"
    )
    transcript: Mapped[CallTranscript | None] = relationship(back_populates="call")


class VoiceInstance(Base):
    """A running voice service process, seen alive at `heartbeat_at`.

    A call held by an instance whose heartbeat stopped lost its process: the reconciler
    finalises it. The name is stable across restarts (host and port by default).
    """

    __tablename__ = "voice_instances"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConversationLog(Base):
    """One utterance or tool action of a call, in conversation order (`position`)."""

    __tablename__ = "conversation_logs"
    __table_args__ = (
        CheckConstraint(LogRole.check("role"), name="role"),
        Index("ix_conversation_logs_call_position", "call_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[str | None] = mapped_column(String(64), default=None)
    role: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    tool_name: Mapped[str | None] = mapped_column(String(64), default=None)
    tool_arguments: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    tool_result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)

    call: Mapped[Call] = relationship(back_populates="logs")


class CallTranscript(Base):
    __tablename__ = "call_transcripts"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    text: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    call: Mapped[Call] = relationship(back_populates="transcript")


class Notification(Base):
    """An outbox row: written in the booking transaction, delivered later by a worker."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(RecipientKind.check("recipient_kind"), name="recipient_kind"),
        CheckConstraint(Channel.check("channel"), name="channel"),
        CheckConstraint(NotificationStatus.check("status"), name="status"),
        Index("ix_notifications_status_send_after", "status", "send_after"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_kind: Mapped[str] = mapped_column(String(10))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), default=None)
    nurse_id: Mapped[int | None] = mapped_column(ForeignKey("nurses.id"), default=None)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    channel: Mapped[str] = mapped_column(String(10))
    event: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default=NotificationStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    provider_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id"), default=None, index=True
    )
    send_after: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    # Keeps scheduled messages (reminders, agendas) from being queued twice.
    dedupe_key: Mapped[str | None] = mapped_column(
        String(200), unique=True, index=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(Role.check("role"), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    nurse_id: Mapped[int | None] = mapped_column(ForeignKey("nurses.id"), unique=True, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    nurse: Mapped[Nurse | None] = relationship()


class AuditEvent(Base):
    """Who did what to which record, when and from where, and what changed (old and new);
    never free-text notes or transcripts. Not a log: it is read only in the dashboard."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_entity", "entity_type", "entity_id"),
        Index("ix_audit_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(Integer, default=None)
    source: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ConditionSpecialization(Base):
    """Coordinator-editable mapping from a patient condition to a nurse specialisation."""

    __tablename__ = "condition_specializations"
    __table_args__ = (UniqueConstraint("condition", "specialization"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    condition: Mapped[str] = mapped_column(String(100))
    specialization: Mapped[str] = mapped_column(String(100))
    weight: Mapped[int] = mapped_column(Integer, default=1)


class StaffSession(Base):
    """A signed-in dashboard session, kept on the server: signing out, deactivation or a
    password reset end it, and it expires when idle or too old. Only the SHA-256 of its
    token (held in the browser's signed cookie) is stored."""

    __tablename__ = "staff_sessions"
    __table_args__ = (Index("ix_staff_sessions_user_ended", "user_id", "ended_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    end_reason: Mapped[str | None] = mapped_column(String(20), default=None)


class ApiToken(Base):
    """A bearer token for the REST API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    user: Mapped[User] = relationship()


class ApiIdempotentResult(Base):
    """The answer an API write gave under an Idempotency-Key, replayed when the key returns.

    Keyed per login, so two integrations cannot collide; `fingerprint` (SHA-256 of the method,
    path and validated body) tells a true retry from the key reused for another request.
    """

    __tablename__ = "api_idempotent_results"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class StatusChange(Base):
    """One change of an appointment's status, with its note; undone within a short window."""

    __tablename__ = "appointment_status_changes"
    __table_args__ = (
        CheckConstraint(AppointmentStatus.check("from_status"), name="from_status"),
        CheckConstraint(AppointmentStatus.check("to_status"), name="to_status"),
        Index("ix_appointment_status_changes_appointment", "appointment_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"))
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(String(500), default="")
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    actor: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    undone_by: Mapped[str | None] = mapped_column(String(80), default=None)

    appointment: Mapped[Appointment] = relationship()


class TimeOffStatus(Choices):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"


class TimeOffRequest(Base):
    """A nurse's request for time off, which a coordinator approves (making an override) or not."""

    __tablename__ = "time_off_requests"
    __table_args__ = (
        CheckConstraint(TimeOffStatus.check("status"), name="status"),
        CheckConstraint("end_date >= start_date", name="date_range"),
        Index("ix_time_off_requests_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nurse_id: Mapped[int] = mapped_column(ForeignKey("nurses.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    start_time: Mapped[time | None] = mapped_column(Time, default=None)
    end_time: Mapped[time | None] = mapped_column(Time, default=None)
    reason: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(10), default=TimeOffStatus.PENDING)
    requested_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    decision_note: Mapped[str] = mapped_column(String(200), default="")
    override_id: Mapped[int | None] = mapped_column(
        ForeignKey("nurse_availability_overrides.id", ondelete="SET NULL"), default=None
    )

    nurse: Mapped[Nurse] = relationship()

    @property
    def all_day(self) -> bool:
        """True when the request covers whole days."""
        return self.start_time is None


class CallbackStatus(Choices):
    OPEN = "open"
    DONE = "done"


class CallbackRequest(Base):
    """A caller who needs a person: recorded for coordinators when no transfer is possible."""

    __tablename__ = "callback_requests"
    __table_args__ = (CheckConstraint(CallbackStatus.check("status"), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), default=None, index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), default=None)
    phone: Mapped[str] = mapped_column(String(32), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(8), default=CallbackStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    resolved_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
