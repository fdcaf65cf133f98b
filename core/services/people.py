"""Create and update patients and nurses, with checks a coordinator can act on."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import ValidationError
from core.models import Nurse, Patient
from core.scheduling import require_aware
from core.services.common import (
    Actor,
    audit,
    check_minutes,
    check_name,
    check_zone,
    get_or_raise,
    normalise_email,
    normalise_phone,
)

LANGUAGES = {"en", "es", "fr", "de", "pt", "it", "zh", "vi", "ko", "tl", "ar", "ru", "hi"}


def _clean_list(values: Iterable[str], field: str, label: str) -> list[str]:
    cleaned: list[str] = []
    for value in values:
        text = str(value).strip()
        if not text:
            continue
        if len(text) > 100:
            raise ValidationError(f"Each {label} is at most 100 characters.", field=field)
        if text.lower() not in {c.lower() for c in cleaned}:
            cleaned.append(text)
    return cleaned


PATIENT_FIELDS = {
    "first_name",
    "last_name",
    "date_of_birth",
    "phone",
    "email",
    "time_zone",
    "preferred_language",
    "conditions",
    "sms_consent",
    "notes",
}
NURSE_FIELDS = {
    "first_name",
    "last_name",
    "title",
    "specializations",
    "phone",
    "email",
    "time_zone",
    "visit_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "min_notice_minutes",
    "horizon_days",
    "daily_cap",
    "slot_step_minutes",
    "active",
}


def _patient_values(
    session: Session, values: dict[str, Any], now: datetime, patient_id: int | None
) -> dict[str, Any]:
    unknown = set(values) - PATIENT_FIELDS
    if unknown:
        raise ValidationError(f"Unknown patient fields: {', '.join(sorted(unknown))}.")
    out: dict[str, Any] = {}
    if "first_name" in values:
        out["first_name"] = check_name(values["first_name"], "first_name", "First name")
    if "last_name" in values:
        out["last_name"] = check_name(values["last_name"], "last_name", "Last name")
    if "date_of_birth" in values:
        born = values["date_of_birth"]
        if not isinstance(born, date) or isinstance(born, datetime):
            raise ValidationError("Give the date of birth as a date.", field="date_of_birth")
        if born > now.date() or born.year < 1900:
            raise ValidationError("That date of birth is not possible.", field="date_of_birth")
        out["date_of_birth"] = born
    if "phone" in values:
        phone = normalise_phone(values["phone"])
        clash = session.scalar(select(Patient.id).where(Patient.phone == phone))
        if clash is not None and clash != patient_id:
            raise ValidationError("Another patient already has that phone number.", field="phone")
        out["phone"] = phone
    if "email" in values:
        out["email"] = normalise_email(values["email"])
    if "time_zone" in values:
        out["time_zone"] = check_zone(values["time_zone"])
    if "preferred_language" in values:
        language = (values["preferred_language"] or "en").strip().lower()
        if language not in LANGUAGES:
            raise ValidationError(
                f"Supported languages: {', '.join(sorted(LANGUAGES))}.", field="preferred_language"
            )
        out["preferred_language"] = language
    if "conditions" in values:
        out["conditions"] = _clean_list(values["conditions"], "conditions", "condition")
    if "sms_consent" in values:
        out["sms_consent"] = bool(values["sms_consent"])
    if "notes" in values:
        notes = (values["notes"] or "").strip()
        if len(notes) > 5000:
            raise ValidationError("Notes are at most 5000 characters.", field="notes")
        out["notes"] = notes
    return out


def create_patient(session: Session, *, actor: Actor, now: datetime, **values: Any) -> Patient:
    """Add a patient; name, date of birth, phone and time zone are required."""
    now = require_aware(now, "now")
    for required in ("first_name", "last_name", "date_of_birth", "phone", "time_zone"):
        if values.get(required) in (None, ""):
            raise ValidationError(
                f"{required.replace('_', ' ').capitalize()} is required.", field=required
            )
    patient = Patient(created_at=now, **_patient_values(session, values, now, None))
    session.add(patient)
    session.flush()
    audit(
        session,
        actor=actor,
        action="patient.created",
        entity_type="patient",
        entity_id=patient.id,
        now=now,
    )
    return patient


def update_patient(
    session: Session, patient_id: int, *, actor: Actor, now: datetime, **values: Any
) -> Patient:
    """Change some of a patient's details."""
    now = require_aware(now, "now")
    patient = get_or_raise(session, Patient, patient_id, "patient")
    changes = _patient_values(session, values, now, patient.id)
    for name, value in changes.items():
        setattr(patient, name, value)
    patient.updated_at = now
    session.flush()
    audit(
        session,
        actor=actor,
        action="patient.updated",
        entity_type="patient",
        entity_id=patient.id,
        now=now,
        fields=sorted(changes),
    )
    return patient


