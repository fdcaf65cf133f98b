"""Nurses' weekly hours and date overrides (time off, extra hours)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.errors import NotFound, OverrideCollision, ValidationError
from core.models import (
    Appointment,
    AppointmentStatus,
    Nurse,
    NurseAvailability,
    NurseAvailabilityOverride,
    OverrideKind,
)
from core.scheduling import (
    MIDNIGHT,
    local_to_utc,
    require_aware,
    window_minutes,
    works_throughout,
    zone,
)
from core.services.common import Actor, audit, get_or_raise
from core.services.offers import offer_freed_time
from core.services.schedules import load_schedule

WEEKDAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MAX_OVERRIDE_DAYS = 366


@dataclass(frozen=True)
class WeeklyWindowInput:
    """One weekly window as entered: wall-clock times in the nurse's zone; end 00:00 = midnight."""

    weekday: int
    start: time
    end: time
    valid_from: date | None = None
    valid_to: date | None = None


def _check_window(window: WeeklyWindowInput, index: int) -> tuple[int, int]:
    field = f"windows[{index}]"
    if isinstance(window.weekday, bool) or window.weekday not in range(7):
        raise ValidationError("The weekday must be 0 (Monday) to 6 (Sunday).", field=field)
    for value in (window.start, window.end):
        if not isinstance(value, time) or value.tzinfo is not None:
            raise ValidationError("Give wall-clock times without a zone, e.g. 09:00.", field=field)
        if value.second or value.microsecond:
            raise ValidationError("Times are in whole minutes.", field=field)
    begin, finish = window_minutes(window.start, window.end)
    if finish <= begin:
        day = WEEKDAY_NAMES[window.weekday]
        raise ValidationError(
            f"{day}: the end ({window.end:%H:%M}) must be after the start "
            f"({window.start:%H:%M}); use 00:00 for midnight.",
            field=field,
        )
    if window.valid_from and window.valid_to and window.valid_to < window.valid_from:
        raise ValidationError("The window's validity ends before it starts.", field=field)
    return begin, finish


def _validity_overlaps(a: WeeklyWindowInput, b: WeeklyWindowInput) -> bool:
    a_from, b_from = a.valid_from or date.min, b.valid_from or date.min
    a_to, b_to = a.valid_to or date.max, b.valid_to or date.max
    return a_from <= b_to and b_from <= a_to


def check_windows(windows: Sequence[WeeklyWindowInput]) -> None:
    """Refuse malformed windows and windows that overlap on the same weekday and dates."""
    minutes = [_check_window(w, i) for i, w in enumerate(windows)]
    for i, (first, first_minutes) in enumerate(zip(windows, minutes, strict=True)):
        for second, second_minutes in zip(windows[i + 1 :], minutes[i + 1 :], strict=True):
            if first.weekday != second.weekday or not _validity_overlaps(first, second):
                continue
            if first_minutes[0] < second_minutes[1] and second_minutes[0] < first_minutes[1]:
                raise ValidationError(
                    f"{WEEKDAY_NAMES[first.weekday]}: {first.start:%H:%M}-{first.end:%H:%M} "
                    f"overlaps {second.start:%H:%M}-{second.end:%H:%M}.",
                    field="windows",
                )


def set_weekly_availability(
    session: Session,
    nurse_id: int,
    windows: Sequence[WeeklyWindowInput],
    *,
    actor: Actor,
    now: datetime,
) -> list[NurseAvailability]:
    """Replace the nurse's weekly hours with `windows` (validated as a whole first)."""
    nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
    check_windows(windows)
    session.execute(delete(NurseAvailability).where(NurseAvailability.nurse_id == nurse.id))
    rows = [
        NurseAvailability(
            nurse_id=nurse.id,
            weekday=w.weekday,
            start_time=w.start,
            end_time=w.end,
            valid_from=w.valid_from,
            valid_to=w.valid_to,
        )
        for w in windows
    ]
    session.add_all(rows)
    session.flush()
    session.expire(nurse, ["availability"])
    audit(
        session,
        actor=actor,
        action="availability.set",
        entity_type="nurse",
        entity_id=nurse.id,
        now=now,
        windows=len(rows),
    )
    return rows


def visits_outside_hours(session: Session, nurse_id: int, now: datetime) -> list[OverrideCollision]:
    """Booked visits from `now` on that the nurse's hours no longer cover (after her weekly
    hours changed): listed so that none is silently left outside her working time."""
    now = require_aware(now, "now")
    nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
    visits = session.scalars(
        select(Appointment)
        .where(
            Appointment.nurse_id == nurse.id,
            Appointment.status == AppointmentStatus.SCHEDULED,
            Appointment.end_at > now,
        )
        .order_by(Appointment.start_at)
    ).all()
    if not visits:
        return []
    schedule = load_schedule(
        session, nurse, visits[0].start_at, max(v.end_at for v in visits), now=now
    )
    return [
        OverrideCollision(v.id, v.start_at, v.end_at, {"patient_id": v.patient_id})
        for v in visits
        if not works_throughout(schedule, v.start_at, v.end_at)
    ]


