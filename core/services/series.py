"""Recurring visits: check every occurrence with the booking engine, book them under the same
lock a single booking takes, and cancel or move occurrences."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import DomainError, InvalidState, NotFound, Slot, ValidationError
from core.models import (
    Appointment,
    AppointmentKind,
    AppointmentSeries,
    AppointmentStatus,
    Nurse,
    Patient,
    PatientNurseAssignment,
    SeriesBookMode,
    SeriesScope,
    Weekday,
)
from core.notifications.reminders import sync_reminders
from core.operations import SeriesDetails
from core.outbox import BookingEvent, queue_series_notifications
from core.recurrence import SeriesRule, check_occurrences, expand
from core.scheduling import (
    REFUSAL_MESSAGES,
    alternatives,
    local_to_utc,
    require_aware,
    skipped_time,
    zone,
)
from core.services import booking
from core.services.common import Actor, audit, field_changes, get_or_raise
from core.services.offers import offer_freed_time
from core.services.schedules import load_schedule

NOT_ASSIGNED = "not_assigned"


@dataclass
class OccurrencePlan:
    """One occurrence as the engine judges it: free, or refused with why and alternatives."""

    index: int
    start: datetime
    end: datetime
    refusal: str | None = None
    message: str = ""
    alternatives: list[Slot] = field(default_factory=list)
    escalate: bool = False
    # The rule's own start when the coordinator chose another time for this occurrence.
    replaces: datetime | None = None
    # The booking rule (minimum notice or the horizon) a coordinator waived for this visit.
    waived: str | None = None

    @property
    def free(self) -> bool:
        """Whether this occurrence can be booked as it stands."""
        return self.refusal is None


@dataclass
class SeriesPlan:
    """Every occurrence of a series rule, checked; what `book_series` would book."""

    patient: Patient
    nurse: Nurse
    rule: SeriesRule
    length: timedelta
    occurrences: list[OccurrencePlan]
    skipped: list[int] = field(default_factory=list)

    @property
    def free(self) -> list[OccurrencePlan]:
        """The occurrences that can be booked."""
        return [o for o in self.occurrences if o.free]

    @property
    def refused(self) -> list[OccurrencePlan]:
        """The occurrences that cannot, each with its reason and alternatives."""
        return [o for o in self.occurrences if not o.free]


class SeriesRefused(DomainError):
    """Some occurrences cannot be booked and the caller asked for all or nothing."""

    code = "series_refused"

    def __init__(self, message: str, *, plan: SeriesPlan) -> None:
        super().__init__(message)
        self.plan = plan


@dataclass
class SeriesBooking:
    """A booked series, its booked occurrences, and those left out (refused)."""

    series: AppointmentSeries
    booked: list[Appointment]
    refused: list[OccurrencePlan]
    replayed: bool = False


def _assigned_days(
    session: Session, patient_id: int, nurse_id: int
) -> list[PatientNurseAssignment]:
    return list(
        session.scalars(
            select(PatientNurseAssignment).where(
                PatientNurseAssignment.patient_id == patient_id,
                PatientNurseAssignment.nurse_id == nurse_id,
            )
        )
    )


def _refuse_unassigned(
    plan: OccurrencePlan,
    day: date,
    assignments: Collection[PatientNurseAssignment],
    nurse: Nurse,
) -> None:
    """Refuse the occurrence when the nurse is not on the patient's care team that day."""
    if not any(a.is_active_on(day) for a in assignments):
        plan.refusal = NOT_ASSIGNED
        plan.message = f"{nurse.display_name} is not assigned to this patient on that date."


def _check_indexes(indexes: Collection[int], count: int, what: str) -> None:
    for index in indexes:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise ValidationError(
                f"There is no visit number {index} in this series to {what}.", field="occurrences"
            )


