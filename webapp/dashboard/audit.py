"""The audit trail: who did what to which record, when, and what changed (old -> new).

Every change, and every read of a call's transcript, is recorded by the core services. This
page lists the events newest first, narrowed by record, action or actor, so staff can answer
"who changed this, and when, from what?". Admins read every event; coordinators read those of
the records they manage (core.services.access.audit_events). Field names and values are shown
in words, nurses and patients by name; free-text notes only ever say that they changed.
Events written before changes were recorded (a list of `fields`) still read sensibly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask import request
from sqlalchemy import or_, select
from werkzeug.wrappers import Response

from core.models import AuditEvent, Nurse, Patient, Role, User
from core.services import access
from webapp import db
from webapp.auth import roles_required
from webapp.dashboard.common import (
    blueprint,
    day_label,
    paginate,
    reads_only,
    render,
    viewer,
    when,
    whole_number_arg,
)

bp = blueprint("audit", __name__, url_prefix="/audit")

# Records with a page of their own, so an event can link to what it changed.
LINKED = {
    "patient": "patients.show",
    "nurse": "nurses.show",
    "appointment": "appointments.show",
    "call": "calls.show",
}
ENTITY_ARGUMENT = {
    "patient": "patient_id",
    "nurse": "nurse_id",
    "appointment": "appointment_id",
    "call": "call_id",
}


# Field and detail names in words; a name missing here is shown with its underscores as spaces.
LABELS = {
    "first_name": "First name",
    "last_name": "Last name",
    "title": "Title",
    "specializations": "Specialisations",
    "phone": "Phone",
    "email": "Email",
    "time_zone": "Time zone",
    "visit_minutes": "Visit length (minutes)",
    "buffer_before_minutes": "Buffer before (minutes)",
    "buffer_after_minutes": "Buffer after (minutes)",
    "min_notice_minutes": "Minimum notice (minutes)",
    "horizon_days": "Booking horizon (days)",
    "slot_step_minutes": "Slot step (minutes)",
    "daily_cap": "Daily cap",
    "active": "Active",
    "date_of_birth": "Date of birth",
    "preferred_language": "Language",
    "conditions": "Conditions",
    "sms_consent": "Agreed to texts",
    "notes": "Notes",
    "address_line1": "Address",
    "address_line2": "Address line 2",
    "address_city": "City",
    "address_region": "Region",
    "address_postal_code": "Postal code",
    "emergency_contact_name": "Emergency contact",
    "emergency_contact_relationship": "Emergency contact's relationship",
    "emergency_contact_phone": "Emergency contact's phone",
    "nurse_id": "Nurse",
    "patient_id": "Patient",
    "primary_nurse_id": "Primary nurse",
    "backup_nurse_id": "Backup nurse",
    "previous_nurse_id": "Previous nurse",
    "replaced_nurse_id": "Replaced nurse",
    "previous_id": "Previous appointment",
    "start_at": "Time",
    "status": "Status",
    "restored": "Restored status",
    "reason_code": "Reason",
    "role": "Role",
    "kind": "Kind",
    "user_id": "Login",
    "call_id": "Call",
    "call_ids": "Calls",
    "request_id": "Time-off request",
    "override_id": "Time off or extra hours",
    "notification_id": "Notification",
    "colliding_appointment_ids": "Colliding appointments",
    "windows": "Weekly hours (windows)",
    "patients_handed_over": "Patients handed over",
    "visits_moved": "Visits moved",
    "visits_cancelled": "Visits cancelled",
    "fields": "Fields saved",
}
NURSE_KEYS = frozenset(
    {"nurse_id", "primary_nurse_id", "backup_nurse_id", "previous_nurse_id", "replaced_nurse_id"}
)
PATIENT_KEYS = frozenset({"patient_id"})
# Bookkeeping ids that tell a reader nothing; and details that repeat a change shown beside.
HIDDEN = frozenset({"status_change_id"})
SAID_BY_CHANGE = {"previous_nurse_id": "nurse_id", "restored": "status"}
NONE = "none"


def label(name: str) -> str:
    """A field or detail name in words."""
    return LABELS.get(name, name.replace("_", " ").capitalize())


@dataclass(frozen=True)
class Change:
    """One field's change; `shown` is False for free text, which says only that it changed."""

    label: str
    old: str = ""
    new: str = ""
    shown: bool = True


@dataclass(frozen=True)
class Described:
    """An event's details in words: what changed, then the other facts."""

    changes: list[Change] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)


Names = Mapping[tuple[str, int], str]


