"""A phone call's states and the moves allowed between them (pure: no session, no clock).

Twilio reports a call's progress in status callbacks that can arrive late, twice or out of
order; the voice service also learns things itself (the stream stopped, the process that held
the call died). Every one of those reports goes through `next_status`, so a call only ever moves
forward: queued, initiated, ringing, in progress, then exactly one final state.
"""

from __future__ import annotations

from core.models import CallStatus

FINAL_STATUSES = frozenset(
    {CallStatus.COMPLETED, CallStatus.BUSY, CallStatus.FAILED, CallStatus.NO_ANSWER,
     CallStatus.CANCELED}
)  # fmt: skip

# How far along a call is; a report may only move it to a later stage.
_STAGE: dict[str, int] = {
    CallStatus.QUEUED: 0,
    CallStatus.INITIATED: 1,
    CallStatus.RINGING: 2,
    CallStatus.IN_PROGRESS: 3,
    **dict.fromkeys(FINAL_STATUSES, 4),
}


def is_final(status: str) -> bool:
    """Whether a call in `status` has ended (nothing moves it again)."""
    return status in FINAL_STATUSES


def next_status(current: str, reported: str) -> str | None:
    """The status a call in `current` takes when `reported` arrives; None to ignore the report.

    Reports move a call forward only: a late `ringing` after the call was answered, or any
    report after the call ended, changes nothing. An unknown status is ignored.
    """
    if reported not in _STAGE or current not in _STAGE:
        return None
    if is_final(current) or _STAGE[reported] <= _STAGE[current]:
        return None
    return reported
