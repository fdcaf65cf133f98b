"""Notification outbox: rows written in the same transaction as the change they announce.

A delivery worker sends them later. Patient texts carry no clinical details: only the time,
the nurse's first name and how to change the appointment.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import (
    Appointment,
    AppointmentKind,
    Channel,
    Notification,
    NotificationStatus,
    Patient,
    RecipientKind,
    Role,
    User,
    WaitlistOffer,
)
from core.timefmt import spoken

KIND_WORDS = {
    AppointmentKind.PHONE: "phone call",
    AppointmentKind.VIDEO: "video call",
    AppointmentKind.HOME_VISIT: "home visit",
}


class BookingEvent(StrEnum):
    BOOKED = "appointment_booked"
    RESCHEDULED = "appointment_rescheduled"
    CANCELLED = "appointment_cancelled"
    SERIES_BOOKED = "series_booked"
    SERIES_CANCELLED = "series_cancelled"
    SERIES_MOVED = "series_moved"
    WAITLIST_OFFER = "waitlist_offer"
    MISSED_CALL = "missed_call"


def _patient_text(
    event: BookingEvent, appointment: Appointment, previous: Appointment | None
) -> str:
    when = spoken(appointment.start_at, appointment.patient.time_zone)
    nurse = appointment.nurse.first_name
    what = KIND_WORDS.get(AppointmentKind(appointment.kind), "appointment")
    change = "To change it, call us back or reply to this message."
    if event == BookingEvent.BOOKED:
        return f"Carematix: your {what} with nurse {nurse} is booked for {when}. {change}"
    if event == BookingEvent.RESCHEDULED:
        return f"Carematix: your {what} with nurse {nurse} has moved to {when}. {change}"
    return (
        f"Carematix: your {what} with nurse {nurse} on {when} is cancelled. To book again, call us."
    )


def _nurse_text(event: BookingEvent, appointment: Appointment, previous: Appointment | None) -> str:
    when = spoken(appointment.start_at, appointment.nurse.time_zone)
    what = KIND_WORDS.get(AppointmentKind(appointment.kind), "appointment")
    ref = f"appointment #{appointment.id}"
    if event == BookingEvent.BOOKED:
        return f"New {what} booked for {when} ({ref})."
    if event == BookingEvent.RESCHEDULED and previous is not None:
        before = spoken(previous.start_at, appointment.nurse.time_zone)
        return f"A {what} moved from {before} to {when} ({ref})."
    return f"A {what} on {when} was cancelled ({ref})."


def _series_text(event: BookingEvent, visits: list[Appointment], zone_name: str) -> str:
    first = visits[0]
    what = KIND_WORDS.get(AppointmentKind(first.kind), "appointment")
    count = f"{len(visits)} {what}s" if len(visits) > 1 else f"1 {what}"
    when = spoken(first.start_at, zone_name)
    if event == BookingEvent.SERIES_BOOKED:
        return f"{count} booked, the first on {when}."
    if event == BookingEvent.SERIES_MOVED:
        return f"{count} moved, the first now on {when}."
    return f"{count} cancelled, from {when} on."


SERIES_SUBJECTS = {
    BookingEvent.SERIES_BOOKED: "Visits booked",
    BookingEvent.SERIES_MOVED: "Visits moved",
    BookingEvent.SERIES_CANCELLED: "Visits cancelled",
}


def queue_series_notifications(
    session: Session, *, event: BookingEvent, appointments: list[Appointment], now: datetime
) -> list[Notification]:
    """One message for several visits of a series booked, moved or cancelled together, where one
    per visit would flood the patient; each visit's reminders still come on their own."""
    if not appointments:
        return []
    first = appointments[0]
    patient, nurse = first.patient, first.nurse
    subject = SERIES_SUBJECTS[event]
    patient_body = (
        f"Carematix: your recurring visits with nurse {nurse.first_name}: "
        f"{_series_text(event, appointments, patient.time_zone)} "
        + (
            "To change one, call us back or reply to this message."
            if event != BookingEvent.SERIES_CANCELLED
            else "To book again, call us."
        )
    )
    nurse_body = (
        f"Recurring visits: {_series_text(event, appointments, nurse.time_zone)} "
        f"(appointments #{first.id} onwards)."
    )
    return _queue_messages(
        session,
        event=event,
        subject=subject,
        appointment=first,
        patient_body=patient_body,
        nurse_body=nurse_body,
        now=now,
        nurse_in_app=False,
    )


