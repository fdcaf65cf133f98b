"""Times as people read and hear them (core.timefmt). Pure: no database, no clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from core.errors import ValidationError
from core.timefmt import local_iso, short, short_date, spoken


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# ---------------------------------------------------------------- local_iso


@pytest.mark.parametrize(
    ("instant", "zone_name", "expected"),
    [
        pytest.param(
            utc(2025, 3, 3, 15), "America/New_York", "2025-03-03T10:00:00-05:00", id="est"
        ),
        pytest.param(
            utc(2025, 3, 10, 14), "America/New_York", "2025-03-10T10:00:00-04:00", id="edt"
        ),
        pytest.param(utc(2025, 3, 3, 4, 30), "Asia/Kolkata", "2025-03-03T10:00:00+05:30", id="ist"),
        pytest.param(utc(2025, 3, 3, 15), "Asia/Tokyo", "2025-03-04T00:00:00+09:00", id="jst"),
        pytest.param(utc(2025, 3, 3, 9), "Pacific/Honolulu", "2025-03-02T23:00:00-10:00", id="hst"),
        pytest.param(utc(2025, 3, 3, 15), "UTC", "2025-03-03T15:00:00+00:00", id="utc"),
    ],
)
def test_local_iso_gives_the_wall_time_with_the_zones_offset(instant, zone_name, expected):
    assert local_iso(instant, zone_name) == expected


def test_local_iso_accepts_an_instant_given_with_any_offset():
    paris = datetime(2025, 3, 3, 16, 0, tzinfo=timezone(timedelta(hours=1)))

    assert local_iso(paris, "America/New_York") == "2025-03-03T10:00:00-05:00"


# ---------------------------------------------------------------- spoken


@pytest.mark.parametrize(
    ("instant", "zone_name", "expected"),
    [
        pytest.param(
            utc(2025, 3, 3, 15), "America/New_York", "Monday, March 3 at 10:00 AM EST", id="am"
        ),
        pytest.param(
            utc(2025, 3, 3, 14, 5), "America/New_York", "Monday, March 3 at 9:05 AM EST", id="9am"
        ),
        pytest.param(
            utc(2025, 3, 3, 17), "America/New_York", "Monday, March 3 at 12:00 PM EST", id="noon"
        ),
        pytest.param(
            utc(2025, 3, 3, 5), "America/New_York", "Monday, March 3 at 12:00 AM EST", id="midnight"
        ),
        pytest.param(
            utc(2025, 3, 3, 22, 45),
            "America/New_York",
            "Monday, March 3 at 5:45 PM EST",
            id="pm",
        ),
        pytest.param(
            utc(2025, 3, 10, 14), "America/New_York", "Monday, March 10 at 10:00 AM EDT", id="edt"
        ),
        pytest.param(
            utc(2025, 3, 3, 4, 30), "Asia/Kolkata", "Monday, March 3 at 10:00 AM IST", id="ist"
        ),
    ],
)
def test_spoken_reads_as_a_sentence_in_the_given_zone(instant, zone_name, expected):
    assert spoken(instant, zone_name) == expected


def test_spoken_tells_apart_the_two_occurrences_of_the_repeated_hour():
    # 2025-11-02 in New York: 01:30 happens twice, first in EDT then in EST.
    assert spoken(utc(2025, 11, 2, 5, 30), "America/New_York") == (
        "Sunday, November 2 at 1:30 AM EDT"
    )
    assert spoken(utc(2025, 11, 2, 6, 30), "America/New_York") == (
        "Sunday, November 2 at 1:30 AM EST"
    )


# ---------------------------------------------------------------- 13. patient vs nurse zone


def test_the_same_visit_is_told_on_each_persons_own_date_across_midnight():
    # Monday 17:00 in Los Angeles is Tuesday 10:00 in Tokyo.
    visit = utc(2025, 3, 4, 1)

    assert spoken(visit, "America/Los_Angeles") == "Monday, March 3 at 5:00 PM PST"
    assert spoken(visit, "Asia/Tokyo") == "Tuesday, March 4 at 10:00 AM JST"
    assert local_iso(visit, "America/Los_Angeles") == "2025-03-03T17:00:00-08:00"
    assert local_iso(visit, "Asia/Tokyo") == "2025-03-04T10:00:00+09:00"


def test_a_morning_visit_in_tokyo_is_the_previous_evening_for_a_patient_in_honolulu():
    visit = utc(2025, 3, 3, 0, 30)  # Monday 09:30 in Tokyo

    assert spoken(visit, "Asia/Tokyo") == "Monday, March 3 at 9:30 AM JST"
    assert spoken(visit, "Pacific/Honolulu") == "Sunday, March 2 at 2:30 PM HST"


def test_one_minute_either_side_of_the_patients_midnight_lands_on_different_dates():
    midnight_in_tokyo = utc(2025, 3, 3, 15)

    assert spoken(midnight_in_tokyo - timedelta(minutes=1), "Asia/Tokyo") == (
        "Monday, March 3 at 11:59 PM JST"
    )
    assert spoken(midnight_in_tokyo, "Asia/Tokyo") == "Tuesday, March 4 at 12:00 AM JST"


# ---------------------------------------------------------------- short


@pytest.mark.parametrize(
    ("instant", "zone_name", "expected"),
    [
        pytest.param(utc(2025, 3, 3, 15), "America/New_York", "Mon 3 Mar 10:00 EST", id="am"),
        pytest.param(
            utc(2025, 3, 4, 1, 30), "America/Los_Angeles", "Mon 3 Mar 17:30 PST", id="24-hour"
        ),
        pytest.param(utc(2025, 3, 4, 1, 30), "Asia/Tokyo", "Tue 4 Mar 10:30 JST", id="tokyo"),
        pytest.param(utc(2025, 11, 2, 6, 5), "America/New_York", "Sun 2 Nov 01:05 EST", id="fall"),
    ],
)
def test_short_is_a_compact_24_hour_form(instant, zone_name, expected):
    assert short(instant, zone_name) == expected


# ---------------------------------------------------------------- unknown zones


@pytest.mark.parametrize("formatter", [local_iso, spoken, short], ids=lambda f: f.__name__)
def test_an_unknown_zone_is_a_validation_error(formatter):
    with pytest.raises(ValidationError) as caught:
        formatter(utc(2025, 3, 3, 15), "Mars/Olympus")
    assert caught.value.field == "time_zone"


def test_naive_times_are_refused_rather_than_read_in_the_servers_zone():
    with pytest.raises(ValidationError):
        spoken(datetime(2025, 3, 3, 10, 0), "America/New_York")


# ---------------------------------------------------------------- short_date


@pytest.mark.parametrize(
    ("day", "this_year", "expected"),
    [
        (date(2026, 12, 9), 2026, "Wed 9 Dec"),
        (date(2027, 1, 1), 2026, "Fri 1 Jan 2027"),
        (date(1958, 4, 12), None, "Sat 12 Apr 1958"),
    ],
)
def test_short_date_reads_like_the_tables_and_adds_a_year_not_this_one(
    day: date, this_year: int | None, expected: str
) -> None:
    assert short_date(day, this_year) == expected
