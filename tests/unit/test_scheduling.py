"""The pure scheduling engine (core.scheduling): no database, and `now` frozen in every test.

Numbers in test names refer to the edge cases of /work/shared/design/scheduling.md.
Slots are compared as local wall-clock labels ("09:00") where that reads best, and as exact
UTC instants wherever the offset itself is what is being tested (DST, Kolkata, Honolulu).
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import hypothesis
import pytest
from hypothesis import strategies as st

from core.errors import ValidationError
from core.scheduling import (
    REFUSAL_MESSAGES,
    Booking,
    DateOverride,
    NurseSchedule,
    OverrideKind,
    Preferences,
    Refusal,
    WeeklyRule,
    alternatives,
    free_intervals,
    local_to_utc,
    refusal_for,
    repeated_time,
    require_aware,
    skipped_time,
    slot_starts,
    spread_nearest,
    wall_time_exists,
    window_minutes,
    written_in_gap,
    zone,
)
from core.timefmt import local_iso, spoken

NY = "America/New_York"
LA = "America/Los_Angeles"
HONOLULU = "Pacific/Honolulu"
KOLKATA = "Asia/Kolkata"
KATHMANDU = "Asia/Kathmandu"
TOKYO = "Asia/Tokyo"

MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY = range(7)

# Three Mondays in February 2025, well clear of any DST change in New York.
MON = date(2025, 2, 3)
NEXT_MON = date(2025, 2, 10)
MON_AFTER = date(2025, 2, 17)

MON_9_TO_17 = WeeklyRule(MONDAY, time(9), time(17))


# ---------------------------------------------------------------- helpers


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def wall(tz: str, day: date, hour: int, minute: int = 0) -> datetime:
    """The UTC instant of a wall-clock time on a local date (first occurrence if repeated)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(tz)).astimezone(UTC)


# "Now" for most tests: Saturday 2025-02-01 at noon in New York, before every Monday used.
NOW = wall(NY, date(2025, 2, 1), 12)


def visit(tz: str, day: date, hour: int, minute: int = 0, minutes: int = 30) -> tuple:
    """A [start, end) pair for a visit starting at a wall-clock time."""
    start = wall(tz, day, hour, minute)
    return start, start + timedelta(minutes=minutes)


_booking_ids = itertools.count(1000)


def booking(tz: str, day: date, hour: int, minute: int = 0, minutes: int = 30, id=None):
    """A scheduled appointment at a wall-clock time, with an id as stored appointments have."""
    start, end = visit(tz, day, hour, minute, minutes)
    return Booking(start=start, end=end, id=next(_booking_ids) if id is None else id)


def labels(instants: list[datetime], tz: str) -> list[str]:
    """Instants as local "HH:MM" labels, in the given order (duplicates kept)."""
    return [instant.astimezone(ZoneInfo(tz)).strftime("%H:%M") for instant in instants]


