"""Time-grid layout: rows of a day in one display zone, and where each block sits on them.

Pure: the caller passes the schedules, the visits and `now`; pages draw the result with CSS
grid classes. Rows are 15 real minutes each, labelled with the display zone's wall clock.

Clock changes: a row is a wall-clock time *and* which of two equal times it is (zoneinfo's
fold). On a fall-back day the repeated hour gets its own rows after the first one (labelled
with the zone's abbreviation), so a visit in the second 01:30 is drawn below the first, never
on top of it. On a spring-forward day the skipped wall times keep their rows (the other days
of the week have them) but are marked SKIPPED, and a visit across the gap spans them.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from core.scheduling import (
    MINUTES_PER_DAY,
    Interval,
    NurseSchedule,
    OverrideKind,
    free_intervals,
    local_dates,
    local_to_utc,
    merge,
    require_aware,
    working_intervals,
    zone,
)

ROW_MINUTES = 15
# Shown when nobody works earlier or later: a home-care day.
DEFAULT_FIRST_MINUTE = 7 * 60
DEFAULT_LAST_MINUTE = 19 * 60
# A day of 15-minute rows and a repeated hour: the CSS in static/app.css has a class for each.
MAX_ROWS = MINUTES_PER_DAY // ROW_MINUTES + 4
MAX_COLUMNS = 20


class RowState(StrEnum):
    """What a column's row shows under its visits, most telling first."""

    ABSENT = "absent"  # a wall time this day does not have (skipped, or repeated elsewhere)
    TIME_OFF = "time-off"
    EXTRA = "extra"  # extra hours
    WORKING = "working"  # weekly hours
    OFF = "off"  # outside hours


@dataclass(frozen=True, slots=True)
class GridVisit:
    """A visit to draw: its instants, status, and what the page shows on it (`payload`)."""

    id: int
    start: datetime
    end: datetime
    status: str
    payload: Any = None


@dataclass(frozen=True, slots=True)
class ColumnInput:
    """One column: a local day of one nurse (week view: seven of them; team board: one each)."""

    key: Any  # the day or the nurse, for the page's header
    day: date  # in the display zone
    schedule: NurseSchedule
    visits: Sequence[GridVisit] = ()


@dataclass(frozen=True, slots=True)
class Row:
    """A grid row: its wall-clock minute and fold, and its label ('' between hours)."""

    line: int  # the CSS grid line it starts on (line 1 is the header)
    minute: int
    fold: int
    label: str


@dataclass(frozen=True, slots=True)
class Band:
    """Consecutive rows of one state in a column (shading)."""

    column: int  # CSS grid column line (line 1 is the row labels)
    line: int
    span: int
    state: RowState


@dataclass(frozen=True, slots=True)
class FreeRow:
    """A row whose start is bookable for a visit of the nurse's usual length."""

    column: int
    line: int
    start: datetime  # UTC
    key: Any


@dataclass(frozen=True, slots=True)
class Block:
    """A visit placed on the grid; `clipped` when it runs past the grid's first or last row."""

    column: int
    line: int
    span: int
    visit: GridVisit
    clipped: bool


@dataclass
class Column:
    """A column's header data."""

    line: int
    key: Any
    day: date
    today: bool


@dataclass
class Grid:
    """Everything a page draws: rows, columns, shading, free rows, visits and the now line."""

    time_zone: str
    rows: list[Row]
    columns: list[Column]
    bands: list[Band] = field(default_factory=list)
    free: list[FreeRow] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    now_line: tuple[int, int, int] | None = None  # grid line, first column, column count

    @property
    def last_line(self) -> int:
        """The grid line after the last row."""
        return len(self.rows) + 2


