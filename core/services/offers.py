"""Offering freed time to the waitlist: called by every change that frees a nurse's time.

Kept apart from core.services.waitlist (joining, answers) so that the booking services can
offer the time they free in their own transaction without importing what books.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import Slot
from core.models import (
    AppointmentStatus,
    AssignmentRole,
    Nurse,
    OfferStatus,
    PartOfDay,
    Patient,
    PatientNurseAssignment,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
)
from core.outbox import queue_waitlist_offer
from core.scheduling import require_aware, slot_starts, zone
from core.services.assignments import condition_map
from core.services.common import Actor, audit
from core.services.openings import covered_conditions
from core.services.schedules import load_schedule, lock_nurse_row
from core.waitlist import Cover, Waiting, choose

# Offers look no further ahead than a waitlist window reaches.
MAX_WINDOW_DAYS = 92


@cache
def configured_hold() -> timedelta:
    """How long an offer is held (WAITLIST_HOLD_MINUTES), read once per process."""
    return timedelta(minutes=Settings.from_env().waitlist_hold_minutes)


def _candidates(
    session: Session, nurse: Nurse, first: date, last: date
) -> list[tuple[WaitlistEntry, Patient, bool]]:
    """Waiting entries that this nurse might serve in [first, last], earliest joined first:
    hers; any nurse's for patients she is on the care team of then; and, marked True, any
    nurse's for patients she covers a condition of who have no backup nurse in their window
    (accepting makes her their backup for that visit's day)."""
    team = select(PatientNurseAssignment.patient_id).where(
        PatientNurseAssignment.nurse_id == nurse.id,
        PatientNurseAssignment.valid_from <= last,
        or_(PatientNurseAssignment.valid_to.is_(None), PatientNurseAssignment.valid_to >= first),
    )
    waiting = (
        select(WaitlistEntry, Patient)
        .join(Patient, Patient.id == WaitlistEntry.patient_id)
        .where(
            WaitlistEntry.status == WaitlistStatus.WAITING,
            WaitlistEntry.until_date >= first,
            WaitlistEntry.from_date <= last,
        )
    )
    found = [
        (entry, patient, False)
        for entry, patient in session.execute(
            waiting.where(
                or_(
                    WaitlistEntry.nurse_id == nurse.id,
                    and_(WaitlistEntry.nurse_id.is_(None), WaitlistEntry.patient_id.in_(team)),
                )
            )
        ).all()
    ]
    specialties = {s.strip().lower() for s in nurse.specializations if s.strip()}
    if specialties:
        mapping = condition_map(session)
        for entry, patient in session.execute(
            waiting.where(WaitlistEntry.nurse_id.is_(None), WaitlistEntry.patient_id.not_in(team))
        ).all():
            conditions = [c.strip() for c in patient.conditions if c.strip()]
            if covered_conditions(conditions, specialties, mapping) and not _has_backup(
                session, patient.id, entry.from_date, entry.until_date
            ):
                found.append((entry, patient, True))
    return sorted(found, key=lambda row: (row[0].joined_at, row[0].id))


def _has_backup(session: Session, patient_id: int, first: date, last: date) -> bool:
    """Whether the patient has a backup nurse on some day of [first, last]."""
    return (
        session.scalar(
            select(PatientNurseAssignment.id).where(
                PatientNurseAssignment.patient_id == patient_id,
                PatientNurseAssignment.role == AssignmentRole.BACKUP,
                PatientNurseAssignment.valid_from <= last,
                or_(
                    PatientNurseAssignment.valid_to.is_(None),
                    PatientNurseAssignment.valid_to >= first,
                ),
            )
        )
        is not None
    )


def _as_waiting(
    session: Session, entry: WaitlistEntry, patient: Patient, nurse_id: int, matching: bool
) -> Waiting:
    """The entry as the pure choice sees it, for time with one nurse: on the care team on
    her assignment's dates, or (`matching`) throughout the patient's window."""
    covers = (
        (Cover(nurse_id, entry.from_date, entry.until_date),)
        if matching
        else tuple(
            Cover(a.nurse_id, a.valid_from, a.valid_to)
            for a in session.scalars(
                select(PatientNurseAssignment).where(
                    PatientNurseAssignment.patient_id == patient.id,
                    PatientNurseAssignment.nurse_id == nurse_id,
                )
            )
        )
    )
    passed = tuple(
        (o.nurse_id, o.start_at, o.end_at)
        for o in session.scalars(
            select(WaitlistOffer).where(
                WaitlistOffer.entry_id == entry.id,
                WaitlistOffer.nurse_id == nurse_id,
                WaitlistOffer.status.in_((OfferStatus.DECLINED, OfferStatus.LAPSED)),
            )
        )
    )
    return Waiting(
        entry_id=entry.id,
        joined_at=entry.joined_at,
        nurses=covers,
        time_zone=patient.time_zone,
        from_date=entry.from_date,
        until_date=entry.until_date,
        weekdays=frozenset(entry.weekdays),
        parts=frozenset(PartOfDay(p) for p in entry.parts_of_day),
        passed=passed,
        before=_visit_start(entry),
    )


def _visit_start(entry: WaitlistEntry) -> datetime | None:
    """When the visit the patient wants earlier starts (None: no such visit, or not booked)."""
    visit = entry.appointment
    if visit is None or visit.status != AppointmentStatus.SCHEDULED:
        return None
    return visit.start_at


def offer_freed_time(
    session: Session,
    nurse_id: int,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    hold: timedelta | None = None,
    actor: Actor | None = None,
) -> list[WaitlistOffer]:
    """Offer the nurse's free visits within [start, end) to the first waiting patients they
    fit, one visit each, held for `hold` (WAITLIST_HOLD_MINUTES) and texted to them.

    Runs in the caller's transaction, under the nurse's lock like a booking: the freed time
    and its offers are committed together or not at all, and a held time is never offered
    twice (the hold makes it busy for the next pass).
    """
    now = require_aware(now, "now")
    start, end = require_aware(start, "start"), require_aware(end, "end")
    hold = configured_hold() if hold is None else hold
    actor = actor or Actor.system()
    end = min(end, now + timedelta(days=MAX_WINDOW_DAYS + 2))
    if end <= max(start, now):
        return []
    nurse = session.get(Nurse, nurse_id)
    if nurse is None or not nurse.active:
        return []
    tz = zone(nurse.time_zone)
    # A day either side: patients' dates are in their own zones.
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    candidates = _candidates(session, nurse, first, last)
    if not candidates:
        return []
    lock_nurse_row(session, nurse.id)
    length = timedelta(minutes=nurse.visit_minutes)
    waiting = {
        entry.id: (entry, _as_waiting(session, entry, p, nurse.id, matching))
        for entry, p, matching in candidates
    }
    offers: list[WaitlistOffer] = []
    while waiting:
        schedule = load_schedule(session, nurse, start, end, now=now)
        starts = slot_starts(schedule, start, end, now, nurse.visit_minutes)
        slots = [Slot(nurse.id, s, s + length) for s in starts if s + length <= end]
        chosen = choose([w for _, w in waiting.values()], slots, now)
        if chosen is None:
            break
        entry = waiting.pop(chosen[0].entry_id)[0]
        offers.append(_make_offer(session, entry, chosen[1], now=now, hold=hold, actor=actor))
    return offers


def _make_offer(
    session: Session,
    entry: WaitlistEntry,
    slot: Slot,
    *,
    now: datetime,
    hold: timedelta,
    actor: Actor,
) -> WaitlistOffer:
    """Hold `slot` for the entry's patient (never past the visit's start) and text them."""
    offer = WaitlistOffer(
        entry_id=entry.id,
        nurse_id=slot.nurse_id,
        start_at=slot.start,
        end_at=slot.end,
        expires_at=min(now + hold, slot.start),
        status=OfferStatus.OFFERED,
        created_at=now,
    )
    session.add(offer)
    entry.status = WaitlistStatus.OFFERED
    entry.updated_at = now
    session.flush()
    audit(
        session,
        actor=actor,
        action="waitlist.offered",
        entity_type="waitlist_offer",
        entity_id=offer.id,
        now=now,
        entry_id=entry.id,
        patient_id=entry.patient_id,
        nurse_id=slot.nurse_id,
        start_at=slot.start.isoformat(),
        expires_at=offer.expires_at.isoformat(),
    )
    queue_waitlist_offer(session, offer, now)
    return offer
