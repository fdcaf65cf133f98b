"""Who gets freed time (core.waitlist.choose): pure, with `now` given."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.errors import Slot
from core.models import PartOfDay
from core.waitlist import Cover, Waiting, choose

NY = ZoneInfo("America/New_York")
NOW = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)  # Monday
TUESDAY = date(2025, 3, 4)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A New York wall-clock time."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)


def slot(hour: int, nurse_id: int = 1, day: date = TUESDAY) -> Slot:
    """A 30-minute slot with that nurse."""
    start = at(day, hour)
    return Slot(nurse_id, start, start + timedelta(minutes=30))


def waiting(entry_id: int, joined_minutes: int = 0, **fields: object) -> Waiting:
    """A patient waiting for nurse 1 all week, joined `joined_minutes` after NOW."""
    values: dict[str, object] = {
        "entry_id": entry_id,
        "joined_at": NOW + timedelta(minutes=joined_minutes),
        "nurses": (Cover(1, date(2025, 1, 1)),),
        "time_zone": "America/New_York",
        "from_date": date(2025, 3, 3),
        "until_date": date(2025, 3, 9),
    }
    values.update(fields)
    return Waiting(**values)  # type: ignore[arg-type]


def test_the_earliest_joined_patient_gets_the_earliest_slot_they_fit() -> None:
    chosen = choose([waiting(2, joined_minutes=5), waiting(1)], [slot(14), slot(10)], NOW)
    assert chosen is not None
    assert chosen[0].entry_id == 1
    assert chosen[1] == slot(10)


def test_a_patient_whose_window_does_not_fit_is_passed_for_the_next() -> None:
    mornings = waiting(1, parts=frozenset({PartOfDay.MORNING}))
    afternoons = waiting(2, joined_minutes=5, parts=frozenset({PartOfDay.AFTERNOON}))
    chosen = choose([mornings, afternoons], [slot(14)], NOW)
    assert chosen is not None and chosen[0].entry_id == 2


def test_weekdays_dates_and_the_patients_own_zone_decide_the_fit() -> None:
    # 10:00 in New York is 09:00 in Chicago: a Chicago "morning" still, and a Tuesday.
    chicago = waiting(1, time_zone="America/Chicago", parts=frozenset({PartOfDay.MORNING}))
    assert chicago.fits(slot(10))
    assert not chicago.fits(slot(13))  # 12:00 in Chicago is the afternoon
    assert not waiting(1, weekdays=frozenset({0, 2})).fits(slot(10))  # Mondays, Wednesdays
    assert waiting(1, weekdays=frozenset({1})).fits(slot(10))
    assert not waiting(1, until_date=date(2025, 3, 3)).fits(slot(10))
    assert not waiting(1, from_date=date(2025, 3, 5)).fits(slot(10))


def test_only_nurses_covering_the_patient_on_that_day_fit() -> None:
    assert not waiting(1).fits(slot(10, nurse_id=2))
    ended = waiting(1, nurses=(Cover(1, date(2025, 1, 1), date(2025, 3, 3)),))
    assert not ended.fits(slot(10))
    later = waiting(1, nurses=(Cover(1, date(2025, 3, 4)),))
    assert later.fits(slot(10))


def test_a_time_the_patient_already_let_go_is_not_offered_to_them_again() -> None:
    passed = waiting(1, passed=((1, at(TUESDAY, 10), at(TUESDAY, 10, 30)),))
    assert not passed.fits(slot(10))
    assert passed.fits(slot(11))
    assert waiting(1, passed=((2, at(TUESDAY, 10), at(TUESDAY, 10, 30)),)).fits(slot(10))
    chosen = choose([passed, waiting(2, joined_minutes=5)], [slot(10)], NOW)
    assert chosen is not None and chosen[0].entry_id == 2


def test_nobody_fitting_or_only_past_slots_choose_nobody() -> None:
    assert choose([], [slot(10)], NOW) is None
    assert choose([waiting(1)], [], NOW) is None
    past = Slot(1, NOW - timedelta(hours=1), NOW - timedelta(minutes=30))
    assert choose([waiting(1)], [past], NOW) is None
