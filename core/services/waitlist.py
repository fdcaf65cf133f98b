"""The waitlist: patients waiting for an earlier time, and freed time held for the first in line.

Freed time (a cancel, a move, time off removed, extra hours) is offered to the earliest-joined
waiting patient whose nurses and window fit it, and held for them until the offer expires: busy
for everyone else (see load_schedules), never once expired. Accepting books through
book_appointment; a declined or lapsed hold goes to the next in line.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.errors import InvalidState, ValidationError
from core.models import (
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    AssignmentRole,
    CancelReason,
    Nurse,
    OfferStatus,
    PartOfDay,
    Patient,
    PatientNurseAssignment,
    Source,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
)
from core.scheduling import require_aware, zone
from core.services.assignments import active_assignment, assign_nurse, is_assigned, patient_today
from core.services.booking import (
    HOME_VISIT_NEEDS_ADDRESS,
    book_appointment,
    cancel_appointment,
    reschedule_appointment,
)
from core.services.common import Actor, audit, field_changes, get_or_raise, normalise_phone
from core.services.offers import MAX_WINDOW_DAYS, configured_hold, offer_freed_time
from core.services.schedules import lock_nurse_row
from core.timefmt import spoken

# offer_freed_time lives with the booking services that call it; it is part of this API too.
__all__ = [
    "OPEN",
    "accept",
    "answer_by_text",
    "cancel",
    "configured_hold",
    "decline",
    "join",
    "lapse_expired",
    "offer_freed_time",
    "open_offer",
]

OPEN = (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)


def join(
    session: Session,
    *,
    patient_id: int,
    until_date: date,
    actor: Actor,
    now: datetime,
    nurse_id: int | None = None,
    from_date: date | None = None,
    weekdays: Iterable[int] = (),
    parts_of_day: Iterable[str] = (),
    kind: str = AppointmentKind.PHONE,
    appointment_id: int | None = None,
) -> WaitlistEntry:
    """Put a patient on the waitlist for one nurse of their care team, or any (`nurse_id`
    None), within [from_date, until_date] (the patient's dates), weekdays and parts of day.

    With `appointment_id` (one of their scheduled visits) they want that visit earlier: only
    times before it are offered, and accepting moves it there instead of booking another.
    """
    now = require_aware(now, "now")
    patient = get_or_raise(session, Patient, patient_id, "patient")
    today = patient_today(patient, now)
    if appointment_id is not None:
        _visit_to_bring_forward(session, patient, appointment_id, until_date, now)
    start = today if from_date is None else from_date
    if start < today:
        raise ValidationError("The window cannot start in the past.", field="from_date")
    if until_date < start:
        raise ValidationError("The window must end on or after its start.", field="until_date")
    if (until_date - today).days > MAX_WINDOW_DAYS:
        raise ValidationError(f"Wait at most {MAX_WINDOW_DAYS} days ahead.", field="until_date")
    days = sorted(set(weekdays))
    if any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in days):
        raise ValidationError("Weekdays are 0 (Monday) to 6 (Sunday).", field="weekdays")
    parts = sorted(set(parts_of_day))
    known = {p.value for p in PartOfDay}
    if any(p not in known for p in parts):
        raise ValidationError(
            "Parts of the day are morning, afternoon or evening.", field="parts_of_day"
        )
    if kind not in {k.value for k in AppointmentKind}:
        raise ValidationError("The kind must be phone, video or home_visit.", field="kind")
    if kind == AppointmentKind.HOME_VISIT and not patient.has_address:
        raise ValidationError(HOME_VISIT_NEEDS_ADDRESS, field="kind")
    if nurse_id is not None:
        nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
        if not nurse.active:
            raise ValidationError("That nurse is inactive.", field="nurse_id")
        if not _on_team_within(session, patient.id, nurse.id, start, until_date):
            raise ValidationError(
                f"{nurse.display_name} is not on this patient's care team in that window.",
                field="nurse_id",
            )
    waiting = session.scalar(
        select(WaitlistEntry.id).where(
            WaitlistEntry.patient_id == patient.id, WaitlistEntry.status.in_(OPEN)
        )
    )
    if waiting is not None:
        raise InvalidState(
            "This patient is already on the waitlist; cancel that first to change it.",
            field="patient_id",
        )
    entry = WaitlistEntry(
        patient_id=patient.id,
        nurse_id=nurse_id,
        appointment_id=appointment_id,
        from_date=start,
        until_date=until_date,
        weekdays=days,
        parts_of_day=parts,
        kind=kind,
        status=WaitlistStatus.WAITING,
        joined_at=now,
        source=actor.source,
        created_by_user_id=actor.user_id,
        created_by=actor.name,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    audit(
        session,
        actor=actor,
        action="waitlist.joined",
        entity_type="waitlist_entry",
        entity_id=entry.id,
        now=now,
        patient_id=patient.id,
        nurse_id=nurse_id,
        from_date=start.isoformat(),
        until_date=until_date.isoformat(),
    )
    return entry


def _visit_to_bring_forward(
    session: Session, patient: Patient, appointment_id: int, until_date: date, now: datetime
) -> Appointment:
    """The patient's own scheduled, future visit, whose day the window does not pass."""
    visit = get_or_raise(session, Appointment, appointment_id, "appointment")
    if visit.patient_id != patient.id:
        raise ValidationError("That visit is another patient's.", field="appointment_id")
    if visit.status != AppointmentStatus.SCHEDULED or visit.start_at <= now:
        raise ValidationError(
            "Only a scheduled visit still ahead can be brought earlier.", field="appointment_id"
        )
    if until_date > visit.start_at.astimezone(zone(patient.time_zone)).date():
        raise ValidationError(
            "To bring a visit earlier, wait only until its own date.", field="until_date"
        )
    return visit


def _on_team_within(
    session: Session, patient_id: int, nurse_id: int, first: date, last: date
) -> bool:
    """Whether the nurse is on the patient's care team on some day of [first, last]."""
    found = session.scalar(
        select(PatientNurseAssignment.id).where(
            PatientNurseAssignment.patient_id == patient_id,
            PatientNurseAssignment.nurse_id == nurse_id,
            PatientNurseAssignment.valid_from <= last,
            or_(
                PatientNurseAssignment.valid_to.is_(None),
                PatientNurseAssignment.valid_to >= first,
            ),
        )
    )
    return found is not None


def open_offer(session: Session, entry_id: int) -> WaitlistOffer | None:
    """The entry's offer still waiting for an answer, if any."""
    return session.scalar(
        select(WaitlistOffer).where(
            WaitlistOffer.entry_id == entry_id, WaitlistOffer.status == OfferStatus.OFFERED
        )
    )


def cancel(
    session: Session, entry_id: int, *, actor: Actor, now: datetime, hold: timedelta | None = None
) -> WaitlistEntry:
    """Take a patient off the waitlist; time held for them goes to the next in line."""
    now = require_aware(now, "now")
    entry = get_or_raise(session, WaitlistEntry, entry_id, "waitlist entry")
    offer = open_offer(session, entry.id)
    if offer is not None:
        lock_nurse_row(session, offer.nurse_id)
        session.refresh(offer)
    session.refresh(entry)
    if entry.status == WaitlistStatus.CANCELLED:
        return entry
    if entry.status not in OPEN:
        raise InvalidState(
            f"This waitlist entry is {WaitlistStatus(entry.status).label.lower()}, not waiting.",
            field="entry_id",
        )
    previous = entry.status
    entry.status = WaitlistStatus.CANCELLED
    entry.updated_at = now
    freed = None
    if offer is not None and offer.status == OfferStatus.OFFERED:
        offer.status = OfferStatus.DECLINED
        offer.responded_at = now
        freed = offer
    session.flush()
    audit(
        session,
        actor=actor,
        action="waitlist.cancelled",
        entity_type="waitlist_entry",
        entity_id=entry.id,
        now=now,
        offer_id=freed.id if freed else None,
        changes=field_changes({"status": previous}, {"status": entry.status}),
    )
    if freed is not None and freed.expires_at > now:
        offer_freed_time(session, freed.nurse_id, freed.start_at, freed.end_at, now, hold=hold)
    return entry


def _locked_offer(session: Session, offer_id: int) -> WaitlistOffer:
    """The offer, re-read under its nurse's lock so that two answers are judged in turn."""
    offer = get_or_raise(session, WaitlistOffer, offer_id, "offer")
    lock_nurse_row(session, offer.nurse_id)
    session.refresh(offer)
    session.refresh(offer.entry)
    return offer


def _refuse_answer(offer: WaitlistOffer, now: datetime) -> None:
    """InvalidState when the offer can no longer be answered."""
    if offer.status != OfferStatus.OFFERED:
        raise InvalidState(
            f"This offer was already {OfferStatus(offer.status).value}; the time is no longer"
            " held for the patient.",
            field="offer_id",
        )
    if offer.expires_at <= now:
        raise InvalidState(
            "This offer's hold has lapsed; the time may have gone to the next patient.",
            field="offer_id",
        )


def accept(
    session: Session,
    offer_id: int,
    *,
    actor: Actor,
    now: datetime,
    patient_id: int | None = None,
) -> Appointment:
    """Book the held time for its patient through book_appointment; accepting again gives
    the same visit. A lapsed, declined or withdrawn offer, or one made to another patient than
    `patient_id` (when given), is refused with nothing changed."""
    now = require_aware(now, "now")
    offer = _locked_offer(session, offer_id)
    if patient_id is not None and offer.entry.patient_id != patient_id:
        raise InvalidState("This time is held for another patient.", field="offer_id")
    if offer.status == OfferStatus.ACCEPTED and offer.appointment is not None:
        return offer.appointment
    _refuse_answer(offer, now)
    entry = offer.entry
    _cover_the_day(session, offer, actor=actor, now=now)
    appointment = _take(session, offer, actor=actor, now=now)
    offer.status = OfferStatus.ACCEPTED
    offer.appointment_id = appointment.id
    offer.responded_at = now
    entry.status = WaitlistStatus.BOOKED
    entry.updated_at = now
    session.flush()
    audit(
        session,
        actor=actor,
        action="waitlist.accepted",
        entity_type="waitlist_offer",
        entity_id=offer.id,
        now=now,
        entry_id=entry.id,
        appointment_id=appointment.id,
        changes=field_changes({"status": OfferStatus.OFFERED}, {"status": OfferStatus.ACCEPTED}),
    )
    return appointment


def _take(session: Session, offer: WaitlistOffer, *, actor: Actor, now: datetime) -> Appointment:
    """Book the held time, or move the visit the patient wanted earlier onto it: with the same
    nurse a reschedule; with another, a booking and the old visit cancelled, in one step."""
    entry, key = offer.entry, f"waitlist-offer:{offer.id}"
    minutes = int((offer.end_at - offer.start_at).total_seconds() // 60)
    visit = entry.appointment
    if visit is not None and visit.status != AppointmentStatus.SCHEDULED:
        visit = None  # cancelled or moved meanwhile: the held time is booked as a new visit
    if visit is not None and visit.nurse_id == offer.nurse_id:
        return reschedule_appointment(
            session,
            visit.id,
            new_start=offer.start_at,
            duration_minutes=minutes,
            actor=actor,
            now=now,
            idempotency_key=key,
        )
    booked = book_appointment(
        session,
        patient_id=entry.patient_id,
        nurse_id=offer.nurse_id,
        start=offer.start_at,
        duration_minutes=minutes,
        kind=entry.kind if visit is None else visit.kind,
        reason="" if visit is None else visit.reason,
        actor=actor,
        now=now,
        idempotency_key=key,
    )
    if visit is not None:
        cancel_appointment(
            session,
            visit.id,
            actor=actor,
            now=now,
            reason_code=CancelReason.PATIENT_REQUEST,
            note=f"Brought earlier from the waitlist: now appointment {booked.id}.",
        )
    return booked


def _cover_the_day(session: Session, offer: WaitlistOffer, *, actor: Actor, now: datetime) -> None:
    """A nurse off the care team who covers the patient's needs was offered: make her their
    backup for the visit's day (audited), unless they have a backup then."""
    nurse, patient_id = offer.nurse, offer.entry.patient_id
    day = offer.start_at.astimezone(zone(nurse.time_zone)).date()
    if is_assigned(session, patient_id, nurse.id, day):
        return
    if active_assignment(session, patient_id, on=day, role=AssignmentRole.BACKUP) is not None:
        raise InvalidState(
            f"{nurse.display_name} is not on this patient's care team and they have a backup "
            "nurse that day; book with the care team instead.",
            field="offer_id",
        )
    assign_nurse(
        session,
        patient_id=patient_id,
        nurse_id=nurse.id,
        role=AssignmentRole.BACKUP,
        valid_from=day,
        valid_to=day,
        actor=actor,
        now=now,
    )


def _let_go(
    session: Session,
    offer: WaitlistOffer,
    status: OfferStatus,
    *,
    actor: Actor,
    now: datetime,
    hold: timedelta | None,
) -> list[WaitlistOffer]:
    """Close an unanswered offer (declined or lapsed): the patient waits on for other times,
    and the held time goes to the next in line."""
    offer.status = status
    offer.responded_at = now
    entry = offer.entry
    if entry.status == WaitlistStatus.OFFERED:
        entry.status = WaitlistStatus.WAITING
        entry.updated_at = now
    session.flush()
    audit(
        session,
        actor=actor,
        action=f"waitlist.{status.value}",
        entity_type="waitlist_offer",
        entity_id=offer.id,
        now=now,
        entry_id=entry.id,
        changes=field_changes({"status": OfferStatus.OFFERED}, {"status": status}),
    )
    return offer_freed_time(
        session, offer.nurse_id, offer.start_at, offer.end_at, now, hold=hold, actor=actor
    )


def decline(
    session: Session,
    offer_id: int,
    *,
    actor: Actor,
    now: datetime,
    hold: timedelta | None = None,
) -> WaitlistOffer:
    """The patient passes on the held time: it goes to the next in line; they wait on."""
    now = require_aware(now, "now")
    offer = _locked_offer(session, offer_id)
    if offer.status == OfferStatus.DECLINED:
        return offer
    _refuse_answer(offer, now)
    _let_go(session, offer, OfferStatus.DECLINED, actor=actor, now=now, hold=hold)
    return offer


def lapse_expired(
    session: Session, now: datetime, *, hold: timedelta | None = None
) -> tuple[int, int]:
    """Close holds that expired unanswered (offering their time to the next in line) and
    entries whose window has passed; (lapsed offers, expired entries). Idempotent."""
    now = require_aware(now, "now")
    actor = Actor.system()
    due = session.scalars(
        select(WaitlistOffer.id)
        .where(WaitlistOffer.status == OfferStatus.OFFERED, WaitlistOffer.expires_at <= now)
        .order_by(WaitlistOffer.expires_at, WaitlistOffer.id)
    ).all()
    lapsed = 0
    for offer_id in due:
        offer = _locked_offer(session, offer_id)
        if offer.status != OfferStatus.OFFERED or offer.expires_at > now:
            continue  # answered while we waited for the lock
        _let_go(session, offer, OfferStatus.LAPSED, actor=actor, now=now, hold=hold)
        lapsed += 1
    stale = session.execute(
        select(WaitlistEntry, Patient)
        .join(Patient, Patient.id == WaitlistEntry.patient_id)
        .where(
            WaitlistEntry.status == WaitlistStatus.WAITING,
            WaitlistEntry.until_date < now.date() + timedelta(days=1),
        )
    ).all()
    expired = 0
    for entry, patient in stale:
        if entry.until_date >= patient_today(patient, now):
            continue
        entry.status = WaitlistStatus.EXPIRED
        entry.updated_at = now
        audit(
            session,
            actor=actor,
            action="waitlist.expired",
            entity_type="waitlist_entry",
            entity_id=entry.id,
            now=now,
            changes=field_changes(
                {"status": WaitlistStatus.WAITING}, {"status": WaitlistStatus.EXPIRED}
            ),
        )
        expired += 1
    session.flush()
    return lapsed, expired


# ---------------------------------------------------------------- answers by text

YES_WORDS = frozenset({"yes", "y", "yes please", "ok", "book", "book it"})
NO_WORDS = frozenset({"no", "n", "no thanks", "pass"})
TEXT_ACTOR = Actor(source=Source.SYSTEM, label="patient:text")
UNKNOWN_NUMBER = (
    "Carematix: we could not find a time held for this number. Please call us to book a visit."
)
NOTHING_HELD = (
    "Carematix: there is no time held for you right now. We will text you when one opens up."
)
NO_LONGER_FREE = (
    "Carematix: sorry, that time can no longer be booked. You stay on the waitlist; "
    "we will text you when another opens up."
)


def held_for_phone(session: Session, phone: str, now: datetime) -> WaitlistOffer | None:
    """The time held right now for the patient with this phone number, if any."""
    return session.scalar(
        select(WaitlistOffer)
        .join(WaitlistEntry, WaitlistEntry.id == WaitlistOffer.entry_id)
        .join(Patient, Patient.id == WaitlistEntry.patient_id)
        .where(
            Patient.phone == phone,
            WaitlistOffer.status == OfferStatus.OFFERED,
            WaitlistOffer.expires_at > now,
        )
        .order_by(WaitlistOffer.start_at)
    )


def answer_by_text(session: Session, phone: str, text: str, now: datetime) -> str:
    """Apply a patient's text reply (YES books the time held for them, NO passes it on) and
    say what happened; a number we do not know or with nothing held changes nothing.

    A refusal (the booking checks say no) raises, so that the caller rolls back; see
    NO_LONGER_FREE for the words to send then.
    """
    now = require_aware(now, "now")
    try:
        number = normalise_phone(phone, "From")
    except ValidationError:
        return UNKNOWN_NUMBER
    patient = session.scalar(select(Patient).where(Patient.phone == number))
    if patient is None:
        return UNKNOWN_NUMBER
    offer = held_for_phone(session, number, now)
    if offer is None:
        return NOTHING_HELD
    when = spoken(offer.start_at, patient.time_zone)
    nurse = f"nurse {offer.nurse.first_name}"
    word = " ".join(text.lower().replace(".", " ").replace("!", " ").split())
    if word in YES_WORDS:
        accept(session, offer.id, actor=TEXT_ACTOR, now=now, patient_id=patient.id)
        return f"Carematix: you are booked for {when} with {nurse}. See you then."
    if word in NO_WORDS:
        decline(session, offer.id, actor=TEXT_ACTOR, now=now)
        return (
            "Carematix: no problem, we have passed that time on. You stay on the waitlist "
            "for another."
        )
    return f"Carematix: reply YES to book {when} with {nurse}, or NO to pass."