def stamps(instants: list[datetime], tz: str) -> list[str]:
    """Instants as local "YYYY-MM-DD HH:MM" labels."""
    return [instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") for instant in instants]


def grid(first: str, last: str, step: int = 15) -> list[str]:
    """Every "HH:MM" label from `first` to `last` inclusive, `step` minutes apart."""

    def minutes(label: str) -> int:
        hours, mins = label.split(":")
        return int(hours) * 60 + int(mins)

    return [f"{m // 60:02d}:{m % 60:02d}" for m in range(minutes(first), minutes(last) + 1, step)]


def local_day(schedule: NurseSchedule, day: date) -> tuple[datetime, datetime]:
    """[local midnight, next local midnight) of `day` in the nurse's zone, in UTC."""
    following = day + timedelta(days=1)
    return wall(schedule.time_zone, day, 0), wall(schedule.time_zone, following, 0)


def slots_on(schedule: NurseSchedule, day: date, now: datetime = NOW, **kwargs) -> list[datetime]:
    """Slot starts on one local date of the nurse."""
    start, end = local_day(schedule, day)
    return slot_starts(schedule, start, end, now, **kwargs)


def ny_nurse(*rules: WeeklyRule, **settings) -> NurseSchedule:
    """A New York nurse working Mondays 09-17 unless other rules are given."""
    return NurseSchedule(time_zone=NY, rules=rules or (MON_9_TO_17,), **settings)


def time_off(first: date, last: date | None = None, start=None, end=None) -> DateOverride:
    return DateOverride(OverrideKind.TIME_OFF, first, last or first, start, end)


def extra_hours(first: date, start: time, end: time, last: date | None = None) -> DateOverride:
    return DateOverride(OverrideKind.EXTRA_HOURS, first, last or first, start, end)


FULL_DAY = grid("09:00", "16:30")


# ---------------------------------------------------------------- 1. the basic grid


def test_a_monday_nine_to_five_offers_half_hour_visits_from_nine_to_four_thirty():
    slots = slots_on(ny_nurse(), MON)

    assert labels(slots, NY) == grid("09:00", "16:30")
    assert len(slots) == 31
    assert slots[0] == utc(2025, 2, 3, 14, 0)
    assert slots[-1] == utc(2025, 2, 3, 21, 30)


def test_a_day_without_weekly_hours_offers_no_slots():
    assert slots_on(ny_nurse(), MON + timedelta(days=1)) == []


def test_a_longer_visit_ends_the_listing_earlier():
    slots = slots_on(ny_nurse(), MON, duration_minutes=60)

    assert labels(slots, NY) == grid("09:00", "16:00")


def test_slot_starts_only_lists_starts_inside_the_asked_range():
    start, end = wall(NY, MON, 10, 0), wall(NY, MON, 11, 0)

    assert labels(slot_starts(ny_nurse(), start, end, NOW), NY) == grid("10:00", "10:45")


def test_slot_starts_round_an_off_grid_range_start_up_to_the_next_grid_point():
    start, end = wall(NY, MON, 10, 7), wall(NY, MON, 11, 0)

    assert labels(slot_starts(ny_nurse(), start, end, NOW), NY) == grid("10:15", "10:45")


# ---------------------------------------------------------------- 2. split shift


def test_a_split_shift_offers_no_slot_that_spans_the_gap():
    nurse = ny_nurse(WeeklyRule(MONDAY, time(9), time(12)), WeeklyRule(MONDAY, time(13), time(17)))

    assert labels(slots_on(nurse, MON), NY) == grid("09:00", "11:30") + grid("13:00", "16:30")


def test_a_visit_across_the_split_shift_gap_is_refused_as_outside_hours():
    nurse = ny_nurse(WeeklyRule(MONDAY, time(9), time(12)), WeeklyRule(MONDAY, time(13), time(17)))

    assert refusal_for(nurse, *visit(NY, MON, 11, 45), NOW) == Refusal.OUTSIDE_HOURS
    assert refusal_for(nurse, *visit(NY, MON, 12, 45), NOW) == Refusal.OUTSIDE_HOURS
    assert refusal_for(nurse, *visit(NY, MON, 11, 30), NOW) is None
    assert refusal_for(nurse, *visit(NY, MON, 13, 0), NOW) is None


# ---------------------------------------------------------------- 3. end of the window


def test_a_visit_ending_exactly_at_the_end_of_hours_is_bookable():
    assert refusal_for(ny_nurse(), *visit(NY, MON, 16, 30), NOW) is None


def test_a_visit_ending_a_minute_after_the_end_of_hours_is_refused():
    assert refusal_for(ny_nurse(), *visit(NY, MON, 16, 31), NOW) == Refusal.OUTSIDE_HOURS
    start, _ = visit(NY, MON, 16, 30)
    assert (
        refusal_for(ny_nurse(), start, start + timedelta(minutes=31), NOW) == Refusal.OUTSIDE_HOURS
    )


def test_a_visit_starting_a_minute_before_the_hours_is_refused():
    assert refusal_for(ny_nurse(), *visit(NY, MON, 8, 59), NOW) == Refusal.OUTSIDE_HOURS


# ---------------------------------------------------------------- 4. back to back


def test_back_to_back_visits_are_listed_and_bookable():
    nurse = ny_nurse(bookings=(booking(NY, MON, 10, 0),))

    assert labels(slots_on(nurse, MON), NY) == grid("09:00", "09:30") + grid("10:30", "16:30")
    assert refusal_for(nurse, *visit(NY, MON, 9, 30), NOW) is None
    assert refusal_for(nurse, *visit(NY, MON, 10, 30), NOW) is None


# ---------------------------------------------------------------- 5. partial overlap


def test_an_existing_visit_from_10_15_to_10_45_blocks_the_10_00_and_10_30_starts():
    nurse = ny_nurse(bookings=(booking(NY, MON, 10, 15),))

    slots = labels(slots_on(nurse, MON), NY)

    assert slots == grid("09:00", "09:45") + grid("10:45", "16:30")
    assert "10:00" not in slots
    assert "10:30" not in slots


def test_a_partial_overlap_is_refused_as_a_conflict_at_booking():
    nurse = ny_nurse(bookings=(booking(NY, MON, 10, 15),))

    assert refusal_for(nurse, *visit(NY, MON, 10, 0), NOW) == Refusal.CONFLICT
    assert refusal_for(nurse, *visit(NY, MON, 10, 30), NOW) == Refusal.CONFLICT
    assert refusal_for(nurse, *visit(NY, MON, 9, 45), NOW) is None
    assert refusal_for(nurse, *visit(NY, MON, 10, 45), NOW) is None


def test_a_longer_visit_enclosing_an_existing_one_is_a_conflict():
    nurse = ny_nurse(bookings=(booking(NY, MON, 10, 15),))

    assert refusal_for(nurse, *visit(NY, MON, 10, 0, minutes=90), NOW) == Refusal.CONFLICT


# ---------------------------------------------------------------- 6. buffers


def test_buffers_are_excluded_from_the_listing():
    # Each visit owns [start - 10, end + 15): the 12:00 visit blocks new starts 11:15..12:45.
    nurse = ny_nurse(
        bookings=(booking(NY, MON, 12, 0),), buffer_before_minutes=10, buffer_after_minutes=15
    )

    assert labels(slots_on(nurse, MON), NY) == grid("09:00", "11:00") + grid("13:00", "16:30")


def test_buffers_are_refused_at_booking():
    nurse = ny_nurse(
        bookings=(booking(NY, MON, 12, 0),), buffer_before_minutes=10, buffer_after_minutes=15
    )

    assert refusal_for(nurse, *visit(NY, MON, 11, 5), NOW) is None
    assert refusal_for(nurse, *visit(NY, MON, 11, 6), NOW) == Refusal.CONFLICT
    assert refusal_for(nurse, *visit(NY, MON, 12, 30), NOW) == Refusal.CONFLICT
    assert refusal_for(nurse, *visit(NY, MON, 12, 54), NOW) == Refusal.CONFLICT
    assert refusal_for(nurse, *visit(NY, MON, 12, 55), NOW) is None


def test_an_after_buffer_also_guards_the_new_visit_before_an_existing_one():
    # Only an after-buffer of 15: the new visit's own after-buffer must clear the 12:00 visit.
    nurse = ny_nurse(bookings=(booking(NY, MON, 12, 0),), buffer_after_minutes=15)

    assert refusal_for(nurse, *visit(NY, MON, 11, 15), NOW) is None
    assert refusal_for(nurse, *visit(NY, MON, 11, 30), NOW) == Refusal.CONFLICT
    assert refusal_for(nurse, *visit(NY, MON, 12, 30), NOW) == Refusal.CONFLICT
    assert refusal_for(nurse, *visit(NY, MON, 12, 45), NOW) is None
    assert labels(slots_on(nurse, MON), NY) == grid("09:00", "11:15") + grid("12:45", "16:30")


# ---------------------------------------------------------------- 7. time off


def test_all_day_time_off_removes_only_that_date():
    nurse = ny_nurse(overrides=(time_off(NEXT_MON),))

    assert labels(slots_on(nurse, MON), NY) == FULL_DAY
    assert slots_on(nurse, NEXT_MON) == []
    assert labels(slots_on(nurse, MON_AFTER), NY) == FULL_DAY


def test_partial_time_off_from_12_to_14_removes_only_those_hours():
    nurse = ny_nurse(overrides=(time_off(NEXT_MON, start=time(12), end=time(14)),))

    assert labels(slots_on(nurse, NEXT_MON), NY) == grid("09:00", "11:30") + grid("14:00", "16:30")
    assert labels(slots_on(nurse, MON), NY) == FULL_DAY
    assert labels(slots_on(nurse, MON_AFTER), NY) == FULL_DAY


def test_a_visit_during_time_off_is_refused_as_time_off():
    nurse = ny_nurse(
        overrides=(time_off(NEXT_MON), time_off(MON_AFTER, start=time(12), end=time(14)))
    )

    assert refusal_for(nurse, *visit(NY, NEXT_MON, 10, 0), NOW) == Refusal.TIME_OFF
    assert refusal_for(nurse, *visit(NY, MON_AFTER, 12, 0), NOW) == Refusal.TIME_OFF
    assert refusal_for(nurse, *visit(NY, MON_AFTER, 13, 45), NOW) == Refusal.TIME_OFF
    assert refusal_for(nurse, *visit(NY, MON_AFTER, 11, 30), NOW) is None
    assert refusal_for(nurse, *visit(NY, MON_AFTER, 14, 0), NOW) is None
    assert refusal_for(nurse, *visit(NY, MON, 12, 0), NOW) is None


def test_time_off_over_a_date_range_covers_every_date_in_it():
    nurse = ny_nurse(overrides=(time_off(NEXT_MON, MON_AFTER),))

    assert labels(slots_on(nurse, MON), NY) == FULL_DAY
    assert slots_on(nurse, NEXT_MON) == []
    assert slots_on(nurse, MON_AFTER) == []
    assert labels(slots_on(nurse, MON_AFTER + timedelta(days=7)), NY) == FULL_DAY


# ---------------------------------------------------------------- 8. extra hours


def test_extra_hours_on_a_day_without_weekly_hours_add_slots():
    sunday = date(2025, 2, 9)
    nurse = ny_nurse(overrides=(extra_hours(sunday, time(10), time(12)),))

    assert labels(slots_on(nurse, sunday), NY) == grid("10:00", "11:30")
    assert slots_on(nurse, sunday + timedelta(days=7)) == []


def test_extra_hours_overlapping_weekly_hours_merge_without_duplicate_slots():
    nurse = ny_nurse(overrides=(extra_hours(MON, time(16), time(18)),))

    slots = slots_on(nurse, MON)

    assert labels(slots, NY) == grid("09:00", "17:30")
    assert len(set(slots)) == len(slots)
    assert refusal_for(nurse, *visit(NY, MON, 16, 45), NOW) is None
    assert refusal_for(nurse, *visit(NY, MON, 17, 30), NOW) is None
    assert refusal_for(nurse, *visit(NY, MON, 17, 31), NOW) == Refusal.OUTSIDE_HOURS
    assert labels(slots_on(nurse, NEXT_MON), NY) == FULL_DAY


def test_time_off_wins_over_extra_hours_on_the_same_date():
    nurse = ny_nurse(overrides=(extra_hours(MON, time(17), time(19)), time_off(MON)))

    assert slots_on(nurse, MON) == []


# ---------------------------------------------------------------- 9. Honolulu, queried in UTC


def test_time_off_for_a_honolulu_nurse_lands_on_her_local_date_when_queried_in_utc():
    # Tue 09-17 HST is Tue 19:00Z - Wed 03:00Z; Wed 09-17 HST is Wed 19:00Z - Thu 03:00Z.
    rules = (WeeklyRule(TUESDAY, time(9), time(17)), WeeklyRule(WEDNESDAY, time(9), time(17)))
    tuesday = date(2025, 2, 4)
    utc_wednesday = (utc(2025, 2, 5), utc(2025, 2, 6))
    working = NurseSchedule(time_zone=HONOLULU, rules=rules)
    off_tuesday = NurseSchedule(time_zone=HONOLULU, rules=rules, overrides=(time_off(tuesday),))

    assert free_intervals(working, *utc_wednesday, NOW) == [
        (utc(2025, 2, 5, 0), utc(2025, 2, 5, 3)),
        (utc(2025, 2, 5, 19), utc(2025, 2, 6, 0)),
    ]
    assert free_intervals(off_tuesday, *utc_wednesday, NOW) == [
        (utc(2025, 2, 5, 19), utc(2025, 2, 6, 0)),
    ]
    assert refusal_for(off_tuesday, utc(2025, 2, 5, 1), utc(2025, 2, 5, 1, 30), NOW) == (
        Refusal.TIME_OFF
    )
    assert refusal_for(off_tuesday, utc(2025, 2, 5, 19), utc(2025, 2, 5, 19, 30), NOW) is None


def test_extra_hours_for_a_honolulu_nurse_land_on_her_local_date_when_queried_in_utc():
    # Thursday 18:00-20:00 HST is Friday 04:00Z-06:00Z.
    nurse = NurseSchedule(
        time_zone=HONOLULU, overrides=(extra_hours(date(2025, 2, 6), time(18), time(20)),)
    )

    assert free_intervals(nurse, utc(2025, 2, 6), utc(2025, 2, 7), NOW) == []
    assert free_intervals(nurse, utc(2025, 2, 7), utc(2025, 2, 8), NOW) == [
        (utc(2025, 2, 7, 4), utc(2025, 2, 7, 6)),
    ]


# ---------------------------------------------------------------- 10. spring forward


SPRING_DAY = date(2025, 3, 9)  # a Sunday: 02:00 EST jumps to 03:00 EDT
SPRING_NOW = utc(2025, 3, 8, 12)


def test_on_the_spring_forward_day_nine_am_in_new_york_is_13_00_utc():
    nurse = ny_nurse(WeeklyRule(SUNDAY, time(9), time(10)))

    assert local_to_utc(SPRING_DAY, 9 * 60, ZoneInfo(NY)) == utc(2025, 3, 9, 13)
    assert slots_on(nurse, SPRING_DAY, SPRING_NOW) == [
        utc(2025, 3, 9, 13, 0),
        utc(2025, 3, 9, 13, 15),
        utc(2025, 3, 9, 13, 30),
    ]


def test_on_the_spring_forward_day_a_1_30_to_3_30_rule_yields_one_real_hour():
    nurse = ny_nurse(WeeklyRule(SUNDAY, time(1, 30), time(3, 30)))

    day = local_day(nurse, SPRING_DAY)
    assert free_intervals(nurse, *day, SPRING_NOW) == [
        (utc(2025, 3, 9, 6, 30), utc(2025, 3, 9, 7, 30)),
    ]
    slots = slots_on(nurse, SPRING_DAY, SPRING_NOW)
    assert slots == [utc(2025, 3, 9, 6, 30), utc(2025, 3, 9, 6, 45), utc(2025, 3, 9, 7, 0)]
    assert labels(slots, NY) == ["01:30", "01:45", "03:00"]


def test_a_wall_time_skipped_by_spring_forward_resolves_forward():
    tz = ZoneInfo(NY)

    resolved = local_to_utc(SPRING_DAY, 2 * 60 + 30, tz)

    assert resolved == utc(2025, 3, 9, 7, 30)
    assert resolved.astimezone(tz).strftime("%H:%M %Z") == "03:30 EDT"
    assert [wall_time_exists(SPRING_DAY, m, tz) for m in (105, 120, 135, 150, 165, 180)] == [
        True,
        False,
        False,
        False,
        False,
        True,
    ]


def test_no_slot_is_offered_at_a_wall_time_that_does_not_exist():
    nurse = ny_nurse(WeeklyRule(SUNDAY, time(0), time(5)))

    assert labels(slots_on(nurse, SPRING_DAY, SPRING_NOW), NY) == grid("00:00", "01:45") + grid(
        "03:00", "04:30"
    )


# ---------------------------------------------------------------- 11. fall back


FALL_DAY = date(2025, 11, 2)  # a Sunday: 02:00 EDT falls back to 01:00 EST
FALL_NOW = utc(2025, 11, 1, 12)


def test_on_the_fall_back_day_nine_am_in_new_york_is_14_00_utc():
    nurse = ny_nurse(WeeklyRule(SUNDAY, time(9), time(10)))

    assert local_to_utc(FALL_DAY, 9 * 60, ZoneInfo(NY)) == utc(2025, 11, 2, 14)
    assert slots_on(nurse, FALL_DAY, FALL_NOW) == [
        utc(2025, 11, 2, 14, 0),
        utc(2025, 11, 2, 14, 15),
        utc(2025, 11, 2, 14, 30),
    ]


def test_on_the_fall_back_day_the_repeated_hour_yields_each_wall_time_once():
    nurse = ny_nurse(WeeklyRule(SUNDAY, time(0), time(3)))

    slots = slots_on(nurse, FALL_DAY, FALL_NOW)

    assert labels(slots, NY) == grid("00:00", "02:30")
    assert len(set(labels(slots, NY))) == len(slots)
    assert slots == [
        utc(2025, 11, 2, 4, 0),
        utc(2025, 11, 2, 4, 15),
        utc(2025, 11, 2, 4, 30),
        utc(2025, 11, 2, 4, 45),
        utc(2025, 11, 2, 5, 0),
        utc(2025, 11, 2, 5, 15),
        utc(2025, 11, 2, 5, 30),
        utc(2025, 11, 2, 5, 45),
        utc(2025, 11, 2, 7, 0),
        utc(2025, 11, 2, 7, 15),
        utc(2025, 11, 2, 7, 30),
    ]


def test_an_ambiguous_wall_time_takes_its_first_occurrence():
    tz = ZoneInfo(NY)

    resolved = local_to_utc(FALL_DAY, 90, tz)

    assert resolved == utc(2025, 11, 2, 5, 30)
    assert resolved.astimezone(tz).strftime("%H:%M %Z") == "01:30 EDT"
    assert wall_time_exists(FALL_DAY, 90, tz) is True


# ---------------------------------------------------------------- 12. weekly hours keep local time


@pytest.mark.parametrize(
    ("weekday", "day", "expected"),
    [
        pytest.param(MONDAY, date(2025, 3, 3), utc(2025, 3, 3, 15), id="monday-before-spring"),
        pytest.param(SUNDAY, date(2025, 3, 9), utc(2025, 3, 9, 14), id="spring-forward-day"),
        pytest.param(MONDAY, date(2025, 3, 10), utc(2025, 3, 10, 14), id="monday-after-spring"),
        pytest.param(MONDAY, date(2025, 10, 27), utc(2025, 10, 27, 14), id="monday-before-fall"),
        pytest.param(SUNDAY, date(2025, 11, 2), utc(2025, 11, 2, 15), id="fall-back-day"),
        pytest.param(MONDAY, date(2025, 11, 3), utc(2025, 11, 3, 15), id="monday-after-fall"),
    ],
)
def test_a_weekly_10_00_stays_10_00_local_across_dst_changes(weekday, day, expected):
    nurse = ny_nurse(WeeklyRule(weekday, time(10), time(10, 30)), horizon_days=400)

    slots = slots_on(nurse, day, utc(2025, 3, 1))

    assert slots == [expected]
    assert labels(slots, NY) == ["10:00"]


def test_a_weekly_10_00_listed_over_weeks_spanning_spring_forward_keeps_its_wall_time():
    nurse = ny_nurse(WeeklyRule(MONDAY, time(10), time(10, 30)))

    slots = slot_starts(nurse, utc(2025, 3, 1), utc(2025, 3, 20), utc(2025, 2, 28))

    assert slots == [utc(2025, 3, 3, 15), utc(2025, 3, 10, 14), utc(2025, 3, 17, 14)]
    assert labels(slots, NY) == ["10:00", "10:00", "10:00"]


def test_a_weekly_10_00_listed_over_weeks_spanning_fall_back_keeps_its_wall_time():
    nurse = ny_nurse(WeeklyRule(MONDAY, time(10), time(10, 30)))

    slots = slot_starts(nurse, utc(2025, 10, 20), utc(2025, 11, 11), utc(2025, 10, 19))

    assert slots == [
        utc(2025, 10, 20, 14),
        utc(2025, 10, 27, 14),
        utc(2025, 11, 3, 15),
        utc(2025, 11, 10, 15),
    ]


# ---------------------------------------------------------------- 13. patient in another zone


def test_a_nurse_slot_crossing_midnight_for_a_patient_in_tokyo_is_shown_on_the_patients_date():
    # 06:45 and 07:00 in Los Angeles on Monday are 23:45 Monday and 00:00 Tuesday in Tokyo.
    nurse = NurseSchedule(time_zone=LA, rules=(WeeklyRule(MONDAY, time(6, 45), time(7, 45)),))

    slots = slots_on(nurse, date(2025, 3, 3), utc(2025, 3, 1))

    assert slots == [utc(2025, 3, 3, 14, 45), utc(2025, 3, 3, 15, 0), utc(2025, 3, 3, 15, 15)]
    assert [spoken(s, TOKYO) for s in slots] == [
        "Monday, March 3 at 11:45 PM JST",
        "Tuesday, March 4 at 12:00 AM JST",
        "Tuesday, March 4 at 12:15 AM JST",
    ]
    assert [spoken(s, LA) for s in slots] == [
        "Monday, March 3 at 6:45 AM PST",
        "Monday, March 3 at 7:00 AM PST",
        "Monday, March 3 at 7:15 AM PST",
    ]
    assert local_iso(slots[1], TOKYO) == "2025-03-04T00:00:00+09:00"
    assert local_iso(slots[1], LA) == "2025-03-03T07:00:00-08:00"


def test_a_late_afternoon_slot_in_los_angeles_is_the_next_morning_in_tokyo():
    nurse = NurseSchedule(time_zone=LA, rules=(WeeklyRule(MONDAY, time(17), time(17, 30)),))

    (slot,) = slots_on(nurse, date(2025, 3, 3), utc(2025, 3, 1))

    assert slot == utc(2025, 3, 4, 1)
    assert spoken(slot, LA) == "Monday, March 3 at 5:00 PM PST"
    assert spoken(slot, TOKYO) == "Tuesday, March 4 at 10:00 AM JST"


# ---------------------------------------------------------------- 14. half-hour offsets


def test_kolkata_slots_fall_on_the_local_quarter_hours():
    nurse = NurseSchedule(time_zone=KOLKATA, rules=(WeeklyRule(MONDAY, time(9), time(10)),))

    slots = slots_on(nurse, MON)

    assert slots == [utc(2025, 2, 3, 3, 30), utc(2025, 2, 3, 3, 45), utc(2025, 2, 3, 4, 0)]
    assert labels(slots, KOLKATA) == ["09:00", "09:15", "09:30"]


def test_kolkata_hourly_slots_after_an_off_grid_booking_resume_on_the_local_hour():
    # A UTC grid would offer 04:00Z (09:30 IST); the local grid offers 10:00 IST (04:30Z).
    nurse = NurseSchedule(
        time_zone=KOLKATA,
        rules=(WeeklyRule(MONDAY, time(9), time(13)),),
        bookings=(booking(KOLKATA, MON, 9, 0, minutes=20),),
        slot_step_minutes=60,
    )

    slots = slots_on(nurse, MON)

    assert slots == [utc(2025, 2, 3, 4, 30), utc(2025, 2, 3, 5, 30), utc(2025, 2, 3, 6, 30)]
    assert labels(slots, KOLKATA) == ["10:00", "11:00", "12:00"]


def test_kolkata_slots_after_an_off_grid_notice_start_on_the_next_local_quarter_hour():
    # Now is 09:07 IST (03:37Z): the first slot is 09:15 IST (03:45Z).
    nurse = NurseSchedule(time_zone=KOLKATA, rules=(WeeklyRule(MONDAY, time(9), time(10)),))

    slots = slots_on(nurse, MON, now=utc(2025, 2, 3, 3, 37))

    assert slots == [utc(2025, 2, 3, 3, 45), utc(2025, 2, 3, 4, 0)]


def test_kathmandu_hourly_slots_fall_on_the_local_hour_despite_a_45_minute_offset():
    nurse = NurseSchedule(
        time_zone=KATHMANDU,
        rules=(WeeklyRule(MONDAY, time(9), time(11)),),
        slot_step_minutes=60,
    )

    assert slots_on(nurse, MON) == [utc(2025, 2, 3, 3, 15), utc(2025, 2, 3, 4, 15)]


# ---------------------------------------------------------------- 15. notice, horizon, daily cap


def test_minimum_notice_removes_slots_that_are_too_soon_from_the_listing():
    now = wall(NY, MON, 9, 10)
    nurse = ny_nurse(min_notice_minutes=120)

    assert labels(slots_on(nurse, MON, now), NY) == grid("11:15", "16:30")


def test_minimum_notice_refuses_a_booking_that_is_too_soon():
    now = wall(NY, MON, 9, 10)
    nurse = ny_nurse(min_notice_minutes=120)

    assert refusal_for(nurse, *visit(NY, MON, 9, 15), now) == Refusal.TOO_SOON
    assert refusal_for(nurse, *visit(NY, MON, 11, 0), now) == Refusal.TOO_SOON
    assert refusal_for(nurse, *visit(NY, MON, 11, 9), now) == Refusal.TOO_SOON
    assert refusal_for(nurse, *visit(NY, MON, 11, 10), now) is None


def test_a_visit_that_already_started_is_refused_as_in_the_past():
    now = wall(NY, MON, 9, 10)

    assert refusal_for(ny_nurse(), *visit(NY, MON, 9, 0), now) == Refusal.IN_THE_PAST
    assert refusal_for(ny_nurse(), *visit(NY, MON, 9, 10), now) is None


def test_without_minimum_notice_the_listing_starts_at_the_next_grid_point_after_now():
    now = wall(NY, MON, 10, 1)

    assert labels(slots_on(ny_nurse(), MON, now), NY) == grid("10:15", "16:30")


def test_the_horizon_cuts_off_the_listing():
    # Now is Monday 10:00; a 7-day horizon ends next Monday at 10:00.
    now = wall(NY, MON, 10, 0)
    nurse = ny_nurse(horizon_days=7)

    assert labels(slots_on(nurse, NEXT_MON, now), NY) == ["09:00", "09:15", "09:30"]
    assert slots_on(nurse, MON_AFTER, now) == []


def test_a_visit_ending_after_the_horizon_is_refused():
    now = wall(NY, MON, 10, 0)
    nurse = ny_nurse(horizon_days=7)

    assert refusal_for(nurse, *visit(NY, NEXT_MON, 9, 30), now) is None
    assert refusal_for(nurse, *visit(NY, NEXT_MON, 9, 45), now) == Refusal.BEYOND_HORIZON
    assert refusal_for(nurse, *visit(NY, MON_AFTER, 9, 0), now) == Refusal.BEYOND_HORIZON


def test_the_daily_cap_closes_a_day_once_reached():
    nurse = ny_nurse(bookings=(booking(NY, MON, 9, 0), booking(NY, MON, 10, 0)), daily_cap=2)

    assert slots_on(nurse, MON) == []
    assert refusal_for(nurse, *visit(NY, MON, 14, 0), NOW) == Refusal.DAILY_CAP
    assert labels(slots_on(nurse, NEXT_MON), NY) == FULL_DAY
    assert refusal_for(nurse, *visit(NY, NEXT_MON, 14, 0), NOW) is None


def test_a_day_below_the_daily_cap_stays_open():
    nurse = ny_nurse(bookings=(booking(NY, MON, 9, 0), booking(NY, MON, 10, 0)), daily_cap=3)

    assert labels(slots_on(nurse, MON), NY) == ["09:30", *grid("10:30", "16:30")]
    assert refusal_for(nurse, *visit(NY, MON, 14, 0), NOW) is None


def test_the_daily_cap_counts_visits_by_the_nurses_local_date_not_the_utc_date():
    # Monday 18:00 in Los Angeles is Tuesday 02:00 UTC: it fills Monday, not Tuesday.
    nurse = NurseSchedule(
        time_zone=LA,
        rules=(WeeklyRule(MONDAY, time(9), time(20)), WeeklyRule(TUESDAY, time(9), time(20))),
        bookings=(booking(LA, MON, 18, 0),),
        daily_cap=1,
    )
    tuesday = MON + timedelta(days=1)

    assert nurse.bookings[0].start == utc(2025, 2, 4, 2)
    assert slots_on(nurse, MON) == []
    assert labels(slots_on(nurse, tuesday), LA) == grid("09:00", "19:30")
    assert refusal_for(nurse, *visit(LA, MON, 10, 0), NOW) == Refusal.DAILY_CAP
    assert refusal_for(nurse, *visit(LA, tuesday, 10, 0), NOW) is None


def test_a_rescheduled_visit_does_not_count_toward_the_daily_cap_of_its_own_day():
    nurse = ny_nurse(bookings=(booking(NY, MON, 9, 0, id=5),), daily_cap=1)

    assert refusal_for(nurse, *visit(NY, MON, 14, 0), NOW) == Refusal.DAILY_CAP
    assert refusal_for(nurse, *visit(NY, MON, 14, 0), NOW, ignore_booking_id=5) is None
    assert labels(slots_on(nurse, MON, ignore_booking_id=5), NY) == FULL_DAY


# ---------------------------------------------------------------- refusal reasons


def _refusal_world() -> tuple[NurseSchedule, datetime]:
    """Mon-Wed 09-17 in New York, 60-minute notice, 14-day horizon, at most two visits a day.

    Now is Monday 2025-02-03 09:00. Tuesday the 4th is time off; Wednesday the 5th already
    has two visits (capped); next Monday has one visit at 10:00.
    """
    now = wall(NY, MON, 9, 0)
    wednesday = MON + timedelta(days=2)
    nurse = NurseSchedule(
        time_zone=NY,
        rules=tuple(WeeklyRule(day, time(9), time(17)) for day in (MONDAY, TUESDAY, WEDNESDAY)),
        overrides=(time_off(MON + timedelta(days=1)),),
        bookings=(
            booking(NY, wednesday, 10, 0),
            booking(NY, wednesday, 14, 0),
            booking(NY, NEXT_MON, 10, 0),
        ),
        min_notice_minutes=60,
        horizon_days=14,
        daily_cap=2,
    )
    return nurse, now


@pytest.mark.parametrize(
    ("day_offset", "hour", "minute", "expected"),
    [
        pytest.param(0, 8, 30, Refusal.IN_THE_PAST, id="in_the_past"),
        pytest.param(0, 9, 30, Refusal.TOO_SOON, id="too_soon"),
        pytest.param(14, 9, 0, Refusal.BEYOND_HORIZON, id="beyond_horizon"),
        pytest.param(3, 10, 0, Refusal.OUTSIDE_HOURS, id="outside_hours-thursday"),
        pytest.param(0, 17, 0, Refusal.OUTSIDE_HOURS, id="outside_hours-evening"),
        pytest.param(1, 10, 0, Refusal.TIME_OFF, id="time_off"),
        pytest.param(2, 12, 0, Refusal.DAILY_CAP, id="daily_cap"),
        pytest.param(7, 10, 15, Refusal.CONFLICT, id="conflict"),
        pytest.param(7, 11, 0, None, id="bookable"),
        pytest.param(0, 10, 0, None, id="bookable-at-notice-edge"),
    ],
)
def test_refusal_for_names_the_reason_a_time_cannot_be_booked(day_offset, hour, minute, expected):
    nurse, now = _refusal_world()
    day = MON + timedelta(days=day_offset)

    assert refusal_for(nurse, *visit(NY, day, hour, minute), now) == expected


def test_refusal_values_are_the_stable_codes_and_each_has_a_message():
    assert sorted(r.value for r in Refusal) == [
        "beyond_horizon",
        "conflict",
        "daily_cap",
        "in_the_past",
        "no_such_time",
        "outside_hours",
        "time_off",
        "too_soon",
    ]
    assert set(REFUSAL_MESSAGES) == set(Refusal)


def test_every_listed_slot_is_bookable_and_every_other_grid_point_is_refused():
    nurse, now = _refusal_world()
    listed = set(slot_starts(nurse, wall(NY, MON, 0), wall(NY, MON + timedelta(days=15), 0), now))
    grid_points = [
        wall(NY, MON + timedelta(days=d), 0) + timedelta(minutes=15 * n)
        for d in range(15)
        for n in range(96)
    ]

    for point in grid_points:
        refusal = refusal_for(nurse, point, point + timedelta(minutes=30), now)
        assert (refusal is None) == (point in listed), point
    # Mon 3rd from 10:00 (27), Tue 11th (31), Wed 12th (31), Mon 10th around 10:00 (28).
    assert len(listed) == 27 + 31 + 31 + 28


def test_an_end_not_after_the_start_is_a_validation_error():
    start = wall(NY, MON, 10)

    with pytest.raises(ValidationError) as caught:
        refusal_for(ny_nurse(), start, start, NOW)
    assert caught.value.field == "end"
    with pytest.raises(ValidationError):
        refusal_for(ny_nurse(), start, start - timedelta(minutes=30), NOW)


def test_a_negative_visit_length_is_a_validation_error():
    start, end = local_day(ny_nurse(), MON)

    with pytest.raises(ValidationError) as caught:
        slot_starts(ny_nurse(), start, end, NOW, duration_minutes=-30)
    assert caught.value.field == "duration_minutes"


def test_a_zero_minute_visit_is_a_validation_error():
    # ENGINE BUG: `duration_minutes or schedule.visit_minutes` treats 0 as "not given", so a
    # zero-length visit silently lists 30-minute slots instead of being refused.
    start, end = local_day(ny_nurse(), MON)

    with pytest.raises(ValidationError):
        slot_starts(ny_nurse(), start, end, NOW, duration_minutes=0)


# ---------------------------------------------------------------- naive datetimes and zones


NAIVE = datetime(2025, 2, 3, 10, 0)


@pytest.mark.parametrize(
    ("call", "field_name"),
    [
        pytest.param(
            lambda: slot_starts(ny_nurse(), NAIVE, wall(NY, NEXT_MON, 0), NOW), "start", id="slots"
        ),
        pytest.param(
            lambda: slot_starts(ny_nurse(), wall(NY, MON, 0), NAIVE, NOW), "end", id="slots-end"
        ),
        pytest.param(
            lambda: slot_starts(ny_nurse(), wall(NY, MON, 0), wall(NY, NEXT_MON, 0), NAIVE),
            "now",
            id="slots-now",
        ),
        pytest.param(
            lambda: refusal_for(ny_nurse(), NAIVE, wall(NY, MON, 11), NOW), "start", id="refusal"
        ),
        pytest.param(
            lambda: refusal_for(ny_nurse(), *visit(NY, MON, 10), NAIVE), "now", id="refusal-now"
        ),
        pytest.param(
            lambda: free_intervals(ny_nurse(), wall(NY, MON, 0), wall(NY, NEXT_MON, 0), NAIVE),
            "now",
            id="free-now",
        ),
        pytest.param(lambda: alternatives(ny_nurse(), NAIVE, NOW), "start", id="alternatives"),
        pytest.param(
            lambda: alternatives(ny_nurse(), wall(NY, MON, 10), NAIVE),
            "now",
            id="alternatives-now",
        ),
    ],
)
def test_naive_datetimes_are_refused_with_a_validation_error(call, field_name):
    with pytest.raises(ValidationError) as caught:
        call()
    assert caught.value.field == field_name


def test_require_aware_converts_an_offset_time_to_utc():
    paris_noon = datetime(2025, 2, 3, 12, 0, tzinfo=timezone(timedelta(hours=1)))

    converted = require_aware(paris_noon)

    assert converted == utc(2025, 2, 3, 11)
    assert converted.tzinfo is UTC


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "america/new_york", "../etc/passwd", "EST+5"])
def test_an_unknown_time_zone_is_a_validation_error(name):
    with pytest.raises(ValidationError) as caught:
        zone(name)
    assert caught.value.field == "time_zone"