def _instant(day: date, minute: int, fold: int, tz: ZoneInfo) -> datetime | None:
    """The UTC instant of a wall time and fold on `day`, None when the day has no such time."""
    wall = datetime(day.year, day.month, day.day, minute // 60, minute % 60, fold=fold)
    instant = wall.replace(tzinfo=tz).astimezone(UTC)
    back = instant.astimezone(tz)
    if back.replace(tzinfo=None) != wall or back.fold != fold:
        return None
    return instant


def _repeated_minutes(day: date, tz: ZoneInfo) -> list[int]:
    """Row minutes that happen twice on `day` (the clocks go back), in order."""
    start, end = _day_bounds(day, tz)
    # Most days keep one offset from midnight to midnight: no need to look at every row.
    if start.astimezone(tz).utcoffset() == end.astimezone(tz).utcoffset():
        return []
    return [
        m
        for m in range(0, MINUTES_PER_DAY, ROW_MINUTES)
        if _instant(day, m, 1, tz) is not None and _instant(day, m, 0, tz) is not None
    ]


def _wall_minute(instant: datetime, day: date, tz: ZoneInfo) -> int:
    """Minutes since `day`'s local midnight on the wall clock, clamped to the day."""
    local = instant.astimezone(tz)
    if local.date() < day:
        return 0
    if local.date() > day:
        return MINUTES_PER_DAY
    return local.hour * 60 + local.minute


def _row_range(
    columns: Sequence[ColumnInput], hours: Sequence[list[Interval]], tz: ZoneInfo
) -> tuple[int, int]:
    """First and last wall minute shown: 07:00-19:00 widened to whole hours fitting every
    column's hours and visits."""
    first, last = DEFAULT_FIRST_MINUTE, DEFAULT_LAST_MINUTE
    for column, working in zip(columns, hours, strict=True):
        start, end = _day_bounds(column.day, tz)
        spans = [*working, *((v.start, v.end) for v in column.visits)]
        for low, high in spans:
            if high <= start or low >= end:
                continue
            first = min(first, _wall_minute(max(low, start), column.day, tz))
            last = max(last, _wall_minute(min(high, end), column.day, tz) or MINUTES_PER_DAY)
    first -= first % 60
    last = min(MINUTES_PER_DAY, last + (-last) % 60)
    return first, last


def _day_bounds(day: date, tz: ZoneInfo) -> Interval:
    return local_to_utc(day, 0, tz), local_to_utc(day, MINUTES_PER_DAY, tz)


def _keys(
    columns: Sequence[ColumnInput], tz: ZoneInfo, first: int, last: int
) -> list[tuple[int, int]]:
    """(minute, fold) of every row: the range's wall times, with a repeated hour's second
    occurrence right after its first."""
    repeated = sorted(
        {m for c in columns for m in _repeated_minutes(c.day, tz) if first <= m < last}
    )
    keys: list[tuple[int, int]] = []
    for minute in range(first, last, ROW_MINUTES):
        keys.append((minute, 0))
        if repeated and minute == repeated[-1]:
            keys.extend((m, 1) for m in repeated)
    return keys


def _label(minute: int, sample: datetime | None, repeated: bool, tz: ZoneInfo) -> str:
    """'07:00' on the hour; in a repeated hour also which one ('01:00 EDT', '01:00 EST')."""
    if minute % 60:
        return ""
    text = f"{minute // 60:02d}:00"
    if repeated and sample is not None:
        text += f" {sample.astimezone(tz).tzname()}"
    return text


def _row_instants(
    day: date, keys: Sequence[tuple[int, int]], tz: ZoneInfo, last: int
) -> tuple[list[datetime], list[bool]]:
    """Each row's start instant on `day` (a row the day lacks takes the next row's, so the
    list never goes down), whether the day has it, and the end of the last row at the end."""
    found = [_instant(day, m, f, tz) for m, f in keys]
    end = local_to_utc(day, last, tz)
    instants: list[datetime] = [end] * (len(keys) + 1)
    following = end
    for index in range(len(keys) - 1, -1, -1):
        here = found[index]
        if here is not None:
            following = here
        instants[index] = following
    return instants, [f is not None for f in found]


def _holding(intervals: Sequence[Interval], instants: Sequence[datetime]) -> list[Interval | None]:
    """For each of the ascending `instants`, the interval of the sorted, merged `intervals`
    holding it, or None: one walk over both lists."""
    if not intervals:
        return [None] * len(instants)
    found: list[Interval | None] = []
    index, count = 0, len(intervals)
    for instant in instants:
        while index < count and intervals[index][1] <= instant:
            index += 1
        inside = index < count and intervals[index][0] <= instant
        found.append(intervals[index] if inside else None)
    return found


def _override_intervals(
    schedule: NurseSchedule, kind: str, low: datetime, high: datetime
) -> list[Interval]:
    """Time off or extra hours as UTC intervals touching [low, high), in the nurse's zone."""
    tz = schedule.tz
    spans = []
    for day in local_dates(low, high, tz):
        for override in schedule.overrides:
            if override.kind == kind and override.covers(day):
                start, end = override.minutes()
                spans.append((local_to_utc(day, start, tz), local_to_utc(day, end, tz)))
    return merge(spans)


def layout(columns: Sequence[ColumnInput], time_zone: str, now: datetime) -> Grid:
    """The grid of `columns` in `time_zone` at `now` (today marked, the now line drawn)."""
    if len(columns) > MAX_COLUMNS:
        raise ValueError(f"A grid shows at most {MAX_COLUMNS} columns.")
    now = require_aware(now, "now")
    tz = zone(time_zone)
    # Each column's hours (extra hours in, time off not taken out) over its whole day.
    hours = [
        working_intervals(c.schedule, *_day_bounds(c.day, tz), with_time_off=False) for c in columns
    ]
    first, last = _row_range(columns, hours, tz)
    keys = _keys(columns, tz, first, last)
    today = now.astimezone(tz).date()
    # Labels of a repeated hour name their offset as on the (one) day that repeats it.
    folded = [c.day for c in columns if _repeated_minutes(c.day, tz)]
    repeated = {m for m, f in keys if f}
    label_day = folded[0] if folded else today
    rows = [
        Row(index + 2, m, f, _label(m, _instant(label_day, m, f, tz), m in repeated, tz))
        for index, (m, f) in enumerate(keys)
    ]
    grid = Grid(time_zone=time_zone, rows=rows, columns=[])
    # A team board's columns share one day: its rows' instants are worked out once.
    instants = {day: _row_instants(day, keys, tz, last) for day in {c.day for c in columns}}
    for number, (column, working) in enumerate(zip(columns, hours, strict=True)):
        line = number + 2
        grid.columns.append(Column(line, column.key, column.day, column.day == today))
        _fill_column(grid, column, line, instants[column.day], working, tz, now)
    return grid


def _fill_column(
    grid: Grid,
    column: ColumnInput,
    line: int,
    rows: tuple[list[datetime], list[bool]],
    hours: list[Interval],
    tz: ZoneInfo,
    now: datetime,
) -> None:
    instants, exists = rows
    low, high = instants[0], instants[-1]
    schedule = column.schedule
    time_off = _override_intervals(schedule, OverrideKind.TIME_OFF, low, high)
    extra = _override_intervals(schedule, OverrideKind.EXTRA_HOURS, low, high)
    free = merge(free_intervals(schedule, low, high, now)) if high > low else []
    length = timedelta(minutes=schedule.visit_minutes)
    starts = instants[:-1]
    off, more, working = (_holding(spans, starts) for spans in (time_off, extra, hours))
    states: list[RowState] = []
    for index, room in enumerate(_holding(free, starts)):
        if not exists[index]:
            states.append(RowState.ABSENT)
            continue
        if off[index]:
            states.append(RowState.TIME_OFF)
        elif more[index]:
            states.append(RowState.EXTRA)
        elif working[index]:
            states.append(RowState.WORKING)
        else:
            states.append(RowState.OFF)
        if room is not None and starts[index] + length <= room[1]:
            grid.free.append(FreeRow(line, index + 2, starts[index], column.key))
    run_start = 0
    for index in range(1, len(states) + 1):
        if index == len(states) or states[index] != states[run_start]:
            grid.bands.append(Band(line, run_start + 2, index - run_start, states[run_start]))
            run_start = index
    for visit in sorted(column.visits, key=lambda v: (v.start, v.id)):
        if visit.end <= low or visit.start >= high:
            continue
        top = max(bisect.bisect_right(instants, visit.start) - 1, 0)
        bottom = min(bisect.bisect_left(instants, visit.end), len(exists))
        grid.blocks.append(
            Block(
                column=line,
                line=top + 2,
                span=max(bottom - top, 1),
                visit=visit,
                clipped=visit.start < low or visit.end > high,
            )
        )
    if column.day == now.astimezone(tz).date() and low <= now < high:
        row = bisect.bisect_right(instants, now) - 1
        if grid.now_line is None:
            grid.now_line = (row + 2, line, 1)
        else:
            grid.now_line = (grid.now_line[0], grid.now_line[1], line - grid.now_line[1] + 1)