def shown(key: str, value: Any, names: Names) -> str:
    """A detail's value in words: names for nurses and patients, dates as the dashboard
    writes them, yes/no, codes with spaces."""
    if value is None or value == "" or value == []:
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(shown(key, item, names) for item in value)
    if isinstance(value, int) and key in NURSE_KEYS:
        return names.get(("nurse", value), f"nurse {value}")
    if isinstance(value, int) and key in PATIENT_KEYS:
        return names.get(("patient", value), f"patient {value}")
    if key == "fields" and isinstance(value, str):
        return label(value)
    if isinstance(value, str) and key.endswith("_at"):
        try:
            return str(when(datetime.fromisoformat(value)))
        except ValueError:
            return value
    if isinstance(value, str) and key == "date_of_birth":
        try:
            return day_label(date.fromisoformat(value))
        except ValueError:
            return value
    if isinstance(value, str) and key in {"status", "restored", "reason_code", "role", "kind"}:
        return value.replace("_", " ")
    return str(value)


def describe(details: Mapping[str, Any], names: Names) -> Described:
    """An event's details as changes (old -> new) and facts, both in words."""
    described = Described()
    changes = details.get("changes") or {}
    for name, pair in changes.items():
        if not isinstance(pair, list) or len(pair) != 2:
            described.changes.append(Change(label(name), shown=False))
            continue
        old, new = pair
        described.changes.append(
            Change(label(name), shown(name, old, names), shown(name, new, names))
        )
    for key, value in details.items():
        if key == "changes" or key in HIDDEN or key in changes or value is None:
            continue
        if SAID_BY_CHANGE.get(key) in changes:
            continue
        described.facts.append((label(key), shown(key, value, names)))
    return described


def _ids(events: Iterable[AuditEvent]) -> tuple[set[int], set[int]]:
    """Nurse and patient ids the events mention, in their details or their changes."""
    nurses: set[int] = set()
    patients: set[int] = set()

    def note(key: str, value: Any) -> None:
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, int) and not isinstance(item, bool):
                if key in NURSE_KEYS:
                    nurses.add(item)
                elif key in PATIENT_KEYS:
                    patients.add(item)

    for event in events:
        details = event.details or {}
        for key, value in details.items():
            note(key, value)
        for key, pair in (details.get("changes") or {}).items():
            note(key, pair)
        if event.entity_type == "nurse" and event.entity_id is not None:
            nurses.add(event.entity_id)
        if event.entity_type == "patient" and event.entity_id is not None:
            patients.add(event.entity_id)
    return nurses, patients


def _names(events: list[AuditEvent]) -> dict[tuple[str, int], str]:
    """Names of the nurses and patients the events mention (the viewer may see them all)."""
    nurse_ids, patient_ids = _ids(events)
    names: dict[tuple[str, int], str] = {}
    if nurse_ids:
        for nurse in db.session.scalars(select(Nurse).where(Nurse.id.in_(nurse_ids))):
            names[("nurse", nurse.id)] = nurse.display_name
    if patient_ids:
        for patient in db.session.scalars(select(Patient).where(Patient.id.in_(patient_ids))):
            names[("patient", patient.id)] = patient.full_name
    return names


@bp.get("/")
@reads_only
@roles_required(Role.ADMIN, Role.COORDINATOR)
def index() -> Response:
    """Events newest first; `entity_type`, `entity_id`, `action` and `actor` narrow them."""
    who = viewer()
    stmt = access.audit_events(who)
    entity_type = request.args.get("entity_type", "").strip()
    entity_id = whole_number_arg("entity_id", "That record id")
    action = request.args.get("action", "").strip()
    actor_text = request.args.get("actor", "").strip()
    if entity_type:
        stmt = stmt.where(AuditEvent.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action, autoescape=True))
    if actor_text:
        logins = select(User.id).where(User.email.contains(actor_text, autoescape=True))
        stmt = stmt.where(
            or_(
                AuditEvent.actor.contains(actor_text, autoescape=True),
                AuditEvent.actor_user_id.in_(logins),
            )
        )
    page = paginate(stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()))
    # Events name staff by user id: show their logins here.
    ids = {e.actor_user_id for e in page.items if e.actor_user_id is not None}
    emails: dict[int, str] = {}
    if ids:
        for user in db.session.execute(select(User.id, User.email).where(User.id.in_(ids))):
            emails[user.id] = user.email
    names = _names(list(page.items))
    all_types = {"user", "api_token", *access.COORDINATOR_AUDITED_RECORDS}
    visible_types = all_types if who.role == Role.ADMIN else set(access.COORDINATOR_AUDITED_RECORDS)
    return render(
        "audit/page.html",
        "audit/_table.html",
        page=page,
        emails=emails,
        names=names,
        described={e.id: describe(e.details or {}, names) for e in page.items},
        args=request.args,
        linked=LINKED,
        entity_argument=ENTITY_ARGUMENT,
        entity_types=sorted(visible_types),
    )