def override_intervals(
    override: NurseAvailabilityOverride, time_zone: str
) -> list[tuple[datetime, datetime]]:
    """The UTC spans an override covers, one per local date."""
    tz = zone(time_zone)
    if override.start_time is None or override.end_time is None:
        begin, finish = 0, 24 * 60
    else:
        begin, finish = window_minutes(override.start_time, override.end_time)
    day, spans = override.start_date, []
    while day <= override.end_date:
        spans.append((local_to_utc(day, begin, tz), local_to_utc(day, finish, tz)))
        day += timedelta(days=1)
    return spans


def colliding_appointments(
    session: Session, override: NurseAvailabilityOverride, time_zone: str
) -> list[OverrideCollision]:
    """Scheduled appointments that fall (even partly) inside a time-off override."""
    spans = override_intervals(override, time_zone)
    rows = session.scalars(
        select(Appointment)
        .where(
            Appointment.nurse_id == override.nurse_id,
            Appointment.status == AppointmentStatus.SCHEDULED,
            Appointment.start_at < spans[-1][1],
            Appointment.end_at > spans[0][0],
        )
        .order_by(Appointment.start_at)
    )
    return [
        OverrideCollision(a.id, a.start_at, a.end_at, {"patient_id": a.patient_id})
        for a in rows
        if any(a.start_at < end and a.end_at > start for start, end in spans)
    ]


def add_override(
    session: Session,
    nurse_id: int,
    *,
    kind: str,
    start_date: date,
    actor: Actor,
    now: datetime,
    end_date: date | None = None,
    start_time: time | None = None,
    end_time: time | None = None,
    reason: str = "",
) -> tuple[NurseAvailabilityOverride, list[OverrideCollision]]:
    """Add time off or extra hours; time off reports the booked visits it now covers."""
    require_aware(now, "now")
    nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
    if kind not in {k.value for k in OverrideKind}:
        raise ValidationError("Choose time off or extra hours.", field="kind")
    end_date = end_date or start_date
    if end_date < start_date:
        raise ValidationError("The last date is before the first.", field="end_date")
    if (end_date - start_date).days >= MAX_OVERRIDE_DAYS:
        raise ValidationError("An override covers at most a year.", field="end_date")
    if (start_time is None) != (end_time is None):
        raise ValidationError(
            "Give both a start and an end time, or neither for all day.", field="end_time"
        )
    if start_time is not None and end_time is not None:
        begin, finish = window_minutes(start_time, end_time)
        if finish <= begin:
            raise ValidationError(
                "The end time must be after the start (00:00 = midnight).", field="end_time"
            )
        if end_time == MIDNIGHT and start_time == MIDNIGHT:
            start_time = end_time = None  # the whole day
    reason = (reason or "").strip()
    if len(reason) > 200:
        raise ValidationError("The reason is too long (200 characters at most).", field="reason")
    override = NurseAvailabilityOverride(
        nurse_id=nurse.id,
        kind=kind,
        start_date=start_date,
        end_date=end_date,
        start_time=start_time,
        end_time=end_time,
        reason=reason,
        created_by_user_id=actor.user_id,
        created_at=now,
    )
    session.add(override)
    session.flush()
    collisions = (
        colliding_appointments(session, override, nurse.time_zone)
        if kind == OverrideKind.TIME_OFF
        else []
    )
    audit(
        session,
        actor=actor,
        action="override.added",
        entity_type="nurse",
        entity_id=nurse.id,
        now=now,
        override_id=override.id,
        kind=kind,
        colliding_appointment_ids=[c.appointment_id for c in collisions],
    )
    if kind == OverrideKind.EXTRA_HOURS:
        _offer_override_time(session, override, nurse, now)
    return override, collisions


def _offer_override_time(
    session: Session, override: NurseAvailabilityOverride, nurse: Nurse, now: datetime
) -> None:
    """Offer the time an override frees (extra hours added, time off removed) to the waitlist."""
    spans = override_intervals(override, nurse.time_zone)
    offer_freed_time(session, nurse.id, spans[0][0], spans[-1][1], now)


def remove_nurse_override(
    session: Session, nurse_id: int, override_id: int, *, actor: Actor, now: datetime
) -> list[OverrideCollision]:
    """Remove one of this nurse's overrides (another nurse's is NotFound); returns the visits
    booked in extra hours it took away, which now stand outside her hours."""
    nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
    override = session.get(NurseAvailabilityOverride, override_id)
    if override is None or override.nurse_id != nurse.id:
        raise NotFound(f"No override {override_id} for this nurse.", field="override_id")
    spans = override_intervals(override, nurse.time_zone)
    extra_hours = override.kind == OverrideKind.EXTRA_HOURS
    remove_override(session, override.id, actor=actor, now=now)
    outside = visits_outside_hours(session, nurse.id, now) if extra_hours else []
    return [
        visit
        for visit in outside
        if any(visit.start < end and visit.end > start for start, end in spans)
    ]


def remove_override(session: Session, override_id: int, *, actor: Actor, now: datetime) -> None:
    """Delete an override (overrides are settings, not records that must be kept)."""
    override = get_or_raise(session, NurseAvailabilityOverride, override_id, "override")
    nurse_id, nurse = override.nurse_id, override.nurse
    session.delete(override)
    session.flush()
    audit(
        session,
        actor=actor,
        action="override.removed",
        entity_type="nurse",
        entity_id=nurse_id,
        now=now,
        override_id=override_id,
    )
    if override.kind == OverrideKind.TIME_OFF:
        _offer_override_time(session, override, nurse, now)