def test_a_time_zone_name_too_long_for_a_file_is_refused_without_repeating_it():
    with pytest.raises(ValidationError) as caught:
        zone("x" * 10_000)
    assert caught.value.field == "time_zone" and "xxx" not in caught.value.message


def test_a_nurse_in_an_unknown_time_zone_is_refused_when_listing_and_booking():
    nurse = NurseSchedule(time_zone="Mars/Olympus", rules=(MON_9_TO_17,))

    with pytest.raises(ValidationError):
        slot_starts(nurse, utc(2025, 2, 3), utc(2025, 2, 4), NOW)
    with pytest.raises(ValidationError):
        refusal_for(nurse, utc(2025, 2, 3, 15), utc(2025, 2, 3, 15, 30), NOW)


def test_a_patient_preference_in_an_unknown_time_zone_is_a_validation_error():
    with pytest.raises(ValidationError):
        Preferences(time_zone="Nowhere/Land").accepts(utc(2025, 2, 3, 15))


# ---------------------------------------------------------------- rescheduling


def test_the_visit_being_rescheduled_does_not_block_itself():
    nurse = ny_nurse(bookings=(booking(NY, MON, 10, 0, id=7), booking(NY, MON, 14, 0, id=8)))
    day = local_day(nurse, MON)

    assert free_intervals(nurse, *day, NOW) == [
        (wall(NY, MON, 9), wall(NY, MON, 10)),
        (wall(NY, MON, 10, 30), wall(NY, MON, 14)),
        (wall(NY, MON, 14, 30), wall(NY, MON, 17)),
    ]
    assert free_intervals(nurse, *day, NOW, ignore_booking_id=7) == [
        (wall(NY, MON, 9), wall(NY, MON, 14)),
        (wall(NY, MON, 14, 30), wall(NY, MON, 17)),
    ]
    assert refusal_for(nurse, *visit(NY, MON, 10, 15), NOW) == Refusal.CONFLICT
    assert refusal_for(nurse, *visit(NY, MON, 10, 15), NOW, ignore_booking_id=7) is None
    assert refusal_for(nurse, *visit(NY, MON, 14, 15), NOW, ignore_booking_id=7) == (
        Refusal.CONFLICT
    )
    assert labels(slots_on(nurse, MON, ignore_booking_id=7), NY) == grid("09:00", "13:30") + grid(
        "14:30", "16:30"
    )


