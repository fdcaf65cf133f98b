"""Who is acting, audit records, lookups and input checks shared by the services."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, TypeVar

import phonenumbers
from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationError
from core.models import AuditEvent, Base, Source
from core.scheduling import require_aware, zone

ModelT = TypeVar("ModelT", bound=Base)


@dataclass(frozen=True)
class Actor:
    """Who makes a change, and through which entry point."""

    source: str
    user_id: int | None = None
    label: str = ""

    @property
    def name(self) -> str:
        """A short, PHI-free label for audit trails and `cancelled_by`."""
        if self.label:
            return self.label
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return self.source

    @classmethod
    def user(cls, user_id: int, source: str = Source.DASHBOARD) -> Actor:
        """A signed-in staff member."""
        return cls(source=source, user_id=user_id)

    @classmethod
    def agent(cls, call_id: int | None = None) -> Actor:
        """The phone agent, acting within one call."""
        return cls(source=Source.AGENT, label=f"agent:call:{call_id}" if call_id else "agent")

    @classmethod
    def cli(cls) -> Actor:
        """An operator at the command line."""
        return cls(source=Source.CLI, label="cli")

    @classmethod
    def system(cls) -> Actor:
        """The product itself (workers, seeding)."""
        return cls(source=Source.SYSTEM, label="system")


# Free text whose content stays out of the audit trail: it records that it changed, not how.
UNQUOTED_FIELDS = frozenset({"notes", "note", "decision_note", "reason"})


def plain(value: Any) -> Any:
    """A value as JSON can hold it: dates and times in ISO form, enums as their value."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    return value


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """`changes` for an audit event: {field: [old, new]} for each field of `after` whose value
    differs from `before`; free-text fields say only that they changed ({"notes": None})."""
    changed: dict[str, Any] = {}
    for name, new in after.items():
        old = before.get(name)
        if plain(old) == plain(new):
            continue
        changed[name] = None if name in UNQUOTED_FIELDS else [plain(old), plain(new)]
    return changed


def audit(
    session: Session,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: int | None,
    now: datetime,
    **details: Any,
) -> AuditEvent:
    """Record who did what to which record, and what changed (`changes`, from field_changes).

    `details` hold ids, codes and the old and new values of changed fields, never free-text
    notes or transcripts; details without a value (None) are left out.
    """
    event = AuditEvent(
        at=require_aware(now, "now"),
        actor_user_id=actor.user_id,
        actor=actor.name,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        source=actor.source,
        details={key: value for key, value in details.items() if value is not None},
    )
    session.add(event)
    return event


def get_or_raise(session: Session, model: type[ModelT], record_id: int, what: str) -> ModelT:
    """The row with that id, or NotFound naming what was looked for."""
    record = session.get(model, record_id)
    if record is None:
        raise NotFound(f"No {what} with id {record_id}.", field=f"{what.replace(' ', '_')}_id")
    return record


def normalise_phone(raw: str, field: str = "phone") -> str:
    """A phone number in E.164 (+15551234567), or a ValidationError."""
    text = (raw or "").strip()
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            "Enter the phone number in international form, e.g. +15551234567.", field=field
        ) from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValidationError("That phone number is not a possible number.", field=field)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_zone(name: str, field: str = "time_zone") -> str:
    """An IANA zone name that exists, or a ValidationError."""
    zone(name)
    return name


def check_name(value: str, field: str, label: str) -> str:
    """A trimmed, non-empty name of reasonable length."""
    text = (value or "").strip()
    if not text:
        raise ValidationError(f"{label} is required.", field=field)
    if len(text) > 100:
        raise ValidationError(f"{label} is too long (100 characters at most).", field=field)
    return text


EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(raw: str | None, field: str = "email", *, required: bool = False) -> str | None:
    """A lower-cased email address, None when empty and optional, or a ValidationError."""
    text = (raw or "").strip().lower()
    if not text:
        if required:
            raise ValidationError("An email address is required.", field=field)
        return None
    if len(text) > 254 or not EMAIL_PATTERN.match(text):
        raise ValidationError("That email address does not look right.", field=field)
    return text


MIN_PASSWORD_LENGTH = 10


def check_password(password: str) -> str:
    """A password long enough to resist guessing and short enough to hash quickly."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )
    if len(password) > 256:
        raise ValidationError("Passwords are at most 256 characters.", field="password")
    return password


def check_minutes(value: int, field: str, label: str, *, low: int, high: int) -> int:
    """An integer number of minutes within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{label} must be a whole number.", field=field)
    if not low <= value <= high:
        raise ValidationError(f"{label} must be between {low} and {high}.", field=field)
    return value
