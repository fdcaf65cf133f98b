"""Series rules expanded into occurrences, and occurrences judged by the booking rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from core.errors import ValidationError
from core.recurrence import MAX_OCCURRENCES, SeriesRule, check_occurrences, expand
from core.scheduling import Booking, DateOverride, NurseSchedule, Refusal, WeeklyRule

NY = "America/New_York"
MONDAY = date(2025, 3, 3)
NOW = datetime(2025, 3, 3, 8, tzinfo=UTC)


def rule(**changes: object) -> SeriesRule:
    base: dict[str, object] = {
        "first": MONDAY,
        "wall_time": time(10),
        "time_zone": NY,
        "weekdays": frozenset({0, 3}),
        "count": 4,
    }
    base.update(changes)
    return SeriesRule(**base)  # type: ignore[arg-type]


def test_mondays_and_thursdays_for_four_visits() -> None:
    days = [o.day for o in expand(rule())]
    assert days == [date(2025, 3, 3), date(2025, 3, 6), date(2025, 3, 10), date(2025, 3, 13)]


def test_every_other_week_skips_the_weeks_between() -> None:
    days = [o.day for o in expand(rule(interval_weeks=2, count=3, weekdays=frozenset({0})))]
    assert days == [date(2025, 3, 3), date(2025, 3, 17), date(2025, 3, 31)]


def test_until_includes_its_own_date() -> None:
    days = [o.day for o in expand(rule(count=None, until=date(2025, 3, 10)))]
    assert days == [date(2025, 3, 3), date(2025, 3, 6), date(2025, 3, 10)]


def test_a_first_visit_midweek_starts_the_series_there() -> None:
    days = [o.day for o in expand(rule(first=date(2025, 3, 6), count=3))]
    assert days == [date(2025, 3, 6), date(2025, 3, 10), date(2025, 3, 13)]


def test_the_wall_clock_time_stays_across_the_spring_and_autumn_changes() -> None:
    occurrences = expand(rule(weekdays=frozenset({0}), count=None, until=date(2025, 11, 10)))
    by_day = {o.day: o.start for o in occurrences}
    assert by_day[date(2025, 3, 3)] == datetime(2025, 3, 3, 15, tzinfo=UTC)  # EST
    assert by_day[date(2025, 3, 10)] == datetime(2025, 3, 10, 14, tzinfo=UTC)  # EDT
    assert by_day[date(2025, 11, 3)] == datetime(2025, 11, 3, 15, tzinfo=UTC)  # EST again
    assert all(o.exists for o in occurrences)


def test_a_wall_time_the_clocks_skip_is_marked_not_moved() -> None:
    occurrences = expand(
        rule(first=date(2025, 3, 2), wall_time=time(2, 30), weekdays=frozenset({6}), count=2)
    )
    assert [(o.day, o.exists) for o in occurrences] == [
        (date(2025, 3, 2), True),
        (date(2025, 3, 9), False),
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"weekdays": frozenset()}, "weekdays"),
        ({"weekdays": frozenset({1})}, "start"),  # 2025-03-03 is a Monday
        ({"interval_weeks": 0}, "interval_weeks"),
        ({"count": MAX_OCCURRENCES + 1}, "count"),
        ({"count": None}, "count"),
        ({"until": date(2025, 4, 1)}, "count"),  # both
        ({"count": None, "until": date(2025, 3, 2)}, "until"),
        ({"count": None, "until": date(2026, 3, 3)}, "until"),  # beyond 52 weeks
    ],
)
def test_a_rule_that_cannot_be_expanded_names_its_field(changes: dict, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        expand(rule(**changes))
    assert refused.value.field == field


def test_the_horizon_caps_a_series_at_fifty_two_weeks() -> None:
    occurrences = expand(rule(weekdays=frozenset({0}), count=MAX_OCCURRENCES))
    assert len(occurrences) == 52
    assert occurrences[-1].day - occurrences[0].day == timedelta(weeks=51)


def schedule(**changes: object) -> NurseSchedule:
    base: dict[str, object] = {
        "time_zone": NY,
        "rules": tuple(WeeklyRule(day, time(9), time(17)) for day in range(5)),
        "min_notice_minutes": 0,
        "horizon_days": 120,
    }
    base.update(changes)
    return NurseSchedule(**base)  # type: ignore[arg-type]


def test_time_off_inside_a_series_refuses_only_that_visit() -> None:
    off = DateOverride("time_off", date(2025, 3, 6), date(2025, 3, 6))
    occurrences = expand(rule())
    refusals, _, _ = check_occurrences(
        schedule(overrides=(off,)),
        [(o.start, o.exists) for o in occurrences],
        timedelta(minutes=30),
        NOW,
    )
    assert refusals == [None, Refusal.TIME_OFF, None, None]


def test_a_visit_already_booked_refuses_the_occurrence_it_overlaps() -> None:
    taken = Booking(
        datetime(2025, 3, 10, 14, 15, tzinfo=UTC), datetime(2025, 3, 10, 14, 45, tzinfo=UTC), 9
    )
    occurrences = expand(rule())
    refusals, _, _ = check_occurrences(
        schedule(bookings=(taken,)),
        [(o.start, o.exists) for o in occurrences],
        timedelta(minutes=30),
        NOW,
    )
    assert refusals == [None, None, Refusal.CONFLICT, None]


def test_the_daily_cap_and_buffers_count_the_series_own_earlier_visits() -> None:
    day = datetime(2025, 3, 4, 15, tzinfo=UTC)  # Tuesday 10:00 New York
    visits = [(day, True), (day + timedelta(minutes=40), True), (day + timedelta(hours=2), True)]
    refusals, _, _ = check_occurrences(
        schedule(buffer_after_minutes=15, daily_cap=2), visits, timedelta(minutes=30), NOW
    )
    # 10:40 falls in 10:00's buffer; being refused, it does not count towards the cap.
    assert refusals == [None, Refusal.CONFLICT, None]
    refusals, planned, _ = check_occurrences(
        schedule(daily_cap=2), visits, timedelta(minutes=30), NOW
    )
    assert refusals == [None, None, Refusal.DAILY_CAP]
    assert len(planned.bookings) == 2


def test_a_skipped_wall_time_is_refused_as_such() -> None:
    refusals, _, _ = check_occurrences(
        schedule(), [(datetime(2025, 3, 9, 7, 30, tzinfo=UTC), False)], timedelta(minutes=30), NOW
    )
    assert refusals == [Refusal.NO_SUCH_TIME]


def test_waived_positions_skip_only_notice_and_horizon_and_say_which_rule() -> None:
    occurrences = expand(rule())  # Mon 3, Thu 6, Mon 10, Thu 13 March
    starts = [(o.start, o.exists) for o in occurrences]
    tight = schedule(horizon_days=5)
    refusals, _, waived = check_occurrences(tight, starts, timedelta(minutes=30), NOW)
    assert refusals == [None, None, Refusal.BEYOND_HORIZON, Refusal.BEYOND_HORIZON]
    assert waived == {}
    refusals, planned, waived = check_occurrences(
        tight, starts, timedelta(minutes=30), NOW, waive={2}
    )
    assert refusals == [None, None, None, Refusal.BEYOND_HORIZON]
    assert waived == {2: Refusal.BEYOND_HORIZON}
    assert len(planned.bookings) == 3
    off = DateOverride("time_off", date(2025, 3, 13), date(2025, 3, 13))
    refusals, _, waived = check_occurrences(
        schedule(horizon_days=5, overrides=(off,)), starts, timedelta(minutes=30), NOW, waive={3}
    )
    assert refusals[3] == Refusal.TIME_OFF and waived == {}
