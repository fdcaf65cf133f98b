"""The time-grid layout: rows, shading, free rows, visit blocks, today, and clock changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from core.grid import (
    MAX_ROWS,
    ColumnInput,
    Grid,
    GridVisit,
    RowState,
    layout,
)
from core.scheduling import Booking, DateOverride, NurseSchedule, OverrideKind, WeeklyRule, zone

NY = "America/New_York"
MONDAY = date(2026, 6, 15)


def _schedule(
    *rules: WeeklyRule, overrides: tuple[DateOverride, ...] = (), tz: str = NY
) -> NurseSchedule:
    return NurseSchedule(time_zone=tz, rules=rules, overrides=overrides, min_notice_minutes=0)


def _at(day: date, hour: int, minute: int = 0, tz: str = NY, fold: int = 0) -> datetime:
    wall = datetime(day.year, day.month, day.day, hour, minute, fold=fold, tzinfo=zone(tz))
    return wall.astimezone(UTC)


def _visit(
    visit_id: int, start: datetime, minutes: int = 30, status: str = "scheduled"
) -> GridVisit:
    return GridVisit(visit_id, start, start + timedelta(minutes=minutes), status)


def _line(grid: Grid, label: str) -> int:
    return next(row.line for row in grid.rows if row.label == label)


def _state(grid: Grid, column: int, line: int) -> RowState:
    band = next(b for b in grid.bands if b.column == column and b.line <= line < b.line + b.span)
    return band.state


def _block(grid: Grid, visit_id: int) -> tuple[int, int]:
    block = next(b for b in grid.blocks if b.visit.id == visit_id)
    return block.line, block.span


WEEKDAY_HOURS = tuple(WeeklyRule(day, time(9), time(17)) for day in range(5))


def test_a_working_day_shows_07_to_19_with_hours_shaded_and_the_visit_in_place() -> None:
    visit = _visit(1, _at(MONDAY, 10))
    # The engine's view of the nurse holds her booking: that is what free time is judged by.
    schedule = replace(_schedule(*WEEKDAY_HOURS), bookings=(Booking(visit.start, visit.end, 1),))
    grid = layout(
        [ColumnInput(MONDAY, MONDAY, schedule, [visit])],
        NY,
        now=_at(MONDAY, 8) - timedelta(days=1),
    )
    assert len(grid.rows) == 48  # 07:00 to 19:00 in quarter hours
    assert grid.rows[0].label == "07:00" and grid.rows[0].line == 2
    assert _block(grid, 1) == (_line(grid, "10:00"), 2)
    assert _state(grid, 2, _line(grid, "08:00")) is RowState.OFF
    assert _state(grid, 2, _line(grid, "09:00")) is RowState.WORKING
    assert _state(grid, 2, _line(grid, "17:00")) is RowState.OFF
    free = {f.start for f in grid.free}
    assert _at(MONDAY, 9) in free and _at(MONDAY, 10, 30) in free
    # Taken, and a 30-minute visit at 09:45 would run into it; 16:45 would run past the hours.
    assert not free & {_at(MONDAY, 10), _at(MONDAY, 10, 15), _at(MONDAY, 9, 45)}
    assert _at(MONDAY, 16, 45) not in free and _at(MONDAY, 16, 30) in free
    assert not grid.columns[0].today and grid.now_line is None


def test_rows_widen_to_whole_hours_fitting_early_hours_and_a_late_visit() -> None:
    schedule = _schedule(WeeklyRule(0, time(5, 30), time(12)))
    late = _visit(2, _at(MONDAY, 20, 15))
    grid = layout([ColumnInput(MONDAY, MONDAY, schedule, [late])], NY, now=_at(MONDAY, 0))
    assert grid.rows[0].label == "05:00"
    assert grid.rows[-1].minute == 20 * 60 + 45  # through 21:00
    assert _block(grid, 2) == (_line(grid, "20:00") + 1, 2)
    assert len(grid.rows) <= MAX_ROWS


def test_hours_are_drawn_in_the_display_zone() -> None:
    chicago = _schedule(*WEEKDAY_HOURS, tz="America/Chicago")
    grid = layout([ColumnInput(MONDAY, MONDAY, chicago)], NY, now=_at(MONDAY, 0))
    # 09:00-17:00 in Chicago is 10:00-18:00 in New York.
    assert _state(grid, 2, _line(grid, "09:00")) is RowState.OFF
    assert _state(grid, 2, _line(grid, "10:00")) is RowState.WORKING
    assert _state(grid, 2, _line(grid, "18:00")) is RowState.OFF


def test_time_off_and_extra_hours_are_shaded_and_never_free() -> None:
    overrides = (
        DateOverride(OverrideKind.TIME_OFF, MONDAY, MONDAY, time(13), time(15)),
        DateOverride(OverrideKind.EXTRA_HOURS, MONDAY, MONDAY, time(17), time(18)),
    )
    schedule = _schedule(*WEEKDAY_HOURS, overrides=overrides)
    grid = layout([ColumnInput(MONDAY, MONDAY, schedule)], NY, now=_at(MONDAY, 0))
    assert _state(grid, 2, _line(grid, "13:00")) is RowState.TIME_OFF
    assert _state(grid, 2, _line(grid, "15:00")) is RowState.WORKING
    assert _state(grid, 2, _line(grid, "17:00")) is RowState.EXTRA
    free = {f.start for f in grid.free}
    assert _at(MONDAY, 13, 30) not in free
    assert _at(MONDAY, 17) in free


def test_a_week_marks_today_and_draws_the_now_line_in_its_column() -> None:
    days = [MONDAY + timedelta(days=n) for n in range(7)]
    schedule = _schedule(*WEEKDAY_HOURS)
    now = _at(days[2], 11, 20)
    grid = layout([ColumnInput(d, d, schedule) for d in days], NY, now=now)
    assert [c.today for c in grid.columns] == [False, False, True, False, False, False, False]
    assert grid.now_line == (_line(grid, "11:00") + 1, 4, 1)
    # Past time is not offered; Wednesday after now is.
    free = {f.start for f in grid.free}
    assert _at(days[1], 10) not in free and _at(days[2], 11, 30) in free
    assert not any(f.column == 7 for f in grid.free)  # Saturday: no hours


def test_a_team_board_draws_the_now_line_across_every_nurse() -> None:
    nurses = [_schedule(*WEEKDAY_HOURS), _schedule(*WEEKDAY_HOURS, tz="America/Chicago")]
    now = _at(MONDAY, 12)
    grid = layout([ColumnInput(n, MONDAY, s) for n, s in enumerate(nurses)], NY, now=now)
    assert grid.now_line == (_line(grid, "12:00"), 2, 2)


FALL_BACK = date(2026, 11, 1)  # 02:00 EDT becomes 01:00 EST
SPRING_FORWARD = date(2026, 3, 8)  # 02:00 EST becomes 03:00 EDT


def test_fall_back_gives_the_repeated_hour_its_own_rows_and_each_visit_its_place() -> None:
    # Extra hours from midnight so the night shows. The repeated hour 01:00-02:00 is drawn
    # twice: first the EDT rows, then the EST ones. A visit at the first 01:30 and one at the
    # second sit an hour apart, and one from the first 01:30 to the second lasts four rows
    # (an hour), where wall clocks alone would give it no length at all.
    night = DateOverride(OverrideKind.EXTRA_HOURS, FALL_BACK, FALL_BACK, time(0), time(4))
    first = _visit(1, _at(FALL_BACK, 1, 30, fold=0))
    second = _visit(2, _at(FALL_BACK, 1, 30, fold=1))
    across = _visit(3, _at(FALL_BACK, 1, 30, fold=0), minutes=60)
    schedule = _schedule(overrides=(night,))
    grid = layout(
        [ColumnInput(FALL_BACK, FALL_BACK, schedule, [first, second, across])],
        NY,
        now=_at(FALL_BACK, 0) - timedelta(days=1),
    )
    labels = [row.label for row in grid.rows if row.label]
    assert labels[:4] == ["00:00", "01:00 EDT", "01:00 EST", "02:00"]
    assert len(grid.rows) == 19 * 4 + 4  # 00:00-19:00 plus the repeated hour
    first_line, second_line = _line(grid, "01:00 EDT") + 2, _line(grid, "01:00 EST") + 2
    assert _block(grid, 1) == (first_line, 2)
    assert _block(grid, 2) == (second_line, 2)
    assert _block(grid, 3) == (first_line, 4)
    assert _state(grid, 2, second_line) is RowState.EXTRA
    assert _at(FALL_BACK, 1, 0, fold=1) in {f.start for f in grid.free}


def test_a_week_with_a_fall_back_day_marks_the_repeated_rows_absent_on_other_days() -> None:
    days = [FALL_BACK - timedelta(days=6) + timedelta(days=n) for n in range(7)]
    night = DateOverride(OverrideKind.EXTRA_HOURS, days[0], FALL_BACK, time(0), time(4))
    grid = layout(
        [ColumnInput(d, d, _schedule(overrides=(night,))) for d in days],
        NY,
        now=_at(days[0], 0) - timedelta(days=1),
    )
    repeated = _line(grid, "01:00 EST")
    assert _state(grid, 2, repeated) is RowState.ABSENT  # Monday has one 01:00
    assert _state(grid, 8, repeated) is RowState.EXTRA  # Sunday has two


def test_spring_forward_keeps_the_skipped_rows_marked_and_a_visit_across_them_whole() -> None:
    # 02:00-03:00 does not exist that day: its rows stay (so the day lines up with a week) but
    # are marked ABSENT and never offered. A visit from 01:30 EST to 03:30 EDT (an hour) covers
    # the rows from 01:30 to 03:30 across the gap; one at 03:00 EDT starts on the 03:00 row.
    night = DateOverride(OverrideKind.EXTRA_HOURS, SPRING_FORWARD, SPRING_FORWARD, time(0), time(6))
    across = _visit(1, _at(SPRING_FORWARD, 1, 30), minutes=60)
    after = _visit(2, _at(SPRING_FORWARD, 3, 0) + timedelta(minutes=30))
    grid = layout(
        [
            ColumnInput(
                SPRING_FORWARD, SPRING_FORWARD, _schedule(overrides=(night,)), [across, after]
            )
        ],
        NY,
        now=_at(SPRING_FORWARD, 0) - timedelta(days=1),
    )
    assert len(grid.rows) == 19 * 4  # 00:00-19:00: the skipped hour keeps its rows
    gap = _line(grid, "02:00")
    assert all(_state(grid, 2, gap + n) is RowState.ABSENT for n in range(4))
    assert _state(grid, 2, gap + 4) is RowState.EXTRA
    assert _block(grid, 1) == (_line(grid, "01:00") + 2, 8)
    assert _block(grid, 2) == (_line(grid, "03:00") + 2, 2)
    assert not any(gap <= f.line < gap + 4 for f in grid.free)


def test_too_many_columns_are_refused() -> None:
    schedule = _schedule()
    with pytest.raises(ValueError, match="at most 20"):
        layout([ColumnInput(n, MONDAY, schedule) for n in range(21)], NY, now=_at(MONDAY, 0))