def test_the_visit_being_rescheduled_drops_its_buffers_too():
    nurse = ny_nurse(
        bookings=(booking(NY, MON, 10, 0, id=7),),
        buffer_before_minutes=15,
        buffer_after_minutes=15,
    )

    assert refusal_for(nurse, *visit(NY, MON, 10, 45), NOW) == Refusal.CONFLICT
    assert refusal_for(nurse, *visit(NY, MON, 10, 45), NOW, ignore_booking_id=7) is None
    assert labels(slots_on(nurse, MON, ignore_booking_id=7), NY) == FULL_DAY


def test_a_booking_without_an_id_still_blocks_its_time():
    # ENGINE BUG: blocked_intervals keeps bookings with `b.id != ignore_booking_id`; when there
    # is nothing to ignore (None), a Booking whose id is None (the dataclass default) is dropped.
    start, end = visit(NY, MON, 10, 0)
    nurse = ny_nurse(bookings=(Booking(start=start, end=end),))

    assert refusal_for(nurse, start, end, NOW) == Refusal.CONFLICT
    assert labels(slots_on(nurse, MON), NY) == grid("09:00", "09:30") + grid("10:30", "16:30")


def test_a_booking_without_an_id_still_counts_toward_the_daily_cap():
    # ENGINE BUG: capped_days filters with the same `b.id != ignore_booking_id` test.
    start, end = visit(NY, MON, 10, 0)
    nurse = ny_nurse(bookings=(Booking(start=start, end=end),), daily_cap=1)

    assert refusal_for(nurse, *visit(NY, MON, 14, 0), NOW) == Refusal.DAILY_CAP


