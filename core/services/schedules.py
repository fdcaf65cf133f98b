"""Load nurses' rules, overrides and bookings from the database into pure schedules."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Integer, bindparam, cast, null, select, union_all
from sqlalchemy.orm import Session

from core.models import (
    Appointment,
    AppointmentStatus,
    Nurse,
    NurseAvailability,
    NurseAvailabilityOverride,
    OfferStatus,
    WaitlistEntry,
    WaitlistOffer,
)
from core.scheduling import Booking, DateOverride, NurseSchedule, WeeklyRule

# Bookings are loaded a little wider than the asked range: buffers reach outside it, and the
# daily cap counts whole local days, which can start up to 14 hours away from a UTC boundary.
LOAD_MARGIN = timedelta(days=2)


def schedule_from_rows(
    nurse: Nurse,
    rules: Sequence[NurseAvailability],
    overrides: Sequence[NurseAvailabilityOverride],
    bookings: Sequence[tuple[int, datetime, datetime]],
) -> NurseSchedule:
    """Build the pure schedule of one nurse from loaded rows."""
    return NurseSchedule(
        time_zone=nurse.time_zone,
        rules=tuple(
            WeeklyRule(r.weekday, r.start_time, r.end_time, r.valid_from, r.valid_to) for r in rules
        ),
        overrides=tuple(
            DateOverride(o.kind, o.start_date, o.end_date, o.start_time, o.end_time)
            for o in overrides
        ),
        bookings=tuple(Booking(start, end, booking_id) for booking_id, start, end in bookings),
        visit_minutes=nurse.visit_minutes,
        buffer_before_minutes=nurse.buffer_before_minutes,
        buffer_after_minutes=nurse.buffer_after_minutes,
        min_notice_minutes=nurse.min_notice_minutes,
        horizon_days=nurse.horizon_days,
        daily_cap=nurse.daily_cap,
        slot_step_minutes=nurse.slot_step_minutes,
    )


# The three statements of `load_schedules`, built once with the nurses and dates as
# parameters: building them cost more Python than running them (bench/bridge.py tool profile).
_RULES = select(NurseAvailability).where(
    NurseAvailability.nurse_id.in_(bindparam("ids", expanding=True))
)
_OVERRIDES = select(NurseAvailabilityOverride).where(
    NurseAvailabilityOverride.nurse_id.in_(bindparam("ids", expanding=True)),
    NurseAvailabilityOverride.end_date >= bindparam("low_date"),
    NurseAvailabilityOverride.start_date <= bindparam("high_date"),
)
_APPOINTMENTS = select(
    Appointment.nurse_id, Appointment.id, Appointment.start_at, Appointment.end_at
).where(
    Appointment.nurse_id.in_(bindparam("ids", expanding=True)),
    Appointment.status == AppointmentStatus.SCHEDULED,
    Appointment.start_at < bindparam("high"),
    Appointment.end_at > bindparam("low"),
)
# Times held for a waiting patient block like visits (without an id) for everyone else. The
# expiry is in the query: a lapsed hold frees its time whether or not a worker has run.
_HOLDS = (
    select(
        WaitlistOffer.nurse_id,
        cast(null(), Integer).label("id"),
        WaitlistOffer.start_at,
        WaitlistOffer.end_at,
    )
    .join(WaitlistEntry, WaitlistEntry.id == WaitlistOffer.entry_id)
    .where(
        WaitlistOffer.nurse_id.in_(bindparam("ids", expanding=True)),
        WaitlistOffer.status == OfferStatus.OFFERED,
        WaitlistOffer.expires_at > bindparam("now"),
        WaitlistEntry.patient_id != bindparam("holder"),
        WaitlistOffer.start_at < bindparam("high"),
        WaitlistOffer.end_at > bindparam("low"),
    )
)
_BOOKINGS_AND_HOLDS = union_all(_APPOINTMENTS, _HOLDS)
_BOOKINGS = _BOOKINGS_AND_HOLDS.order_by(_BOOKINGS_AND_HOLDS.selected_columns.start_at)


def lock_nurse_row(session: Session, nurse_id: int) -> None:
    """Serialise writers per nurse: row lock on PostgreSQL; SQLite already holds the write lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Nurse.id).where(Nurse.id == nurse_id).with_for_update())


def load_schedules(
    session: Session,
    nurses: Sequence[Nurse],
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    patient_id: int | None = None,
) -> dict[int, NurseSchedule]:
    """Schedules for several nurses over [start, end), in three queries whatever their number.

    Times held for waiting patients until after `now` are busy, except for `patient_id`'s own.
    """
    if not nurses:
        return {}
    low, high = start - LOAD_MARGIN, end + LOAD_MARGIN
    params = {
        "ids": [n.id for n in nurses],
        "low": low,
        "high": high,
        "low_date": low.date(),
        "high_date": high.date(),
        "now": now,
        "holder": 0 if patient_id is None else patient_id,  # ids start at 1: nobody's hold
    }
    rules: dict[int, list[NurseAvailability]] = defaultdict(list)
    for rule in session.scalars(_RULES, params):
        rules[rule.nurse_id].append(rule)
    overrides: dict[int, list[NurseAvailabilityOverride]] = defaultdict(list)
    for override in session.scalars(_OVERRIDES, params):
        overrides[override.nurse_id].append(override)
    bookings: dict[int, list[tuple[int, datetime, datetime]]] = defaultdict(list)
    for nurse_id, booking_id, booking_start, booking_end in session.execute(_BOOKINGS, params):
        bookings[nurse_id].append((booking_id, booking_start, booking_end))
    return {
        n.id: schedule_from_rows(n, rules[n.id], overrides[n.id], bookings[n.id]) for n in nurses
    }


def load_schedule(
    session: Session,
    nurse: Nurse,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    patient_id: int | None = None,
) -> NurseSchedule:
    """The schedule of one nurse over [start, end) (holds as for load_schedules)."""
    return load_schedules(session, [nurse], start, end, now=now, patient_id=patient_id)[nurse.id]