def _nurse_values(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - NURSE_FIELDS
    if unknown:
        raise ValidationError(f"Unknown nurse fields: {', '.join(sorted(unknown))}.")
    out: dict[str, Any] = {}
    if "first_name" in values:
        out["first_name"] = check_name(values["first_name"], "first_name", "First name")
    if "last_name" in values:
        out["last_name"] = check_name(values["last_name"], "last_name", "Last name")
    if "title" in values:
        title = (values["title"] or "").strip()
        if len(title) > 40:
            raise ValidationError("The title is at most 40 characters.", field="title")
        out["title"] = title
    if "specializations" in values:
        out["specializations"] = _clean_list(
            values["specializations"], "specializations", "specialisation"
        )
    if "phone" in values:
        out["phone"] = normalise_phone(values["phone"]) if values["phone"] else None
    if "email" in values:
        out["email"] = normalise_email(values["email"])
    if "time_zone" in values:
        out["time_zone"] = check_zone(values["time_zone"])
    limits = {
        "visit_minutes": ("Visit length", 5, 480),
        "buffer_before_minutes": ("Buffer before", 0, 240),
        "buffer_after_minutes": ("Buffer after", 0, 240),
        "min_notice_minutes": ("Minimum notice", 0, 60 * 24 * 30),
        "horizon_days": ("Booking horizon", 1, 365),
        "slot_step_minutes": ("Slot step", 5, 120),
    }
    for name, (label, low, high) in limits.items():
        if name in values:
            out[name] = check_minutes(values[name], name, label, low=low, high=high)
    if "daily_cap" in values:
        cap = values["daily_cap"]
        out["daily_cap"] = (
            None
            if cap in (None, "", 0)
            else check_minutes(cap, "daily_cap", "Daily cap", low=1, high=100)
        )
    if "active" in values:
        out["active"] = bool(values["active"])
    return out


def create_nurse(session: Session, *, actor: Actor, now: datetime, **values: Any) -> Nurse:
    """Add a nurse; name and time zone are required, visit settings default sensibly."""
    now = require_aware(now, "now")
    for required in ("first_name", "last_name", "time_zone"):
        if values.get(required) in (None, ""):
            raise ValidationError(
                f"{required.replace('_', ' ').capitalize()} is required.", field=required
            )
    nurse = Nurse(created_at=now, **_nurse_values(session, values))
    session.add(nurse)
    session.flush()
    audit(
        session,
        actor=actor,
        action="nurse.created",
        entity_type="nurse",
        entity_id=nurse.id,
        now=now,
    )
    return nurse


def update_nurse(
    session: Session, nurse_id: int, *, actor: Actor, now: datetime, **values: Any
) -> Nurse:
    """Change some of a nurse's details or visit settings (deactivate with active=False)."""
    now = require_aware(now, "now")
    nurse = get_or_raise(session, Nurse, nurse_id, "nurse")
    changes = _nurse_values(session, values)
    for name, value in changes.items():
        setattr(nurse, name, value)
    nurse.updated_at = now
    session.flush()
    audit(
        session,
        actor=actor,
        action="nurse.updated",
        entity_type="nurse",
        entity_id=nurse.id,
        now=now,
        fields=sorted(changes),
    )
    return nurse


def find_patient_by_phone(session: Session, phone: str) -> Patient | None:
    """The patient with that number (any common format), or None."""
    try:
        normalised = normalise_phone(phone)
    except ValidationError:
        return None
    return session.scalar(select(Patient).where(Patient.phone == normalised))


def count_patients(session: Session) -> int:
    """How many patients exist."""
    return session.scalar(select(func.count()).select_from(Patient)) or 0