# ---------------------------------------------------------------- 21. alternatives


def test_alternatives_are_at_most_three_nearest_first_and_spread_out():
    # Asked 12:00, taken. Nearest is 11:30 (ties go to the earlier), then 13:00 and 10:00,
    # each at least 90 minutes from the others.
    nurse = ny_nurse(bookings=(booking(NY, MON, 12, 0),))
    asked = wall(NY, MON, 12, 0)

    chosen = alternatives(nurse, asked, NOW)

    assert labels(chosen, NY) == ["10:00", "11:30", "13:00"]
    assert stamps(chosen, NY)[0].startswith("2025-02-03")


def test_alternatives_can_be_limited_to_fewer_choices():
    nurse = ny_nurse(bookings=(booking(NY, MON, 12, 0),))

    assert labels(alternatives(nurse, wall(NY, MON, 12), NOW, limit=1), NY) == ["11:30"]


def test_alternatives_are_in_the_future_bookable_and_spread_out():
    now = wall(NY, MON, 9, 10)
    nurse = ny_nurse(bookings=(booking(NY, MON, 12, 0),), min_notice_minutes=60)
    asked = wall(NY, MON, 10, 0)  # too soon

    chosen = alternatives(nurse, asked, now)

    assert labels(chosen, NY) == ["10:15", "12:30", "14:00"]
    assert all(c > now + timedelta(minutes=60) for c in chosen)
    assert all(refusal_for(nurse, c, c + timedelta(minutes=30), now) is None for c in chosen)
    gaps = [b - a for a, b in itertools.pairwise(chosen)]
    assert all(gap >= timedelta(minutes=90) for gap in gaps)


