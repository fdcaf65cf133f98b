"""Recurring visits as pure functions: a series rule expanded into occurrences, and each
occurrence judged by the same rules a single booking is (no session, no clock)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from core.errors import ValidationError
from core.scheduling import (
    WAIVABLE,
    Booking,
    NurseSchedule,
    Refusal,
    refusal_for,
    require_aware,
    waiving_notice_and_horizon,
    wall_time_exists,
    zone,
)

# A series is booked and checked as a whole: a year of visits at most, two a week on average.
MAX_WEEKS = 52
MAX_OCCURRENCES = 104
MAX_INTERVAL_WEEKS = 12
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class SeriesRule:
    """Every `interval_weeks` weeks on `weekdays` (0 = Monday) at `wall_time` in `time_zone`,
    from `first` (the first occurrence's local date) for `count` visits or until `until`."""

    first: date
    wall_time: time
    time_zone: str
    weekdays: frozenset[int]
    interval_weeks: int = 1
    count: int | None = None
    until: date | None = None

    @property
    def last_allowed(self) -> date:
        """The latest local date the horizon cap lets an occurrence fall on."""
        return self.first + timedelta(weeks=MAX_WEEKS) - timedelta(days=1)


@dataclass(frozen=True)
class Occurrence:
    """One visit of a series: its place in the rule, local date and UTC start.

    `exists` is False on the day a spring-forward change skips the wall-clock time: the visit
    is then refused rather than silently moved an hour (its `start` is where zoneinfo puts it).
    """

    index: int
    day: date
    start: datetime
    exists: bool = True


def check_rule(rule: SeriesRule) -> None:
    """Refuse a rule that cannot be expanded, naming the field to fix."""
    if not rule.weekdays or not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in rule.weekdays
    ):
        raise ValidationError("Choose at least one weekday.", field="weekdays")
    if rule.first.weekday() not in rule.weekdays:
        raise ValidationError(
            f"The first visit falls on a {WEEKDAY_NAMES[rule.first.weekday()]}, which is not one"
            " of the chosen weekdays: start on one of them.",
            field="start",
        )
    if not 1 <= rule.interval_weeks <= MAX_INTERVAL_WEEKS:
        raise ValidationError(
            f"Repeat every 1 to {MAX_INTERVAL_WEEKS} weeks.", field="interval_weeks"
        )
    if (rule.count is None) == (rule.until is None):
        raise ValidationError(
            "Say how many visits (count) or until which date (until), not both.", field="count"
        )
    if rule.count is not None and not 1 <= rule.count <= MAX_OCCURRENCES:
        raise ValidationError(f"A series has 1 to {MAX_OCCURRENCES} visits.", field="count")
    if rule.until is not None:
        if rule.until < rule.first:
            raise ValidationError("The last date is before the first visit.", field="until")
        if rule.until > rule.last_allowed:
            raise ValidationError(
                f"A series spans at most {MAX_WEEKS} weeks: end it by "
                f"{rule.last_allowed.isoformat()}.",
                field="until",
            )
    zone(rule.time_zone)


def occurrence_dates(rule: SeriesRule) -> list[date]:
    """The local dates of the rule's visits, in order, within its count, end and cap."""
    check_rule(rule)
    week_start = rule.first - timedelta(days=rule.first.weekday())
    days = sorted(rule.weekdays)
    last = min(rule.until or rule.last_allowed, rule.last_allowed)
    limit = rule.count if rule.count is not None else MAX_OCCURRENCES
    result: list[date] = []
    while week_start <= last and len(result) < limit:
        for weekday in days:
            day = week_start + timedelta(days=weekday)
            if rule.first <= day <= last and len(result) < limit:
                result.append(day)
        week_start += timedelta(weeks=rule.interval_weeks)
    return result


def expand(rule: SeriesRule) -> list[Occurrence]:
    """The rule's occurrences: each at the same wall-clock time on its local date, so a DST
    change keeps the visit at 10:00 local (its UTC instant moves instead)."""
    tz = zone(rule.time_zone)
    minute = rule.wall_time.hour * 60 + rule.wall_time.minute
    occurrences = []
    for index, day in enumerate(occurrence_dates(rule)):
        wall = datetime.combine(day, rule.wall_time, tzinfo=tz)  # fold=0: the first of two
        occurrences.append(
            Occurrence(index, day, wall.astimezone(UTC), wall_time_exists(day, minute, tz))
        )
    return occurrences


def check_occurrences(
    schedule: NurseSchedule,
    starts: Sequence[tuple[datetime, bool]],
    length: timedelta,
    now: datetime,
    waive: Collection[int] = (),
) -> tuple[list[Refusal | None], NurseSchedule, dict[int, Refusal]]:
    """Why each (start, wall time exists) cannot be booked, or None when it can, judged in
    order as if the free ones before it were booked (buffers and daily caps count them).
    Positions in `waive` are judged without minimum notice and the horizon.

    Returns the refusals, the schedule with the free ones added as bookings, and for each
    position booked only thanks to `waive`, the rule it waived.
    """
    now = require_aware(now, "now")
    refusals: list[Refusal | None] = []
    waived: dict[int, Refusal] = {}
    for position, (start, exists) in enumerate(starts):
        start = require_aware(start, "start")
        end = start + length
        refusal = Refusal.NO_SUCH_TIME if not exists else refusal_for(schedule, start, end, now)
        if refusal in WAIVABLE and position in waive:
            # As for a single booking: what else stands in the way is reported instead.
            rule = refusal
            refusal = refusal_for(waiving_notice_and_horizon(schedule, end, now), start, end, now)
            if refusal is None:
                waived[position] = rule
        refusals.append(refusal)
        if refusal is None:
            schedule = replace(schedule, bookings=(*schedule.bookings, Booking(start, end)))
    return refusals, schedule, waived
