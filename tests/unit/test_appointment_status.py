"""The status-change rules: which changes are allowed and when an undo still applies."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from core.appointment_status import UNDO_WINDOW, change_refusal, restore_refusal, undo_refusal
from core.scheduling import Booking, NurseSchedule, WeeklyRule

NOW = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York


def test_a_started_visit_can_be_completed_or_marked_no_show():
    started = NOW - timedelta(minutes=5)
    assert change_refusal("scheduled", "completed", start_at=started, now=NOW) is None
    assert change_refusal("scheduled", "no_show", start_at=started, now=NOW) is None


def test_a_visit_that_has_not_started_cannot_be_closed_but_can_be_cancelled():
    later = NOW + timedelta(hours=1)
    assert "not started" in (
        change_refusal("scheduled", "completed", start_at=later, now=NOW) or ""
    )
    assert change_refusal("scheduled", "cancelled", start_at=later, now=NOW) is None


def test_a_closed_visit_changes_no_further():
    assert change_refusal("completed", "no_show", start_at=NOW, now=NOW) == (
        "This visit is already completed."
    )


def test_only_completed_no_show_and_cancelled_are_offered():
    assert change_refusal("scheduled", "entered_in_error", start_at=NOW, now=NOW) is not None
    assert change_refusal("scheduled", "scheduled", start_at=NOW, now=NOW) is not None


def test_a_change_can_be_undone_until_the_window_closes():
    made = NOW - UNDO_WINDOW + timedelta(seconds=1)
    args = {"current": "no_show", "changed_to": "no_show", "changed_at": made, "undone": False}
    assert undo_refusal(**args, now=NOW) is None
    assert undo_refusal(**args, now=made + UNDO_WINDOW) is not None


def test_an_undone_or_superseded_change_cannot_be_undone():
    assert (
        undo_refusal(
            current="scheduled", changed_to="no_show", changed_at=NOW, undone=True, now=NOW
        )
        == "That change was already undone."
    )
    assert "changed since" in (
        undo_refusal(
            current="cancelled", changed_to="no_show", changed_at=NOW, undone=False, now=NOW
        )
        or ""
    )


def _schedule(*bookings: Booking, buffer_after: int = 0) -> NurseSchedule:
    return NurseSchedule(
        time_zone="America/New_York",
        rules=(WeeklyRule(0, time(9), time(17)),),
        bookings=bookings,
        buffer_after_minutes=buffer_after,
    )


def test_restoring_a_visit_whose_time_was_taken_since_is_refused():
    start, end = NOW + timedelta(hours=1), NOW + timedelta(hours=1, minutes=30)
    other = Booking(start + timedelta(minutes=15), end + timedelta(minutes=15), 2)
    assert "Another visit" in (restore_refusal(_schedule(other), start, end, NOW, 1) or "")
    assert restore_refusal(_schedule(Booking(start, end, 1)), start, end, NOW, 1) is None


def test_restoring_respects_the_buffers_around_other_visits():
    start, end = NOW + timedelta(hours=1), NOW + timedelta(hours=1, minutes=30)
    before = Booking(start - timedelta(minutes=30), start, 2)
    assert restore_refusal(_schedule(before), start, end, NOW, 1) is None
    assert restore_refusal(_schedule(before, buffer_after=10), start, end, NOW, 1) is not None


def test_a_past_visit_is_restored_without_its_hours_being_checked():
    start = NOW - timedelta(hours=9)  # 01:00 in New York, outside her hours
    assert restore_refusal(_schedule(), start, start + timedelta(minutes=30), NOW, 1) is None
    ahead = NOW + timedelta(hours=9)  # 19:00, outside her hours and still to come
    assert restore_refusal(_schedule(), ahead, ahead + timedelta(minutes=30), NOW, 1) is not None
