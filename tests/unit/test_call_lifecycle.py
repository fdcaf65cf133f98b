"""The moves allowed between a call's states."""

from __future__ import annotations

import pytest

from core.call_lifecycle import FINAL_STATUSES, is_final, next_status
from core.models import CallStatus

ORDER = ["queued", "initiated", "ringing", "in-progress"]


@pytest.mark.parametrize(
    ("current", "reported", "expected"),
    [
        ("queued", "initiated", "initiated"),
        ("queued", "in-progress", "in-progress"),  # callbacks can be skipped
        ("ringing", "in-progress", "in-progress"),
        ("in-progress", "completed", "completed"),
        ("ringing", "no-answer", "no-answer"),
        ("queued", "failed", "failed"),
    ],
)
def test_a_report_moves_a_call_forward(current: str, reported: str, expected: str) -> None:
    assert next_status(current, reported) == expected


@pytest.mark.parametrize(
    ("current", "reported"),
    [
        ("in-progress", "ringing"),  # a late callback
        ("in-progress", "initiated"),
        ("ringing", "ringing"),  # a repeat
        ("in-progress", "in-progress"),
        ("ringing", "queued"),
    ],
)
def test_a_late_or_repeated_report_is_ignored(current: str, reported: str) -> None:
    assert next_status(current, reported) is None


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES))
def test_nothing_moves_a_call_that_has_ended(final: str) -> None:
    assert is_final(final)
    for reported in [*ORDER, *FINAL_STATUSES]:
        assert next_status(final, reported) is None


def test_unknown_statuses_are_ignored() -> None:
    assert next_status("in-progress", "answered") is None
    assert next_status("mystery", "completed") is None


def test_every_status_is_either_on_the_way_or_final() -> None:
    assert set(ORDER) | FINAL_STATUSES == {status.value for status in CallStatus}
