"""Domain errors: each carries a message a coordinator (or the phone agent) can act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class DomainError(Exception):
    """Base class: `code` is stable for programs, `message` is for people."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the error."""
        payload: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            payload["field"] = self.field
        payload.update(self.details)
        return payload


class ValidationError(DomainError):
    """The input itself is wrong (naive time, end before start, unknown zone...)."""

    code = "invalid"


class NoSuchTime(ValidationError):
    """A wall-clock time the clocks skip that day; `nearest` are existing times either side."""

    def __init__(self, message: str, *, nearest: list[datetime], field: str = "start") -> None:
        super().__init__(message, field=field, nearest=[instant.isoformat() for instant in nearest])
        self.nearest = nearest


class NotFound(DomainError):
    """The record does not exist (or is not visible to the caller)."""

    code = "not_found"


class NotAssigned(DomainError):
    """The nurse is not (or no longer) assigned to the patient."""

    code = "not_assigned"


class InvalidState(DomainError):
    """The change does not apply to the record in its current state (e.g. already cancelled)."""

    code = "invalid_state"


@dataclass(frozen=True)
class Slot:
    """A bookable start and end (UTC instants) for a nurse."""

    nurse_id: int
    start: datetime
    end: datetime


class SlotUnavailable(DomainError):
    """The asked time cannot be booked; `alternatives` are bookable slots nearest to it."""

    code = "slot_unavailable"

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        alternatives: list[Slot] | None = None,
        escalate: bool = False,
    ) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason
        self.alternatives = alternatives or []
        self.escalate = escalate

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the alternatives as ISO 8601 instants."""
        payload = super().to_dict()
        payload["alternatives"] = [
            {"nurse_id": s.nurse_id, "start": s.start.isoformat(), "end": s.end.isoformat()}
            for s in self.alternatives
        ]
        payload["escalate"] = self.escalate
        return payload


@dataclass
class OverrideCollision:
    """An appointment that an added time-off override now covers."""

    appointment_id: int
    start: datetime
    end: datetime
    extra: dict[str, Any] = field(default_factory=dict)
