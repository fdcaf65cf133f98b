"""Which status changes an appointment allows, and when one may be undone (pure: no session,
no clock).

A visit starts scheduled and leaves that state exactly once: completed or no-show once its time
has started, cancelled at any time. A change can be taken back for a short window, and only the
latest one, so an undo always restores the state the coordinator last saw.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from core.models import AppointmentStatus
from core.scheduling import NurseSchedule, blocked_intervals, working_intervals

UNDO_WINDOW = timedelta(minutes=10)
NOTE_MAX_LENGTH = 500

# The changes a person may make from the dashboard or the API, with what each needs.
CLOSING_STATUSES = frozenset({AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW})
CHANGEABLE_STATUSES = CLOSING_STATUSES | {AppointmentStatus.CANCELLED}

STATUS_LABELS: dict[str, str] = {
    AppointmentStatus.COMPLETED: "completed",
    AppointmentStatus.NO_SHOW: "no-show",
    AppointmentStatus.CANCELLED: "cancelled",
    AppointmentStatus.SCHEDULED: "scheduled",
    AppointmentStatus.ENTERED_IN_ERROR: "entered in error",
}


def change_refusal(current: str, target: str, *, start_at: datetime, now: datetime) -> str | None:
    """None when an appointment in `current` may move to `target` at `now`, else why not."""
    if target not in CHANGEABLE_STATUSES:
        return "Choose completed, no-show or cancelled."
    if current != AppointmentStatus.SCHEDULED:
        return f"This visit is already {STATUS_LABELS.get(current, current)}."
    if target in CLOSING_STATUSES and start_at > now:
        return "A visit that has not started yet cannot be marked completed or no-show."
    return None


def undo_deadline(changed_at: datetime) -> datetime:
    """Until when a change made at `changed_at` may be undone."""
    return changed_at + UNDO_WINDOW


def undo_refusal(
    *,
    current: str,
    changed_to: str,
    changed_at: datetime,
    undone: bool,
    now: datetime,
) -> str | None:
    """None when the latest change (to `changed_to` at `changed_at`) may be undone at `now`.

    Only a change that is still in force can be taken back: an undone one, or one followed by
    something else (the visit's status no longer what the change made it), cannot.
    """
    if undone:
        return "That change was already undone."
    if current != changed_to:
        return "The visit has changed since; that change can no longer be undone."
    if now >= undo_deadline(changed_at):
        minutes = int(UNDO_WINDOW.total_seconds() // 60)
        return f"A change can be undone for {minutes} minutes only; this one is older."
    return None


def restore_refusal(
    schedule: NurseSchedule, start: datetime, end: datetime, now: datetime, appointment_id: int
) -> str | None:
    """None when a visit at [start, end) may become scheduled again, else why not.

    Restoring never double-books: another visit (buffers included) taking that time since
    refuses it. A visit still ahead must also lie within the nurse's hours, time off removed;
    minimum notice and horizon are for new bookings, not for a visit that was already booked.
    """
    blocked = blocked_intervals(schedule, appointment_id)
    if any(low < end and start < high for low, high in blocked):
        return "Another visit now takes that time; book a new time instead."
    if start > now and not any(
        low <= start and end <= high for low, high in working_intervals(schedule, start, end)
    ):
        return "The nurse no longer works at that time (time off or changed hours)."
    return None
