"""Who gets freed time: the first in line whose window and nurses fit it (pure, `now` given)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from core.errors import Slot
from core.models import PartOfDay
from core.scheduling import Interval, require_aware, zone


@dataclass(frozen=True)
class Cover:
    """A nurse the patient may be booked with, and the dates her assignment covers."""

    nurse_id: int
    valid_from: date
    valid_to: date | None = None

    def covers(self, nurse_id: int, day: date) -> bool:
        """Whether this is that nurse and her assignment covers `day`."""
        return (
            nurse_id == self.nurse_id
            and self.valid_from <= day
            and (self.valid_to is None or day <= self.valid_to)
        )


@dataclass(frozen=True)
class Waiting:
    """A waiting patient as the choice sees them: when they joined, which nurses may see them,
    the window they can take (in their own zone) and the times they already passed over."""

    entry_id: int
    joined_at: datetime
    nurses: tuple[Cover, ...]
    time_zone: str
    from_date: date
    until_date: date
    weekdays: frozenset[int] = frozenset()  # empty: any day
    parts: frozenset[PartOfDay] = frozenset()  # empty: any time of day
    passed: tuple[tuple[int, datetime, datetime], ...] = ()  # (nurse, start, end) let go
    before: datetime | None = None  # bringing a visit earlier: only times starting before it

    def fits(self, slot: Slot) -> bool:
        """Whether the patient would take `slot`: their nurse, their days and hours."""
        if self.before is not None and slot.start >= self.before:
            return False
        local = slot.start.astimezone(zone(self.time_zone))
        if not any(cover.covers(slot.nurse_id, local.date()) for cover in self.nurses):
            return False
        if not self.from_date <= local.date() <= self.until_date:
            return False
        if self.weekdays and local.weekday() not in self.weekdays:
            return False
        if self.parts and not any(p.hours[0] <= local.hour < p.hours[1] for p in self.parts):
            return False
        return not any(
            nurse == slot.nurse_id and overlaps((start, end), (slot.start, slot.end))
            for nurse, start, end in self.passed
        )


def overlaps(a: Interval, b: Interval) -> bool:
    """Whether two half-open intervals share any instant."""
    return a[0] < b[1] and b[0] < a[1]


def choose(
    waiting: Sequence[Waiting], slots: Sequence[Slot], now: datetime
) -> tuple[Waiting, Slot] | None:
    """The earliest-joined patient who fits one of `slots` (future ones only), with the
    earliest slot they fit; None when nobody does."""
    now = require_aware(now, "now")
    future = sorted((s for s in slots if s.start > now), key=lambda s: (s.start, s.nurse_id))
    for candidate in sorted(waiting, key=lambda w: (w.joined_at, w.entry_id)):
        for slot in future:
            if candidate.fits(slot):
                return candidate, slot
    return None
