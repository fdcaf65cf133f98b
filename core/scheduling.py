"""The scheduling rules as pure functions over plain values: no session, no clock.

Every entry point decides "is this free?" with `free_intervals`, both when listing slots and
when booking, so what is offered is exactly what can be booked.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import NoSuchTime, ValidationError

Interval = tuple[datetime, datetime]
"""A half-open [start, end) pair of aware UTC instants."""

MINUTES_PER_DAY = 24 * 60
MIDNIGHT = time(0, 0)


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`, or a ValidationError a coordinator can read."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        # OSError: a name too long for a file name. Such a name is not repeated back.
        shown = f" {name!r}" if isinstance(name, str) and len(name) <= 64 else ""
        raise ValidationError(
            f"Unknown time zone{shown}: use an IANA name such as 'America/New_York'.",
            field="time_zone",
        ) from exc


def require_aware(value: datetime, field_name: str = "start") -> datetime:
    """Return `value` in UTC, refusing naive datetimes (their meaning depends on a zone)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"The time for {field_name} has no time zone; give an offset or a zone.",
            field=field_name,
        )
    return value.astimezone(UTC)


def local_to_utc(day: date, minute_of_day: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock minute on a local date.

    Minute 1440 is the next midnight. A wall time skipped by a spring-forward change resolves
    forward and a repeated one takes its first occurrence (both are zoneinfo's fold=0).
    """
    day = day + timedelta(days=minute_of_day // MINUTES_PER_DAY)
    minute_of_day %= MINUTES_PER_DAY
    wall = datetime(
        day.year, day.month, day.day, minute_of_day // 60, minute_of_day % 60, tzinfo=tz
    )
    return wall.astimezone(UTC)


def wall_time_exists(day: date, minute_of_day: int, tz: ZoneInfo) -> bool:
    """False for wall times skipped by a spring-forward change."""
    instant = local_to_utc(day, minute_of_day, tz)
    back = instant.astimezone(tz)
    return back.date() == day and back.hour * 60 + back.minute == minute_of_day


# Times offered instead of a skipped one fall on this grid, as booking forms and slots do.
NEAREST_STEP_MINUTES = 15


@dataclass(frozen=True)
class SkippedTime:
    """A wall-clock time the clocks skip on a local date, with the nearest times that exist."""

    day: date
    minute: int
    time_zone: str
    nearest: tuple[datetime, ...]  # aware, in the zone: the last before and the first after

    def message(self) -> str:
        """What to tell a person: the time does not exist, and which ones do."""
        asked = f"{self.minute // 60:02d}:{self.minute % 60:02d}"
        said = f"{asked} does not exist on {self.day:%a %-d %b %Y} in {self.time_zone}"
        if not self.nearest:
            return f"{said}: the clocks skip that whole day."
        offered = " or ".join(f"{instant:%H:%M}" for instant in self.nearest)
        return f"{said}: the clocks go forward then. Choose {offered} instead."

    def error(self, field: str = "start") -> NoSuchTime:
        """The refusal to raise, carrying the nearest existing times."""
        return NoSuchTime(self.message(), nearest=list(self.nearest), field=field)


def skipped_time(
    day: date, minute: int, tz: ZoneInfo, step: int = NEAREST_STEP_MINUTES
) -> SkippedTime | None:
    """None when the wall time exists that day, else it with the nearest existing times on the
    `step` grid: the last before the gap and the first after it."""
    if wall_time_exists(day, minute, tz):
        return None
    before = next(
        (m for m in range(minute - minute % step, -1, -step) if wall_time_exists(day, m, tz)),
        None,
    )
    after = next(
        (
            m
            for m in range(minute - minute % step + step, MINUTES_PER_DAY, step)
            if wall_time_exists(day, m, tz)
        ),
        None,
    )
    nearest = tuple(
        local_to_utc(day, m, tz).astimezone(tz) for m in (before, after) if m is not None
    )
    return SkippedTime(day, minute, tz.key, nearest)


def repeated_time(day: date, minute: int, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """Both instants of a wall time the clocks show twice (fall back), first one first."""
    wall = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
    first, second = wall, wall.replace(fold=1)
    if first.utcoffset() == second.utcoffset():
        return None
    return first.astimezone(tz), second.astimezone(tz)


def written_in_gap(written: datetime, tz: ZoneInfo) -> SkippedTime | None:
    """The skipped time a client meant, when `written` carries one of the two offsets `tz` uses
    around a spring-forward gap and its wall-clock reading falls inside that gap (an offset
    worked out from the zone for a local time that does not exist); else None."""
    if written.tzinfo is None:
        return None
    minute = written.hour * 60 + written.minute
    wall = written.replace(tzinfo=tz)
    offsets = {wall.utcoffset(), wall.replace(fold=1).utcoffset()}
    if written.utcoffset() not in offsets:
        return None
    return skipped_time(written.date(), minute, tz)


def _minutes(value: time) -> int:
    return value.hour * 60 + value.minute


def window_minutes(start: time, end: time) -> tuple[int, int]:
    """A wall-clock window as minutes of the day; an end of 00:00 means midnight (1440)."""
    begin = _minutes(start)
    finish = MINUTES_PER_DAY if end == MIDNIGHT else _minutes(end)
    return begin, finish


class OverrideKind(StrEnum):
    TIME_OFF = "time_off"
    EXTRA_HOURS = "extra_hours"


@dataclass(frozen=True)
class WeeklyRule:
    """Working hours on one weekday (0 = Monday), wall-clock in the nurse's zone."""

    weekday: int
    start: time
    end: time
    valid_from: date | None = None
    valid_to: date | None = None

    def applies_on(self, day: date) -> bool:
        """Whether this rule gives hours on the local date `day`."""
        return (
            day.weekday() == self.weekday
            and (self.valid_from is None or self.valid_from <= day)
            and (self.valid_to is None or day <= self.valid_to)
        )


@dataclass(frozen=True)
class DateOverride:
    """Time off or extra hours on local dates; all day when no times are given."""

    kind: str
    start_date: date
    end_date: date
    start_time: time | None = None
    end_time: time | None = None

    def covers(self, day: date) -> bool:
        """Whether the override applies on the local date `day`."""
        return self.start_date <= day <= self.end_date

    def minutes(self) -> tuple[int, int]:
        """The affected part of each covered day, as minutes."""
        if self.start_time is None or self.end_time is None:
            return 0, MINUTES_PER_DAY
        return window_minutes(self.start_time, self.end_time)


@dataclass(frozen=True)
class Booking:
    """An appointment that blocks time (status scheduled)."""

    start: datetime
    end: datetime
    id: int | None = None


@dataclass(frozen=True)
class NurseSchedule:
    """Everything the rules need to know about one nurse's time."""

    time_zone: str
    rules: tuple[WeeklyRule, ...] = ()
    overrides: tuple[DateOverride, ...] = ()
    bookings: tuple[Booking, ...] = ()
    visit_minutes: int = 30
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 0
    horizon_days: int = 60
    daily_cap: int | None = None
    slot_step_minutes: int = 15

    @property
    def tz(self) -> ZoneInfo:
        """The nurse's zone."""
        return zone(self.time_zone)


# ---------------------------------------------------------------- interval arithmetic


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort and merge overlapping or touching intervals."""
    result: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if result and start <= result[-1][1]:
            if end > result[-1][1]:
                result[-1] = (result[-1][0], end)
        else:
            result.append((start, end))
    return result


def subtract(base: Sequence[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """`base` minus every hole, in one sweep over both sorted, merged lists."""
    result: list[Interval] = []
    hole_list = merge(holes)
    first_hole = 0
    for start, end in merge(base):
        # Holes wholly before this interval can never matter again.
        while first_hole < len(hole_list) and hole_list[first_hole][1] <= start:
            first_hole += 1
        cursor = start
        index = first_hole
        while index < len(hole_list) and hole_list[index][0] < end:
            hole_start, hole_end = hole_list[index]
            if hole_start > cursor:
                result.append((cursor, hole_start))
            cursor = max(cursor, hole_end)
            index += 1
        if cursor < end:
            result.append((cursor, end))
    return result


def clip(intervals: Iterable[Interval], start: datetime, end: datetime) -> list[Interval]:
    """Intervals cut to [start, end)."""
    return [(max(s, start), min(e, end)) for s, e in intervals if s < end and e > start]


def _merge_minutes(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    result: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[0] < r[1]):
        if result and start <= result[-1][1]:
            result[-1] = (result[-1][0], max(end, result[-1][1]))
        else:
            result.append((start, end))
    return result


def _subtract_minutes(
    base: list[tuple[int, int]], holes: Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    result = base
    for hole_start, hole_end in _merge_minutes(holes):
        next_result = []
        for start, end in result:
            if hole_end <= start or end <= hole_start:
                next_result.append((start, end))
                continue
            if start < hole_start:
                next_result.append((start, hole_start))
            if hole_end < end:
                next_result.append((hole_end, end))
        result = next_result
    return result


# ---------------------------------------------------------------- the rules


def local_dates(start: datetime, end: datetime, tz: ZoneInfo) -> list[date]:
    """Every local date touched by [start, end), widened by a day each side."""
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def daily_minutes(
    schedule: NurseSchedule, day: date, *, with_time_off: bool = True
) -> list[tuple[int, int]]:
    """Working minutes of one local date: weekly windows plus extra hours, minus time off."""
    windows = [window_minutes(r.start, r.end) for r in schedule.rules if r.applies_on(day)]
    windows += [
        o.minutes()
        for o in schedule.overrides
        if o.kind == OverrideKind.EXTRA_HOURS and o.covers(day)
    ]
    merged = _merge_minutes(windows)
    if not with_time_off:
        return merged
    time_off = [
        o.minutes() for o in schedule.overrides if o.kind == OverrideKind.TIME_OFF and o.covers(day)
    ]
    return _subtract_minutes(merged, time_off)


def working_intervals(
    schedule: NurseSchedule, start: datetime, end: datetime, *, with_time_off: bool = True
) -> list[Interval]:
    """Working time as UTC intervals within [start, end), before appointments are removed."""
    tz = schedule.tz
    intervals = [
        (local_to_utc(day, s, tz), local_to_utc(day, e, tz))
        for day in local_dates(start, end, tz)
        for s, e in daily_minutes(schedule, day, with_time_off=with_time_off)
    ]
    return clip(merge(intervals), start, end)


def blocked_intervals(
    schedule: NurseSchedule, ignore_booking_id: int | None = None
) -> list[Interval]:
    """Time a new visit may not overlap: each booking widened by both buffers on each side.

    Every visit owns [start - before, end + after); two visits conflict when those spans
    overlap, which is the same as the new visit overlapping the booking widened by
    before + after on both sides.
    """
    pad = timedelta(minutes=schedule.buffer_before_minutes + schedule.buffer_after_minutes)
    return merge(
        (b.start - pad, b.end + pad)
        for b in schedule.bookings
        if ignore_booking_id is None or b.id != ignore_booking_id
    )


def capped_days(schedule: NurseSchedule, ignore_booking_id: int | None = None) -> set[date]:
    """Local dates whose bookings already reach the daily cap."""
    if schedule.daily_cap is None:
        return set()
    tz = schedule.tz
    counts = Counter(
        b.start.astimezone(tz).date()
        for b in schedule.bookings
        if ignore_booking_id is None or b.id != ignore_booking_id
    )
    return {day for day, count in counts.items() if count >= schedule.daily_cap}


def bookable_window(schedule: NurseSchedule, now: datetime) -> Interval:
    """[now + minimum notice, now + horizon): when visits may happen at all."""
    now = require_aware(now, "now")
    return (
        now + timedelta(minutes=schedule.min_notice_minutes),
        now + timedelta(days=schedule.horizon_days),
    )


def _day_interval(day: date, tz: ZoneInfo) -> Interval:
    return local_to_utc(day, 0, tz), local_to_utc(day, MINUTES_PER_DAY, tz)


def free_intervals(
    schedule: NurseSchedule,
    start: datetime,
    end: datetime,
    now: datetime,
    ignore_booking_id: int | None = None,
) -> list[Interval]:
    """Bookable time within [start, end): the one function listing and booking both use."""
    start, end = require_aware(start, "start"), require_aware(end, "end")
    earliest, latest = bookable_window(schedule, now)
    lower, upper = max(start, earliest), min(end, latest)
    if lower >= upper:
        return []
    free = working_intervals(schedule, lower, upper)
    free = subtract(free, blocked_intervals(schedule, ignore_booking_id))
    full_days = capped_days(schedule, ignore_booking_id)
    if full_days:
        free = subtract(free, (_day_interval(day, schedule.tz) for day in full_days))
    return free


def works_throughout(schedule: NurseSchedule, start: datetime, end: datetime) -> bool:
    """Whether the nurse's hours (weekly and extra, time off aside) cover [start, end)."""
    return _covering(working_intervals(schedule, start, end, with_time_off=False), start, end)


def _covering(free: Sequence[Interval], start: datetime, end: datetime) -> bool:
    """Whether one interval of the sorted, merged `free` contains [start, end)."""
    index = bisect.bisect_right(free, (start, datetime.max.replace(tzinfo=UTC))) - 1
    return index >= 0 and free[index][0] <= start and end <= free[index][1]


def slot_starts(
    schedule: NurseSchedule,
    start: datetime,
    end: datetime,
    now: datetime,
    duration_minutes: int | None = None,
    ignore_booking_id: int | None = None,
) -> list[datetime]:
    """Bookable visit starts on the nurse's local grid (e.g. :00, :15, :30, :45) in [start, end).

    Grid points are wall-clock times, so a slot stays at 10:00 local across DST changes, a
    skipped wall time yields no slot and a repeated hour yields each wall time once.
    """
    start, end = require_aware(start, "start"), require_aware(end, "end")
    length = timedelta(
        minutes=schedule.visit_minutes if duration_minutes is None else duration_minutes
    )
    if length <= timedelta(0):
        raise ValidationError("A visit must last at least one minute.", field="duration_minutes")
    free = free_intervals(schedule, start, end + length, now, ignore_booking_id)
    if not free:
        return []
    tz = schedule.tz
    step = schedule.slot_step_minutes
    result: list[datetime] = []
    for interval_start, interval_end in free:
        local = interval_start.astimezone(tz)
        day = local.date()
        minute = local.hour * 60 + local.minute + (1 if local.second or local.microsecond else 0)
        minute = -(-minute // step) * step  # first grid point at or after the interval start
        while True:  # walk the wall-clock grid until a visit no longer fits the interval
            if minute >= MINUTES_PER_DAY:
                day, minute = day + timedelta(days=1), 0
            if not wall_time_exists(day, minute, tz):
                minute += step
                continue
            slot = local_to_utc(day, minute, tz)
            if slot + length > interval_end:
                break
            if slot >= interval_start and start <= slot < end:
                result.append(slot)
            minute += step
    result.sort()
    return result


class Refusal(StrEnum):
    """Why an asked time cannot be booked."""

    IN_THE_PAST = "in_the_past"
    TOO_SOON = "too_soon"
    BEYOND_HORIZON = "beyond_horizon"
    OUTSIDE_HOURS = "outside_hours"
    TIME_OFF = "time_off"
    DAILY_CAP = "daily_cap"
    CONFLICT = "conflict"
    # A wall-clock time the clocks skip that day (spring forward): refused, never moved.
    NO_SUCH_TIME = "no_such_time"


REFUSAL_MESSAGES = {
    Refusal.IN_THE_PAST: "That time is in the past.",
    Refusal.TOO_SOON: "That time is sooner than the nurse's minimum notice allows.",
    Refusal.BEYOND_HORIZON: "That time is further ahead than bookings are open.",
    Refusal.OUTSIDE_HOURS: "The nurse is not working at that time.",
    Refusal.TIME_OFF: "The nurse has time off then.",
    Refusal.DAILY_CAP: "The nurse's day is already fully booked.",
    Refusal.CONFLICT: "That time is already taken.",
    Refusal.NO_SUCH_TIME: "The clocks go forward that day, so that time does not exist.",
}


# The rules a coordinator may waive for one booking, with a reason: they protect the nurse's
# planning, not the visit itself. Hours, time off, caps and other visits are never waived.
WAIVABLE = frozenset({Refusal.TOO_SOON, Refusal.BEYOND_HORIZON})


def waiving_notice_and_horizon(
    schedule: NurseSchedule, end: datetime, now: datetime
) -> NurseSchedule:
    """The schedule with no minimum notice and a horizon reaching `end` (past times stay past)."""
    days = (require_aware(end, "end") - require_aware(now, "now")).days + 1
    return replace(schedule, min_notice_minutes=0, horizon_days=max(schedule.horizon_days, days))


def refusal_for(
    schedule: NurseSchedule,
    start: datetime,
    end: datetime,
    now: datetime,
    ignore_booking_id: int | None = None,
) -> Refusal | None:
    """None when [start, end) can be booked, otherwise the first reason it cannot.

    The decision itself is `free_intervals`; the rest only names the reason.
    """
    start, end = require_aware(start, "start"), require_aware(end, "end")
    if end <= start:
        raise ValidationError("The end must be after the start.", field="end")
    free = free_intervals(schedule, start, end, now, ignore_booking_id)
    if _covering(free, start, end):
        return None
    now = require_aware(now, "now")
    earliest, latest = bookable_window(schedule, now)
    if start < now:
        return Refusal.IN_THE_PAST
    if start < earliest:
        return Refusal.TOO_SOON
    if end > latest:
        return Refusal.BEYOND_HORIZON
    if not _covering(working_intervals(schedule, start, end, with_time_off=False), start, end):
        return Refusal.OUTSIDE_HOURS
    if not _covering(working_intervals(schedule, start, end), start, end):
        return Refusal.TIME_OFF
    if start.astimezone(schedule.tz).date() in capped_days(schedule, ignore_booking_id):
        return Refusal.DAILY_CAP
    return Refusal.CONFLICT


# ---------------------------------------------------------------- alternatives


class PartOfDay(StrEnum):
    MORNING = "morning"
    AFTERNOON = "afternoon"
    EVENING = "evening"


PART_OF_DAY_HOURS = {
    PartOfDay.MORNING: (0, 12),
    PartOfDay.AFTERNOON: (12, 17),
    PartOfDay.EVENING: (17, 24),
}


@dataclass(frozen=True)
class Preferences:
    """What the patient said they prefer, judged in the patient's own zone."""

    time_zone: str | None = None
    weekdays: frozenset[int] = field(default_factory=frozenset)
    part_of_day: str | None = None
    on_date: date | None = None

    def accepts(self, instant: datetime) -> bool:
        """Whether a slot starting at `instant` fits these preferences."""
        local = instant.astimezone(zone(self.time_zone)) if self.time_zone else instant
        if self.on_date is not None and local.date() != self.on_date:
            return False
        if self.weekdays and local.weekday() not in self.weekdays:
            return False
        if self.part_of_day:
            if self.part_of_day not in PART_OF_DAY_HOURS:
                raise ValidationError(
                    "Part of day must be morning, afternoon or evening.", field="part_of_day"
                )
            first, last = PART_OF_DAY_HOURS[PartOfDay(self.part_of_day)]
            if not first <= local.hour < last:
                return False
        return True


def spread_nearest(
    candidates: Sequence[datetime],
    asked: datetime,
    *,
    limit: int = 3,
    min_gap: timedelta = timedelta(minutes=90),
) -> list[datetime]:
    """Up to `limit` candidates nearest to `asked`, no two closer than `min_gap`, in time order."""
    chosen: list[datetime] = []
    for candidate in sorted(candidates, key=lambda c: (abs(c - asked), c)):
        if all(abs(candidate - other) >= min_gap for other in chosen):
            chosen.append(candidate)
            if len(chosen) == limit:
                break
    return sorted(chosen)


# Alternatives are searched within a day of the asked time, then a week, then the whole
# bookable window: the nearest free times are usually close, and walking every slot of a
# 60-day horizon costs milliseconds on every refused request.
ALTERNATIVE_SEARCH_DAYS = (1, 7)


def alternatives(
    schedule: NurseSchedule,
    asked: datetime,
    now: datetime,
    *,
    duration_minutes: int | None = None,
    preferences: Preferences | None = None,
    limit: int = 3,
    ignore_booking_id: int | None = None,
) -> list[datetime]:
    """Bookable starts nearest to `asked`, spread out, within the patient's preferences.

    The answer is the one a search of the whole bookable window gives: a narrower window is
    trusted only when every pick lies strictly inside it, so no nearer candidate was missed.
    """
    asked = require_aware(asked, "start")
    earliest, latest = bookable_window(schedule, now)
    length = schedule.visit_minutes if duration_minutes is None else duration_minutes
    min_gap = timedelta(minutes=max(90, 2 * length))

    def nearest(low: datetime, high: datetime) -> list[datetime]:
        candidates = (
            slot_starts(schedule, low, high, now, duration_minutes, ignore_booking_id)
            if low < high
            else []
        )
        if preferences is not None:
            candidates = [c for c in candidates if preferences.accepts(c)]
        return spread_nearest(candidates, asked, limit=limit, min_gap=min_gap)

    for days in ALTERNATIVE_SEARCH_DAYS:
        radius = timedelta(days=days)
        low, high = max(earliest, asked - radius), min(latest, asked + radius)
        chosen = nearest(low, high)
        if (low, high) == (earliest, latest):
            return chosen  # this window already is the whole bookable window
        if len(chosen) == limit and all(abs(c - asked) < radius for c in chosen):
            return chosen
    return nearest(earliest, latest)
