"""Create and update patients and nurses, with checks a coordinator can act on."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from core.errors import ValidationError
from core.models import Nurse, Patient
from core.operations import LANGUAGES
from core.scheduling import require_aware
from core.services.common import (
    Actor,
    audit,
    check_minutes,
    check_name,
    check_zone,
    field_changes,
    get_or_raise,
    normalise_email,
    normalise_phone,
)


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


ADDRESS_FIELDS = {
    "address_line1": ("Address line 1", 200),
    "address_line2": ("Address line 2", 200),
    "address_city": ("City", 100),
    "address_region": ("State or region", 100),
    "address_postal_code": ("Postal code", 20),
}
EMERGENCY_FIELDS = {
    "emergency_contact_name": ("Emergency contact name", 100),
    "emergency_contact_relationship": ("Relationship", 60),
}
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
    *ADDRESS_FIELDS,
    *EMERGENCY_FIELDS,
    "emergency_contact_phone",
}
REQUIRED_PATIENT_FIELDS = ("first_name", "last_name", "date_of_birth", "phone", "time_zone")
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


def _optional_text(value: Any, field: str, label: str, limit: int) -> str | None:
    """Trimmed text, None when empty, or a ValidationError when longer than `limit`."""
    text = str(value or "").strip()
    if len(text) > limit:
        raise ValidationError(f"{label} is too long ({limit} characters at most).", field=field)
    return text or None


def _check_patient_field(
    session: Session, name: str, value: Any, now: datetime, patient_id: int | None
) -> Any:
    """One patient field, cleaned, or a ValidationError naming it."""
    if name in ("first_name", "last_name"):
        return check_name(value, name, name.replace("_", " ").capitalize())
    if name == "date_of_birth":
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ValidationError("Give the date of birth as a date.", field=name)
        if value > now.date() or value.year < 1900:
            raise ValidationError("That date of birth is not possible.", field=name)
        return value
    if name == "phone":
        phone = normalise_phone(value)
        clash = session.scalar(select(Patient.id).where(Patient.phone == phone))
        if clash is not None and clash != patient_id:
            raise ValidationError("Another patient already has that phone number.", field=name)
        return phone
    if name == "email":
        return normalise_email(value)
    if name == "time_zone":
        return check_zone(value)
    if name == "preferred_language":
        language = (value or "en").strip().lower()
        if language not in LANGUAGES:
            raise ValidationError(
                f"Supported languages: {', '.join(sorted(LANGUAGES))}.", field=name
            )
        return language
    if name == "conditions":
        return _clean_list(value, name, "condition")
    if name == "sms_consent":
        return bool(value)
    if name == "notes":
        notes = (value or "").strip()
        if len(notes) > 5000:
            raise ValidationError("Notes are at most 5000 characters.", field=name)
        return notes
    if name == "emergency_contact_phone":
        return normalise_phone(value, field=name) if str(value or "").strip() else None
    label, limit = {**ADDRESS_FIELDS, **EMERGENCY_FIELDS}[name]
    return _optional_text(value, name, label, limit)


def _missing_parts(
    values: dict[str, Any], errors: dict[str, str], group: tuple[str, ...], needed: dict[str, str]
) -> None:
    """A group of fields is all empty or has its `needed` parts: name each one missing."""
    if not any(values.get(name) for name in group):
        return
    for name, message in needed.items():
        if not values.get(name) and name not in errors:
            errors[name] = message


def _patient_values(
    session: Session,
    values: dict[str, Any],
    now: datetime,
    patient: Patient | None,
) -> dict[str, Any]:
    """Every given field cleaned; else one ValidationError listing each field's problem."""
    unknown = set(values) - PATIENT_FIELDS
    if unknown:
        raise ValidationError(f"Unknown patient fields: {', '.join(sorted(unknown))}.")
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, value in values.items():
        try:
            out[name] = _check_patient_field(
                session, name, value, now, patient.id if patient else None
            )
        except ValidationError as exc:
            errors[exc.field or name] = exc.message
    # Judge the address and contact as they will be stored: an update may send only some parts.
    merged = {
        name: out.get(name, getattr(patient, name) if patient is not None else None)
        for name in (*ADDRESS_FIELDS, *EMERGENCY_FIELDS, "emergency_contact_phone")
    }
    _missing_parts(
        merged,
        errors,
        tuple(ADDRESS_FIELDS),
        {
            "address_line1": "Give the street address, or leave the whole address empty.",
            "address_city": "Give the city, or leave the whole address empty.",
            "address_postal_code": "Give the postal code, or leave the whole address empty.",
        },
    )
    _missing_parts(
        merged,
        errors,
        (*EMERGENCY_FIELDS, "emergency_contact_phone"),
        {
            "emergency_contact_name": "Give the emergency contact's name.",
            "emergency_contact_phone": "Give the emergency contact's phone number.",
        },
    )
    if errors:
        raise patient_errors(errors)
    return out


def patient_errors(errors: dict[str, str]) -> ValidationError:
    """One ValidationError for several fields: the first as its message, all under `errors`."""
    field, message = next(iter(errors.items()))
    if len(errors) > 1:
        message = f"{message} (and {len(errors) - 1} more to fix)"
    return ValidationError(message, field=field, errors=errors)


def create_patient(session: Session, *, actor: Actor, now: datetime, **values: Any) -> Patient:
    """Add a patient; name, date of birth, phone and time zone are required."""
    now = require_aware(now, "now")
    missing = {
        name: f"{name.replace('_', ' ').capitalize()} is required."
        for name in REQUIRED_PATIENT_FIELDS
        if values.get(name) in (None, "")
    }
    try:
        cleaned = _patient_values(
            session, {k: v for k, v in values.items() if k not in missing}, now, None
        )
    except ValidationError as exc:
        if not missing or "errors" not in exc.details:
            raise
        missing.update(exc.details["errors"])
    if missing:
        raise patient_errors(missing)
    patient = Patient(created_at=now, **cleaned)
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
    changes = _patient_values(session, values, now, patient)
    before = {name: getattr(patient, name) for name in changes}
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
        changes=field_changes(before, changes),
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
    before = {name: getattr(nurse, name) for name in changes}
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
        changes=field_changes(before, changes),
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


# A search with this many digits may be part of a phone number, whatever its punctuation.
PHONE_FRAGMENT_DIGITS = 3


def patient_matches(query: str) -> ColumnElement[bool]:
    """Patients a search finds: every word in a name (any order: "Hughes Margaret" finds
    Margaret Hughes), or digits found in the phone ("555-0142", "(202) 555 0142")."""
    words = [word for word in re.split(r"[\s,]+", query) if word]
    by_name = and_(
        *(
            or_(
                Patient.first_name.icontains(word, autoescape=True),
                Patient.last_name.icontains(word, autoescape=True),
            )
            for word in words
        )
    )
    digits = re.sub(r"\D", "", query)
    if len(digits) < PHONE_FRAGMENT_DIGITS:
        return by_name
    return or_(by_name, Patient.phone.contains(digits))