def test_alternatives_for_longer_visits_are_spread_by_twice_the_visit_length():
    chosen = alternatives(ny_nurse(), wall(NY, MON, 12), NOW, duration_minutes=60)

    assert labels(chosen, NY) == ["10:00", "12:00", "14:00"]


def test_alternatives_skip_a_fully_booked_day_for_the_nearest_open_days():
    nurse = ny_nurse(
        WeeklyRule(MONDAY, time(9), time(17)),
        WeeklyRule(TUESDAY, time(9), time(17)),
        bookings=(booking(NY, MON, 9, 0, minutes=8 * 60),),
    )

    chosen = alternatives(nurse, wall(NY, MON, 12), NOW)

    assert stamps(chosen, NY) == ["2025-02-04 09:00", "2025-02-04 10:30", "2025-02-04 12:00"]


def test_alternatives_respect_a_preferred_weekday_in_the_patients_zone():
    # Wednesday 09-17 in Los Angeles is Thursday in Tokyo; Monday there is Tuesday in Tokyo.
    nurse = NurseSchedule(
        time_zone=LA,
        rules=(WeeklyRule(MONDAY, time(9), time(17)), WeeklyRule(WEDNESDAY, time(9), time(17))),
    )
    wants_thursday = Preferences(time_zone=TOKYO, weekdays=frozenset({THURSDAY}))

    chosen = alternatives(nurse, wall(LA, MON, 12), NOW, preferences=wants_thursday)

    assert stamps(chosen, LA) == ["2025-02-05 09:00", "2025-02-05 10:30", "2025-02-05 12:00"]
    assert {c.astimezone(ZoneInfo(TOKYO)).weekday() for c in chosen} == {THURSDAY}