def plan_series(
    session: Session,
    details: SeriesDetails,
    *,
    now: datetime,
    replacements: Mapping[int, datetime] | None = None,
    skip: Collection[int] = (),
    waive: Collection[int] | bool = (),
) -> SeriesPlan:
    """Expand the rule and judge every occurrence as a single booking would be judged, in
    order (earlier ones count against buffers and daily caps); alternatives for the refused.

    `replacements` give another start for some occurrences (by index, an alternative the
    coordinator chose); `skip` leaves occurrences out; `waive` (indexes, or True for every
    visit) judges some without minimum notice and the horizon, as a coordinator may.
    """
    now = require_aware(now, "now")
    start = booking.whole_minute(details.start)
    patient = get_or_raise(session, Patient, details.patient_id, "patient")
    if details.kind == AppointmentKind.HOME_VISIT and not patient.has_address:
        raise ValidationError(booking.HOME_VISIT_NEEDS_ADDRESS, field="kind")
    nurse = booking.resolve_nurse(session, patient, nurse_id=details.nurse_id, start=start, now=now)
    booking.refuse_written_gap(details.start, nurse)
    length = booking.visit_length(nurse, details.duration_minutes)
    tz = zone(nurse.time_zone)
    local = start.astimezone(tz)
    rule = SeriesRule(
        first=local.date(),
        wall_time=local.time().replace(tzinfo=None),
        time_zone=nurse.time_zone,
        weekdays=frozenset(day.number for day in details.weekdays),
        interval_weeks=details.interval_weeks,
        count=details.count,
        until=details.until,
    )
    occurrences = expand(rule)
    _check_indexes(replacements or {}, len(occurrences), "move")
    _check_indexes(skip, len(occurrences), "skip")
    if not isinstance(waive, bool):
        _check_indexes(waive, len(occurrences), "book anyway")
    moved = {i: booking.whole_minute(s) for i, s in (replacements or {}).items()}

    assignments = _assigned_days(session, patient.id, nurse.id)
    plans: list[OccurrencePlan] = []
    candidates: list[tuple[datetime, bool]] = []
    for occurrence in occurrences:
        if occurrence.index in skip:
            continue
        chosen = moved.get(occurrence.index)
        begin = chosen if chosen is not None else occurrence.start
        plan = OccurrencePlan(
            occurrence.index, begin, begin + length, replaces=occurrence.start if chosen else None
        )
        _refuse_unassigned(plan, begin.astimezone(tz).date(), assignments, nurse)
        plans.append(plan)
        candidates.append((begin, chosen is not None or occurrence.exists))

    _judge(
        session,
        nurse,
        plans,
        candidates,
        length,
        now=now,
        since=start,
        patient_id=patient.id,
        waive=waive,
    )
    return SeriesPlan(patient, nurse, rule, length, plans, sorted(skip))


