"""Home: today's appointments, calls in progress, recent outcomes, notifications waiting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from flask import redirect, url_for
from flask_login import current_user
from sqlalchemy import Select, func, select, union_all
from werkzeug.wrappers import Response

from core.models import (
    Appointment,
    Call,
    CallStatus,
    Notification,
    NotificationStatus,
    Patient,
    Role,
)
from core.services import access
from core.services.access import Viewer
from webapp import db
from webapp.auth import now_utc
from webapp.dashboard.common import (
    appointment_rows_counted,
    blueprint,
    day_start,
    local_day,
    render,
    viewer,
    viewer_zone,
)

bp = blueprint("home", __name__)

LIVE_STATUSES = (
    CallStatus.QUEUED,
    CallStatus.INITIATED,
    CallStatus.RINGING,
    CallStatus.IN_PROGRESS,
)


@dataclass(frozen=True, slots=True)
class CallLine:
    """A call as the home page lists it."""

    id: int
    status: str
    outcome: str | None
    created_at: datetime
    patient_name: str | None


def _call_lines(now: datetime) -> tuple[list[CallLine], list[CallLine]]:
    """The newest live calls and the newest finished ones, in one query."""
    who = viewer()
    query = _staff_calls_query() if who.sees_all else _calls_query(access.calls(who, now))
    live: list[CallLine] = []
    recent: list[CallLine] = []
    for row in db.session.execute(query):
        line = CallLine(
            id=row.id,
            status=row.status,
            outcome=row.outcome,
            created_at=row.created_at,
            patient_name=None if row.first_name is None else f"{row.first_name} {row.last_name}",
        )
        (live if line.status in LIVE_STATUSES else recent).append(line)
    return live, recent


def _calls_query(scoped: Select[tuple[Call]]) -> Select[Any]:
    """Both call lists from `scoped` (calls the viewer may see), newest first."""
    columns = scoped.with_only_columns(
        Call.id,
        Call.status,
        Call.outcome,
        Call.created_at,
        Patient.first_name,
        Patient.last_name,
        maintain_column_froms=True,
    ).outerjoin(Patient, Patient.id == Call.patient_id)
    newest = (Call.created_at.desc(), Call.id.desc())
    # Each part is ordered and limited inside its own subquery, which SQLite accepts too.
    parts = [
        columns.where(condition).order_by(*newest).limit(limit).subquery()
        for condition, limit in (
            (Call.status.in_(LIVE_STATUSES), LIVE_CALLS),
            (Call.status.not_in(LIVE_STATUSES), RECENT_CALLS),
        )
    ]
    both = union_all(*(select(part) for part in parts)).subquery()
    return select(both).order_by(both.c.created_at.desc(), both.c.id.desc())


@cache
def _staff_calls_query() -> Select[Any]:
    """`_calls_query` for staff, built once: building its subqueries cost ~0.7 ms a request."""
    # Staff see every call, so their scoped select depends on neither the login nor the time.
    staff = Viewer(user_id=None, role=Role.COORDINATOR)
    return _calls_query(access.calls(staff, datetime.now(UTC)))


# The home page shows the first visits of the day and links to the full list: a busy agency's
# whole day made the page the slowest in the dashboard (bench/dashboard.py).
HOME_APPOINTMENTS = 25
LIVE_CALLS = 20
RECENT_CALLS = 10


@bp.get("/")
def index() -> Response:
    """The day at a glance (nurses go to their own schedule)."""
    if current_user.role == "nurse":
        return redirect(url_for("schedule.mine"))
    now = now_utc()
    tz = viewer_zone()
    today = local_day(now, tz)
    start, end = day_start(today, tz), day_start(today + timedelta(days=1), tz)
    todays_stmt = access.appointments(viewer()).where(
        Appointment.start_at >= start, Appointment.start_at < end
    )
    # The day's total comes with its first rows, and both call lists with one query.
    todays, todays_total = appointment_rows_counted(
        todays_stmt.order_by(Appointment.start_at, Appointment.id).limit(HOME_APPOINTMENTS),
        todays_stmt,
    )
    live, recent = _call_lines(now)
    queued = db.session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.status == NotificationStatus.QUEUED)
    )
    return render(
        "home/page.html",
        today=today,
        appointments=todays,
        todays_total=todays_total,
        live_calls=live,
        recent_calls=recent,
        queued_notifications=queued or 0,
    )