def test_alternatives_respect_a_preferred_part_of_day_in_the_patients_zone():
    # Morning in New York (before 12:00) is only 08:00-08:45 starts for a nurse in Los Angeles.
    nurse = NurseSchedule(
        time_zone=LA, rules=tuple(WeeklyRule(d, time(8), time(17)) for d in range(5))
    )
    mornings = Preferences(time_zone=NY, part_of_day="morning")

    chosen = alternatives(nurse, wall(LA, MON, 10), NOW, preferences=mornings)

    assert stamps(chosen, LA) == ["2025-02-03 08:45", "2025-02-04 08:00", "2025-02-05 08:00"]
    assert all(c.astimezone(ZoneInfo(NY)).hour < 12 for c in chosen)


def test_alternatives_respect_a_preferred_date_in_the_patients_zone():
    # 5 February in Tokyo is the Tuesday 4 February working day in Los Angeles.
    nurse = NurseSchedule(
        time_zone=LA, rules=tuple(WeeklyRule(d, time(9), time(17)) for d in range(5))
    )
    on_the_fifth = Preferences(time_zone=TOKYO, on_date=date(2025, 2, 5))

    chosen = alternatives(nurse, wall(LA, date(2025, 2, 5), 12), NOW, preferences=on_the_fifth)

    assert stamps(chosen, LA) == ["2025-02-04 13:30", "2025-02-04 15:00", "2025-02-04 16:30"]


def test_preferences_nothing_matches_give_no_alternatives():
    only_sundays = Preferences(time_zone=NY, weekdays=frozenset({SUNDAY}))

    assert alternatives(ny_nurse(), wall(NY, MON, 12), NOW, preferences=only_sundays) == []


@pytest.mark.parametrize(
    ("preferences", "accepted"),
    [
        pytest.param(Preferences(), True, id="no-preference"),
        pytest.param(Preferences(time_zone=TOKYO, weekdays=frozenset({TUESDAY})), True, id="tue"),
        pytest.param(Preferences(time_zone=TOKYO, weekdays=frozenset({MONDAY})), False, id="mon"),
        pytest.param(Preferences(time_zone=LA, weekdays=frozenset({MONDAY})), True, id="mon-la"),
        pytest.param(Preferences(time_zone=TOKYO, part_of_day="morning"), True, id="morning"),
        pytest.param(Preferences(time_zone=LA, part_of_day="morning"), False, id="morning-la"),
        pytest.param(Preferences(time_zone=LA, part_of_day="evening"), True, id="evening-la"),
        pytest.param(Preferences(time_zone=LA, part_of_day="afternoon"), False, id="afternoon"),
        pytest.param(Preferences(time_zone=TOKYO, on_date=date(2025, 2, 4)), True, id="date"),
        pytest.param(Preferences(time_zone=LA, on_date=date(2025, 2, 4)), False, id="date-la"),
        pytest.param(Preferences(on_date=date(2025, 2, 4)), True, id="date-utc"),
    ],
)
def test_preferences_are_judged_in_the_patients_zone(preferences, accepted):
    # Monday 17:00 in Los Angeles = Tuesday 01:00 UTC = Tuesday 10:00 in Tokyo.
    assert preferences.accepts(utc(2025, 2, 4, 1)) is accepted


@pytest.mark.parametrize(
    ("hour", "part"),
    [(11, "morning"), (12, "afternoon"), (16, "afternoon"), (17, "evening"), (23, "evening")],
)
def test_part_of_day_boundaries_are_noon_and_five_pm(hour, part):
    instant = wall(NY, MON, hour, 0)
    accepted = [
        name
        for name in ("morning", "afternoon", "evening")
        if Preferences(time_zone=NY, part_of_day=name).accepts(instant)
    ]

    assert accepted == [part]


def test_spread_nearest_breaks_a_tie_in_favour_of_the_earlier_time():
    asked = utc(2025, 2, 3, 12)

    assert spread_nearest([utc(2025, 2, 3, 13), utc(2025, 2, 3, 11)], asked, limit=1) == [
        utc(2025, 2, 3, 11)
    ]


def test_spread_nearest_picks_by_distance_and_returns_in_time_order():
    asked = utc(2025, 2, 3, 12)
    hourly = [utc(2025, 2, 3, h) for h in range(8, 17)]

    assert spread_nearest(hourly, asked) == [
        utc(2025, 2, 3, 10),
        utc(2025, 2, 3, 12),
        utc(2025, 2, 3, 14),
    ]
    assert spread_nearest(hourly, asked, min_gap=timedelta(hours=3), limit=5) == [
        utc(2025, 2, 3, 9),
        utc(2025, 2, 3, 12),
        utc(2025, 2, 3, 15),
    ]


def test_spread_nearest_of_no_candidates_is_empty():
    assert spread_nearest([], utc(2025, 2, 3, 12)) == []


# ---------------------------------------------------------------- 22. no availability


def test_a_nurse_with_no_hours_has_no_slots_and_no_alternatives():
    nurse = NurseSchedule(time_zone=NY)

    assert slot_starts(nurse, NOW, NOW + timedelta(days=60), NOW) == []
    assert free_intervals(nurse, NOW, NOW + timedelta(days=60), NOW) == []
    assert alternatives(nurse, wall(NY, MON, 12), NOW) == []
    assert refusal_for(nurse, *visit(NY, MON, 12), NOW) == Refusal.OUTSIDE_HOURS


def test_a_nurse_fully_booked_until_the_horizon_has_no_alternatives():
    # Horizon of 7 days from Saturday: only Monday the 3rd is within it, and it is full.
    nurse = ny_nurse(bookings=(booking(NY, MON, 9, 0, minutes=8 * 60),), horizon_days=7)

    assert slot_starts(nurse, NOW, NOW + timedelta(days=7), NOW) == []
    assert alternatives(nurse, wall(NY, MON, 12), NOW) == []


def test_a_nurse_on_leave_until_the_horizon_has_no_alternatives():
    nurse = ny_nurse(overrides=(time_off(MON, NEXT_MON),), horizon_days=14)

    assert alternatives(nurse, wall(NY, MON, 12), NOW) == []


# ---------------------------------------------------------------- 24. rule validity dates


def test_a_rule_valid_from_a_future_date_is_ignored_before_it_and_applies_from_it():
    nurse = ny_nurse(WeeklyRule(MONDAY, time(9), time(17), valid_from=NEXT_MON))

    assert slots_on(nurse, MON) == []
    assert refusal_for(nurse, *visit(NY, MON, 10), NOW) == Refusal.OUTSIDE_HOURS
    assert labels(slots_on(nurse, NEXT_MON), NY) == FULL_DAY
    assert labels(slots_on(nurse, MON_AFTER), NY) == FULL_DAY


def test_a_rule_valid_to_a_date_applies_on_it_and_stops_after_it():
    nurse = ny_nurse(WeeklyRule(MONDAY, time(9), time(17), valid_to=NEXT_MON))

    assert labels(slots_on(nurse, NEXT_MON), NY) == FULL_DAY
    assert slots_on(nurse, MON_AFTER) == []


def test_a_new_rule_takes_over_from_an_old_one_on_its_valid_from_date():
    nurse = ny_nurse(
        WeeklyRule(MONDAY, time(9), time(17), valid_to=NEXT_MON - timedelta(days=1)),
        WeeklyRule(MONDAY, time(12), time(17), valid_from=NEXT_MON),
    )

    assert labels(slots_on(nurse, MON), NY) == FULL_DAY
    assert labels(slots_on(nurse, NEXT_MON), NY) == grid("12:00", "16:30")


# ---------------------------------------------------------------- 25. 23:59 and midnight


def test_a_window_ending_at_23_59_offers_a_last_slot_at_23_15():
    nurse = ny_nurse(WeeklyRule(MONDAY, time(22), time(23, 59)))

    assert labels(slots_on(nurse, MON), NY) == grid("22:00", "23:15")


def test_a_window_ending_at_midnight_offers_a_last_slot_at_23_30():
    nurse = ny_nurse(WeeklyRule(MONDAY, time(22), time(0)))

    slots = slots_on(nurse, MON)

    assert labels(slots, NY) == grid("22:00", "23:30")
    assert slots[-1] == utc(2025, 2, 4, 4, 30)
    assert refusal_for(nurse, *visit(NY, MON, 23, 30), NOW) is None
    assert refusal_for(nurse, *visit(NY, MON, 23, 31), NOW) == Refusal.OUTSIDE_HOURS