def _judge(
    session: Session,
    nurse: Nurse,
    plans: list[OccurrencePlan],
    candidates: list[tuple[datetime, bool]],
    length: timedelta,
    *,
    now: datetime,
    since: datetime,
    patient_id: int,
    moving: Collection[int] = (),
    waive: Collection[int] | bool = (),
) -> None:
    """Judge the occurrences not already refused, in order, as single bookings would be (the
    visits in `moving` are being replaced, so they block nothing); alternatives for the
    refused, searched with the free ones in the schedule so none collides with a sibling."""
    last_end = max((p.end for p in plans), default=since + length)
    schedule = load_schedule(
        session,
        nurse,
        min(now, since),
        max(now + timedelta(days=nurse.horizon_days), last_end),
        now=now,
        patient_id=patient_id,
    )
    if moving:
        kept = tuple(b for b in schedule.bookings if b.id not in moving)
        schedule = replace(schedule, bookings=kept)
    assigned = [i for i, p in enumerate(plans) if p.refusal is None]
    lenient = [
        position
        for position, i in enumerate(assigned)
        if waive is True or (waive is not False and plans[i].index in waive)
    ]
    refusals, planned, waived = check_occurrences(
        schedule, [candidates[i] for i in assigned], length, now, waive=lenient
    )
    minutes = int(length.total_seconds() // 60)
    for position, (i, refusal) in enumerate(zip(assigned, refusals, strict=True)):
        if refusal is not None:
            plans[i].refusal = refusal.value
            plans[i].message = REFUSAL_MESSAGES[refusal]
        elif position in waived:
            plans[i].waived = waived[position].value
    for plan in plans:
        if plan.free:
            continue
        found = alternatives(planned, plan.start, now, duration_minutes=minutes)
        plan.alternatives = [Slot(nurse.id, s, s + length) for s in found]
        plan.escalate = not found


def _existing_series(session: Session, key: str) -> AppointmentSeries | None:
    return session.scalar(select(AppointmentSeries).where(AppointmentSeries.idempotency_key == key))


def _replay(existing: AppointmentSeries, patient_id: int) -> SeriesBooking:
    if existing.patient_id != patient_id:
        raise ValidationError(
            "That idempotency key was already used for another booking.", field="idempotency_key"
        )
    booked = [a for a in existing.appointments if a.status == AppointmentStatus.SCHEDULED]
    return SeriesBooking(existing, booked, [], replayed=True)


def book_series(
    session: Session,
    details: SeriesDetails,
    *,
    actor: Actor,
    now: datetime,
    mode: SeriesBookMode = SeriesBookMode.ALL,
    replacements: Mapping[int, datetime] | None = None,
    skip: Collection[int] = (),
    waive: Collection[int] | bool = (),
    override_reason: str | None = None,
    idempotency_key: str | None = None,
) -> SeriesBooking:
    """Book a series in one transaction: every occurrence (or raise SeriesRefused listing
    the refused and the free), or with `free_only` the free ones; a retried key replays.

    The visits in `waive` (True: every one) may be inside minimum notice or past the horizon
    when a coordinator gives `override_reason`, which the audit keeps (staff only).
    """
    now = require_aware(now, "now")
    override_reason = booking.check_override_reason(override_reason)
    if waive and override_reason is None:
        raise ValidationError(
            "Say why the booking rules are waived for these visits.", field="override_reason"
        )
    key = booking.check_key(idempotency_key)
    if key is not None and (existing := _existing_series(session, key)) is not None:
        return _replay(existing, details.patient_id)
    patient = get_or_raise(session, Patient, details.patient_id, "patient")
    nurse = booking.resolve_nurse(
        session, patient, nurse_id=details.nurse_id, start=details.start, now=now
    )
    # The lock a single booking takes: series and single bookings of this nurse queue here.
    booking.lock_nurse_row(session, nurse.id)
    if key is not None and (existing := _existing_series(session, key)) is not None:
        return _replay(existing, details.patient_id)  # a retry that waited on the lock
    plan = plan_series(session, details, now=now, replacements=replacements, skip=skip, waive=waive)
    if plan.refused and mode == SeriesBookMode.ALL:
        raise SeriesRefused(
            f"{len(plan.refused)} of the {len(plan.occurrences)} visits cannot be booked;"
            " nothing was booked. Choose other times for them, skip them, or book the free"
            " ones only.",
            plan=plan,
        )
    if not plan.occurrences:
        raise ValidationError(
            "Every visit is skipped, so there is nothing to book.", field="occurrences"
        )
    if not plan.free:
        raise SeriesRefused("None of the visits can be booked; nothing was booked.", plan=plan)
    series = AppointmentSeries(
        patient_id=plan.patient.id,
        nurse_id=plan.nurse.id,
        weekdays=sorted(plan.rule.weekdays),
        interval_weeks=plan.rule.interval_weeks,
        start_date=plan.rule.first,
        wall_time=plan.rule.wall_time,
        time_zone=plan.rule.time_zone,
        duration_minutes=int(plan.length.total_seconds() // 60),
        count=plan.rule.count,
        until=plan.rule.until,
        kind=details.kind.value,
        reason=details.reason.strip(),
        source=actor.source,
        idempotency_key=key,
        created_by_user_id=actor.user_id,
        created_by=actor.name,
        created_at=now,
    )
    session.add(series)
    session.flush()
    booked = [
        Appointment(
            nurse_id=plan.nurse.id,
            patient_id=plan.patient.id,
            start_at=occurrence.start,
            end_at=occurrence.end,
            status=AppointmentStatus.SCHEDULED,
            kind=series.kind,
            reason=series.reason,
            source=actor.source,
            created_by_user_id=actor.user_id,
            created_by=actor.name,
            created_at=now,
            series_id=series.id,
            series_index=occurrence.index,
        )
        for occurrence in plan.free
    ]
    # One batch of inserts, not a round trip per visit; the database backstop has the last word.
    booking.insert_appointment(session, *booked)
    for appointment in booked:
        audit(
            session,
            actor=actor,
            action="appointment.booked",
            entity_type="appointment",
            entity_id=appointment.id,
            now=now,
            nurse_id=plan.nurse.id,
            patient_id=plan.patient.id,
            series_id=series.id,
        )
        sync_reminders(session, appointment, now, just_booked=True)
    audit(
        session,
        actor=actor,
        action="series.booked",
        entity_type="appointment_series",
        entity_id=series.id,
        now=now,
        nurse_id=plan.nurse.id,
        patient_id=plan.patient.id,
        booked=len(booked),
        refused=[o.index for o in plan.refused] or None,
        skipped=plan.skipped or None,
        moved=sorted(replacements) if replacements else None,
        **_waivers(plan, override_reason),
    )
    # One message for the series, not one per visit: nobody wants fifty texts at once.
    queue_series_notifications(
        session, event=BookingEvent.SERIES_BOOKED, appointments=booked, now=now
    )
    return SeriesBooking(series, booked, plan.refused)


def _waivers(plan: SeriesPlan, reason: str | None) -> dict[str, object]:
    """The audit details of the rules waived for some visits (none when nothing was)."""
    waived = {o.index: o.waived for o in plan.free if o.waived}
    if not waived or reason is None:
        return {}
    return {
        "rule_waived": sorted(set(waived.values())),
        "waived_visits": sorted(waived),
        "override_reason": reason,
    }


def _occurrence(session: Session, series_id: int, appointment_id: int) -> Appointment:
    appointment = get_or_raise(session, Appointment, appointment_id, "appointment")
    if appointment.series_id != series_id:
        raise NotFound(
            f"Appointment {appointment_id} is not a visit of series {series_id}.",
            field="appointment_id",
        )
    return appointment


def cancel_occurrences(
    session: Session,
    series_id: int,
    appointment_id: int,
    *,
    scope: SeriesScope,
    actor: Actor,
    now: datetime,
    reason_code: str,
    note: str = "",
) -> list[Appointment]:
    """Cancel one visit of a series, or it and every later one (the series then ends the
    day before it); each cancellation is recorded as a single one is."""
    now = require_aware(now, "now")
    series = get_or_raise(session, AppointmentSeries, series_id, "series")
    chosen = _occurrence(session, series_id, appointment_id)
    if scope == SeriesScope.THIS:
        return [
            booking.cancel_appointment(
                session, chosen.id, actor=actor, now=now, reason_code=reason_code, note=note
            )
        ]
    if chosen.status != AppointmentStatus.SCHEDULED:
        raise InvalidState(
            f"Appointment {appointment_id} is {chosen.status.replace('_', ' ')}, not scheduled.",
            field="appointment_id",
        )
    following = [
        a
        for a in series.appointments
        if a.status == AppointmentStatus.SCHEDULED and a.start_at >= chosen.start_at
    ]
    cancelled = [
        booking.cancel_appointment(
            session, a.id, actor=actor, now=now, reason_code=reason_code, note=note, notify=False
        )
        for a in following
    ]
    before = series.ends_on
    series.ends_on = chosen.start_at.astimezone(zone(series.time_zone)).date() - timedelta(days=1)
    series.updated_at = now
    audit(
        session,
        actor=actor,
        action="series.cancelled_following",
        entity_type="appointment_series",
        entity_id=series.id,
        now=now,
        reason_code=reason_code,
        appointment_ids=[a.id for a in cancelled],
        changes=field_changes({"ends_on": before}, {"ends_on": series.ends_on}),
    )
    queue_series_notifications(
        session, event=BookingEvent.SERIES_CANCELLED, appointments=cancelled, now=now
    )
    return cancelled


def move_occurrence(
    session: Session,
    series_id: int,
    appointment_id: int,
    *,
    new_start: datetime,
    actor: Actor,
    now: datetime,
    idempotency_key: str | None = None,
) -> Appointment:
    """Move one visit of a series through the engine; the new visit stays in the series."""
    _occurrence(session, series_id, appointment_id)
    return booking.reschedule_appointment(
        session,
        appointment_id,
        new_start=new_start,
        actor=actor,
        now=now,
        idempotency_key=idempotency_key,
    )


class MoveRefused(DomainError):
    """Some of the visits a "this and following" move takes cannot go to their new times."""

    code = "series_move_refused"

    def __init__(
        self, message: str, *, refused: list[OccurrencePlan], free: list[OccurrencePlan]
    ) -> None:
        super().__init__(message)
        self.refused = refused
        self.free = free


@dataclass
class SeriesMove:
    """Visits moved together: the series they left (ending the day before) and their new one."""

    previous: AppointmentSeries
    series: AppointmentSeries
    moved: list[Appointment]


def _visits_from(
    series: AppointmentSeries, chosen: Appointment, appointment_id: int
) -> list[Appointment]:
    """The chosen scheduled visit and every later scheduled one of the series with its nurse."""
    if chosen.status != AppointmentStatus.SCHEDULED:
        raise InvalidState(
            f"Appointment {appointment_id} is {chosen.status.replace('_', ' ')}, not scheduled.",
            field="appointment_id",
        )
    return [
        a
        for a in series.appointments
        if a.status == AppointmentStatus.SCHEDULED
        and a.start_at >= chosen.start_at
        and a.nurse_id == chosen.nurse_id
    ]


def move_following(
    session: Session,
    series_id: int,
    appointment_id: int,
    *,
    new_start: datetime,
    actor: Actor,
    now: datetime,
) -> SeriesMove:
    """Move a visit and every later one of its series by the same change of date and
    wall-clock time, all or nothing (MoveRefused lists why not); they continue as a new series
    with the new rule, and the old one ends the day before the first moved visit."""
    now = require_aware(now, "now")
    series = get_or_raise(session, AppointmentSeries, series_id, "series")
    chosen = _occurrence(session, series_id, appointment_id)
    booking.lock_nurse_row(session, chosen.nurse_id)
    session.refresh(chosen)
    session.refresh(series)
    following = _visits_from(series, chosen, appointment_id)
    nurse = chosen.nurse
    booking.refuse_written_gap(new_start, nurse)
    tz = zone(nurse.time_zone)
    target = booking.whole_minute(new_start).astimezone(tz)
    shift = target.date() - chosen.start_at.astimezone(tz).date()
    minute = target.hour * 60 + target.minute
    length = chosen.end_at - chosen.start_at
    assignments = _assigned_days(session, chosen.patient_id, nurse.id)
    plans: list[OccurrencePlan] = []
    candidates: list[tuple[datetime, bool]] = []
    for visit in following:
        day = visit.start_at.astimezone(tz).date() + shift
        begin = local_to_utc(day, minute, tz)
        index = visit.series_index or 0
        plan = OccurrencePlan(index, begin, begin + length, replaces=visit.start_at)
        _refuse_unassigned(plan, day, assignments, nurse)
        plans.append(plan)
        candidates.append((begin, skipped_time(day, minute, tz) is None))
    _judge(
        session,
        nurse,
        plans,
        candidates,
        length,
        now=now,
        since=min(plans[0].start, chosen.start_at),
        patient_id=chosen.patient_id,
        moving={v.id for v in following},
    )
    refused = [p for p in plans if not p.free]
    if refused:
        raise MoveRefused(
            f"{len(refused)} of the {len(plans)} visits cannot move to their new times;"
            " nothing was moved. Move them one at a time, or choose another time.",
            refused=refused,
            free=[p for p in plans if p.free],
        )
    last = series_ends(series)
    continued = AppointmentSeries(
        patient_id=series.patient_id,
        nurse_id=nurse.id,
        weekdays=sorted({(day + shift.days) % 7 for day in series.weekdays}),
        interval_weeks=series.interval_weeks,
        start_date=target.date(),
        wall_time=target.time().replace(tzinfo=None),
        time_zone=nurse.time_zone,
        duration_minutes=int(length.total_seconds() // 60),
        count=len(following) if series.count is not None else None,
        until=last + shift if series.count is None and last is not None else None,
        kind=series.kind,
        reason=series.reason,
        source=actor.source,
        created_by_user_id=actor.user_id,
        created_by=actor.name,
        created_at=now,
    )
    session.add(continued)
    before = series.ends_on
    series.ends_on = chosen.start_at.astimezone(tz).date() - timedelta(days=1)
    series.updated_at = now
    for old in following:
        booking.retire_moved(old, actor=actor, now=now)
    session.flush()  # free the old times first, so the backstop allows overlapping them
    moved = [
        booking.successor(old, nurse.id, plan.start, plan.end, actor=actor, now=now)
        for old, plan in zip(following, plans, strict=True)
    ]
    for index, visit in enumerate(moved):
        visit.series_id, visit.series_index = continued.id, index
    booking.insert_appointment(session, *moved)
    for old, new in zip(following, moved, strict=True):
        audit(
            session,
            actor=actor,
            action="appointment.rescheduled",
            entity_type="appointment",
            entity_id=new.id,
            now=now,
            previous_id=old.id,
            nurse_id=nurse.id,
            series_id=continued.id,
            changes=field_changes({"start_at": old.start_at}, {"start_at": new.start_at}),
        )
        sync_reminders(session, old, now)
        sync_reminders(session, new, now, just_booked=True)
    audit(
        session,
        actor=actor,
        action="series.moved_following",
        entity_type="appointment_series",
        entity_id=series.id,
        now=now,
        new_series_id=continued.id,
        appointment_ids=[a.id for a in moved],
        changes=field_changes({"ends_on": before}, {"ends_on": series.ends_on}),
    )
    queue_series_notifications(
        session, event=BookingEvent.SERIES_MOVED, appointments=moved, now=now
    )
    for old in following:  # the times they left, for whoever waits (the new ones are booked)
        offer_freed_time(session, nurse.id, old.start_at, old.end_at, now)
    return SeriesMove(series, continued, moved)


def series_in_words(series: AppointmentSeries) -> str:
    """The rule in words: "Every week on Tuesday and Thursday at 10:00 (America/New_York)"."""
    days = [Weekday.numbered(n).label for n in series.weekdays]
    named = days[0] if len(days) == 1 else f"{', '.join(days[:-1])} and {days[-1]}"
    every = "Every week" if series.interval_weeks == 1 else f"Every {series.interval_weeks} weeks"
    ending = f", {series.count} visits" if series.count else f", until {series.until}"
    ended = f"; ended after {series.ends_on}" if series.ends_on else ""
    return f"{every} on {named} at {series.wall_time:%H:%M} ({series.time_zone}){ending}{ended}"


def series_ends(series: AppointmentSeries) -> date | None:
    """The last local date the series may have a visit on, after any "this and following"."""
    ends = [d for d in (series.until, series.ends_on) if d is not None]
    return min(ends) if ends else None
