"""Private iCalendar feeds for nurses, reached through a revocable secret token.

Calendar apps poll the feed; each visit keeps one UID forever, changes raise its SEQUENCE
(Appointment.sequence), and cancelled visits stay in the feed with STATUS:CANCELLED so
subscribers remove them, as do no-shows. Events say only the kind of visit, the patient's first
name and, for a home visit, where it is (LOCATION): never anything clinical.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Appointment, AppointmentKind, AppointmentStatus, Nurse
from core.outbox import KIND_WORDS
from core.services.common import Actor, audit, get_or_raise
from core.services.series import series_in_words

PRODID = "-//Carematix//Nurse calendar//EN"
UID_DOMAIN = "carematix"
# How far back the feed reaches; the future is unbounded.
FEED_PAST = timedelta(days=60)
# iCalendar has no "no-show" or "completed": a visit that did not happen is CANCELLED (and
# frees the time), one that happened stays CONFIRMED; only a scheduled visit is still ahead.
FEED_STATUS = {
    AppointmentStatus.SCHEDULED: "CONFIRMED",
    AppointmentStatus.COMPLETED: "CONFIRMED",
    AppointmentStatus.NO_SHOW: "CANCELLED",
    AppointmentStatus.CANCELLED: "CANCELLED",
    AppointmentStatus.ENTERED_IN_ERROR: "CANCELLED",
}


def appointment_uid(appointment_id: int) -> str:
    """The stable iCalendar UID of an appointment."""
    return f"appointment-{appointment_id}@{UID_DOMAIN}"


def hash_calendar_token(plaintext: str) -> str:
    """SHA-256 hex of a feed token; only this is stored."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def rotate_calendar_token(session: Session, nurse_id: int, actor: Actor, now: datetime) -> str:
    """Give the nurse a new feed token (revoking the old one); returns it once, in plaintext."""
    nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
    token = secrets.token_urlsafe(32)
    nurse.calendar_token_hash = hash_calendar_token(token)
    nurse.updated_at = now
    session.flush()
    audit(
        session,
        actor=actor,
        action="nurse.calendar_token_rotated",
        entity_type="nurse",
        entity_id=nurse.id,
        now=now,
    )
    return token


def revoke_calendar_token(session: Session, nurse_id: int, actor: Actor, now: datetime) -> None:
    """Turn the nurse's feed off until a new token is made."""
    nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
    nurse.calendar_token_hash = None
    nurse.updated_at = now
    session.flush()
    audit(
        session,
        actor=actor,
        action="nurse.calendar_token_revoked",
        entity_type="nurse",
        entity_id=nurse.id,
        now=now,
    )


def nurse_for_calendar_token(session: Session, plaintext: str) -> Nurse | None:
    """The active nurse whose feed token this is, or None."""
    if not plaintext or len(plaintext) > 200:
        return None
    return session.scalar(
        select(Nurse).where(
            Nurse.calendar_token_hash == hash_calendar_token(plaintext), Nurse.active.is_(True)
        )
    )


def calendar_feed_path(token: str) -> str:
    """Path of a nurse's feed (the web endpoint serves it; prefix PUBLIC_BASE_URL)."""
    return f"/calendar/{token}.ics"


def _event(appointment: Appointment, now: datetime) -> Event:
    what = KIND_WORDS.get(AppointmentKind(appointment.kind), "appointment")
    event = Event()
    event.add("uid", appointment_uid(appointment.id))
    event.add("dtstamp", now)
    event.add("dtstart", appointment.start_at)
    event.add("dtend", appointment.end_at)
    event.add("sequence", appointment.sequence)
    event.add("summary", f"{what.capitalize()} with {appointment.patient.first_name}")
    event.add("last-modified", appointment.updated_at or appointment.created_at)
    event.add("created", appointment.created_at)
    status = FEED_STATUS[AppointmentStatus(appointment.status)]
    event.add("status", status)
    event.add("transp", "TRANSPARENT" if status == "CANCELLED" else "OPAQUE")
    if appointment.kind == AppointmentKind.HOME_VISIT and appointment.patient.has_address:
        event.add("location", appointment.patient.address)
    if appointment.series is not None and appointment.series_index is not None:
        event.add(
            "description",
            f"Visit {appointment.series_index + 1} of a series: "
            f"{series_in_words(appointment.series)}.",
        )
    return event


def calendar_feed(session: Session, nurse: Nurse, now: datetime) -> bytes:
    """The nurse's appointments as an iCalendar document (times in UTC)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"Carematix visits ({nurse.first_name})")
    calendar.add("x-wr-timezone", "UTC")
    calendar.add("refresh-interval", timedelta(minutes=15), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT15M")
    appointments = session.scalars(
        select(Appointment)
        .where(Appointment.nurse_id == nurse.id, Appointment.end_at >= now - FEED_PAST)
        .order_by(Appointment.start_at, Appointment.id)
    ).all()
    for appointment in appointments:
        calendar.add_component(_event(appointment, now))
    return calendar.to_ical()