def test_an_end_time_of_00_00_means_midnight():
    assert window_minutes(time(22), time(0)) == (22 * 60, 24 * 60)
    assert window_minutes(time(22), time(23, 59)) == (22 * 60, 23 * 60 + 59)
    assert window_minutes(time(0), time(0)) == (0, 24 * 60)


def test_extra_hours_ending_at_midnight_run_to_the_end_of_the_day():
    sunday = date(2025, 2, 9)
    nurse = ny_nurse(overrides=(extra_hours(sunday, time(22), time(0)),))

    assert labels(slots_on(nurse, sunday), NY) == grid("22:00", "23:30")


def test_a_window_ending_at_midnight_joins_a_window_starting_at_midnight_the_next_day():
    nurse = ny_nurse(WeeklyRule(MONDAY, time(22), time(0)), WeeklyRule(TUESDAY, time(0), time(2)))
    start, end = wall(NY, MON, 22), wall(NY, MON + timedelta(days=1), 2)

    slots = slot_starts(nurse, start, end, NOW)

    assert labels(slots, NY) == grid("22:00", "23:45") + grid("00:00", "01:30")
    assert refusal_for(nurse, *visit(NY, MON, 23, 45), NOW) is None


def test_a_midnight_window_on_the_spring_forward_eve_ends_at_the_real_midnight():
    # Saturday 2025-03-08 22:00-24:00 EST is 03:00Z-05:00Z; the change comes later, at 02:00.
    nurse = ny_nurse(WeeklyRule(SATURDAY, time(22), time(0)))

    slots = slots_on(nurse, date(2025, 3, 8), utc(2025, 3, 1))

    assert slots[0] == utc(2025, 3, 9, 3, 0)
    assert slots[-1] == utc(2025, 3, 9, 4, 30)
    assert labels(slots, NY) == grid("22:00", "23:30")


# ------------------------------------------------------- 21b. alternatives, narrowed search


def _alternatives_over_the_whole_window(
    schedule: NurseSchedule, asked: datetime, now: datetime, **options
) -> list[datetime]:
    """The reference: every bookable slot of the horizon, then the nearest spread picks."""
    earliest = now + timedelta(minutes=schedule.min_notice_minutes)
    latest = now + timedelta(days=schedule.horizon_days)
    duration = options.get("duration_minutes")
    candidates = slot_starts(schedule, earliest, latest, now, duration)
    preferences = options.get("preferences")
    if preferences is not None:
        candidates = [c for c in candidates if preferences.accepts(c)]
    length = schedule.visit_minutes if duration is None else duration
    return spread_nearest(
        candidates,
        asked,
        limit=options.get("limit", 3),
        min_gap=timedelta(minutes=max(90, 2 * length)),
    )


@hypothesis.settings(max_examples=150, deadline=None, derandomize=True)
@hypothesis.given(
    tz=st.sampled_from([NY, LA, KATHMANDU, "Europe/London", "Australia/Lord_Howe"]),
    workdays=st.sets(st.integers(0, 6), min_size=1, max_size=3),
    hours=st.tuples(st.integers(0, 14), st.integers(1, 9)),
    booked=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 95)), max_size=60),
    asked_offset=st.tuples(st.integers(-1, 30), st.integers(0, 95)),
    duration=st.sampled_from([None, 15, 60, 240]),
    limit=st.integers(1, 4),
    horizon=st.sampled_from([3, 21, 60, 60]),
    daily_cap=st.sampled_from([None, 1, 3]),
    preferred=st.sampled_from([None, "morning", "evening", "weekday"]),
)
def test_alternatives_equal_a_search_of_the_whole_bookable_window(
    tz, workdays, hours, booked, asked_offset, duration, limit, horizon, daily_cap, preferred
):
    # Spans spring-forward and fall-back dates (March/April and October/November 2025).
    now = datetime(2025, 2, 20, 17, 7, tzinfo=UTC)
    start, span = hours
    rules = tuple(WeeklyRule(d, time(start), time(min(23, start + span))) for d in workdays)
    first_day = now.astimezone(ZoneInfo(tz)).date()
    bookings = tuple(
        Booking(
            start=wall(tz, first_day + timedelta(days=day), quarter // 4, 15 * (quarter % 4)),
            end=wall(tz, first_day + timedelta(days=day), quarter // 4, 15 * (quarter % 4))
            + timedelta(minutes=45),
            id=n,
        )
        for n, (day, quarter) in enumerate(booked)
        if wall_time_exists(first_day + timedelta(days=day), quarter * 15, ZoneInfo(tz))
    )
    schedule = NurseSchedule(
        time_zone=tz, rules=rules, bookings=bookings, horizon_days=horizon, daily_cap=daily_cap
    )
    day, quarter = asked_offset
    asked = now + timedelta(days=day, minutes=15 * quarter)
    preferences = {
        None: None,
        "morning": Preferences(time_zone=NY, part_of_day="morning"),
        "evening": Preferences(time_zone=TOKYO, part_of_day="evening"),
        "weekday": Preferences(time_zone=LA, weekdays=frozenset({SATURDAY})),
    }[preferred]
    options = {"duration_minutes": duration, "limit": limit, "preferences": preferences}

    assert alternatives(schedule, asked, now, **options) == _alternatives_over_the_whole_window(
        schedule, asked, now, **options
    )


# ---------------------------------------------------------------- clock changes, said out loud

NEW_YORK = ZoneInfo("America/New_York")


def test_a_skipped_time_offers_the_nearest_quarter_hours_either_side_of_the_gap() -> None:
    skipped = skipped_time(date(2027, 3, 14), 2 * 60 + 30, NEW_YORK)
    assert skipped is not None
    assert [f"{t:%H:%M %Z}" for t in skipped.nearest] == ["01:45 EST", "03:00 EDT"]
    assert skipped.message() == (
        "02:30 does not exist on Sun 14 Mar 2027 in America/New_York: the clocks go forward "
        "then. Choose 01:45 or 03:00 instead."
    )
    assert skipped.error("start_local").to_dict()["nearest"] == [
        "2027-03-14T01:45:00-05:00",
        "2027-03-14T03:00:00-04:00",
    ]
    assert skipped_time(date(2027, 3, 14), 3 * 60, NEW_YORK) is None
    assert skipped_time(date(2027, 3, 15), 2 * 60 + 30, NEW_YORK) is None


def test_a_day_the_clocks_skip_entirely_offers_nothing_and_says_so() -> None:
    skipped = skipped_time(date(2011, 12, 30), 10 * 60, ZoneInfo("Pacific/Apia"))
    assert skipped is not None and skipped.nearest == ()
    assert skipped.message().endswith("the clocks skip that whole day.")


def test_a_repeated_time_gives_both_instants_first_one_first() -> None:
    both = repeated_time(date(2027, 11, 7), 90, NEW_YORK)
    assert both is not None
    assert [t.astimezone(UTC).strftime("%H:%M") for t in both] == ["05:30", "06:30"]
    assert repeated_time(date(2027, 11, 7), 3 * 60, NEW_YORK) is None


@pytest.mark.parametrize(
    ("written", "refused"),
    [
        ("2027-03-14T02:30:00-05:00", True),  # the offset before the change, read off the zone
        ("2027-03-14T02:30:00-04:00", True),  # the offset after it
        ("2027-03-14T02:30:00+00:00", False),  # a UTC time: 21:30 the evening before
        ("2027-03-14T03:30:00-04:00", False),  # exists
        ("2027-03-15T02:30:00-04:00", False),  # the next day: exists
    ],
)
def test_a_time_written_with_the_zones_offset_inside_the_gap_is_caught(
    written: str, refused: bool
) -> None:
    assert (written_in_gap(datetime.fromisoformat(written), NEW_YORK) is not None) is refused