def queue_booking_notifications(
    session: Session,
    *,
    event: BookingEvent,
    appointment: Appointment,
    now: datetime,
    previous: Appointment | None = None,
) -> list[Notification]:
    """Queue the messages a booking change owes the patient and the nurse."""
    subject = {
        BookingEvent.BOOKED: "Appointment confirmed",
        BookingEvent.RESCHEDULED: "Appointment moved",
        BookingEvent.CANCELLED: "Appointment cancelled",
    }[event]
    return _queue_messages(
        session,
        event=event,
        subject=subject,
        appointment=appointment,
        patient_body=_patient_text(event, appointment, previous),
        nurse_body=_nurse_text(event, appointment, previous),
        now=now,
        nurse_in_app=True,
    )


def _queue_messages(
    session: Session,
    *,
    event: BookingEvent,
    subject: str,
    appointment: Appointment,
    patient_body: str,
    nurse_body: str,
    now: datetime,
    nurse_in_app: bool,
) -> list[Notification]:
    """One message per channel the patient and the nurse can be reached on."""
    rows: list[Notification] = []
    patient, nurse = appointment.patient, appointment.nurse

    def add(**fields: object) -> None:
        rows.append(
            Notification(
                event=event.value,
                subject=subject,
                appointment_id=appointment.id,
                status=NotificationStatus.QUEUED,
                send_after=now,
                created_at=now,
                **fields,
            )
        )

    if patient.sms_consent:
        add(
            recipient_kind=RecipientKind.PATIENT,
            patient_id=patient.id,
            channel=Channel.SMS,
            body=patient_body,
        )
    if patient.email:
        add(
            recipient_kind=RecipientKind.PATIENT,
            patient_id=patient.id,
            channel=Channel.EMAIL,
            body=patient_body,
        )
    if nurse.email:
        add(
            recipient_kind=RecipientKind.NURSE,
            nurse_id=nurse.id,
            channel=Channel.EMAIL,
            body=nurse_body,
        )
    login_id = (
        session.scalar(select(User.id).where(User.nurse_id == nurse.id, User.role == Role.NURSE))
        if nurse_in_app
        else None
    )
    if login_id is not None:
        add(
            recipient_kind=RecipientKind.NURSE,
            nurse_id=nurse.id,
            user_id=login_id,
            channel=Channel.IN_APP,
            body=nurse_body,
        )
    session.add_all(rows)
    return rows


def waitlist_offer_text(offer: WaitlistOffer) -> str:
    """The text offering held time to a waiting patient: only the time and the nurse's name."""
    patient = offer.entry.patient
    when = spoken(offer.start_at, patient.time_zone)
    until = spoken(offer.expires_at, patient.time_zone)
    nurse = f"nurse {offer.nurse.first_name}"
    return (
        f"Carematix: an earlier time has opened up. Reply YES to book {when} with {nurse}, "
        f"or NO to pass. We hold it for you until {until}."
    )


def queue_waitlist_offer(
    session: Session, offer: WaitlistOffer, now: datetime
) -> list[Notification]:
    """Text the offer to a patient who agreed to texts (a reply answers it); without consent
    the offer waits on the dashboard for a coordinator to take up with them."""
    return _text_patient(
        session,
        offer.entry.patient,
        BookingEvent.WAITLIST_OFFER,
        "An earlier time",
        waitlist_offer_text(offer),
        now,
    )


def missed_call_text(callback_number: str) -> str:
    """After a voicemail: who called and how to call back, nothing about why."""
    return f"Carematix: we tried to reach you by phone. Please call us back at {callback_number}."


def queue_missed_call_text(
    session: Session, patient: Patient, callback_number: str, now: datetime
) -> list[Notification]:
    """Text a patient who agreed to texts that we tried to call (after a voicemail)."""
    if not callback_number:
        return []
    text = missed_call_text(callback_number)
    return _text_patient(session, patient, BookingEvent.MISSED_CALL, "We tried to call", text, now)


def _text_patient(
    session: Session,
    patient: Patient,
    event: BookingEvent,
    subject: str,
    body: str,
    now: datetime,
) -> list[Notification]:
    """Queue one text to a patient now, if they agreed to texts."""
    if not patient.sms_consent:
        return []
    row = Notification(
        event=event.value,
        subject=subject,
        recipient_kind=RecipientKind.PATIENT,
        patient_id=patient.id,
        channel=Channel.SMS,
        body=body,
        status=NotificationStatus.QUEUED,
        send_after=now,
        created_at=now,
    )
    session.add(row)
    return [row]
