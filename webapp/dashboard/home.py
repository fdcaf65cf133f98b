"""Home: today's appointments, calls in progress, recent outcomes, notifications waiting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from flask import redirect, url_for
from flask_login import current_user
from sqlalchemy import Integer, Select, bindparam, cast, func, null, select, union_all
from werkzeug.wrappers import Response

from core.db import AnySelect
from core.models import (
    Appointment,
    Call,
    CallbackRequest,
    CallbackStatus,
    CallStatus,
    Notification,
    NotificationStatus,
    Patient,
    Role,
)
from core.services import access
from core.services.access import Viewer
from webapp import channels, db
from webapp.auth import now_utc
from webapp.dashboard.common import (
    appointment_rows_select,
    blueprint,
    count_select,
    day_start,
    local_day,
    read_appointment_rows,
    reads_only,
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


def _calls_and_queue(now: datetime) -> tuple[list[CallLine], list[CallLine], int, int]:
    """The newest live calls, the newest finished ones, the notifications queued and the
    callers waiting for a call back."""
    who = viewer()
    query = _staff_calls_query() if who.sees_all else _calls_query(access.calls(who, now))
    live: list[CallLine] = []
    recent: list[CallLine] = []
    queued = callbacks = 0
    for row in db.session.execute(query, {"delivering": channels.delivering()}):
        if row.id is None:  # the one row that carries the counts
            queued, callbacks = row.queued, row.callbacks
            continue
        line = CallLine(
            id=row.id,
            status=row.status,
            outcome=row.outcome,
            created_at=row.created_at,
            patient_name=None if row.first_name is None else f"{row.first_name} {row.last_name}",
        )
        (live if line.status in LIVE_STATUSES else recent).append(line)
    return live, recent, queued, callbacks


_CALL_COLUMNS = (
    Call.id,
    Call.status,
    Call.outcome,
    Call.created_at,
    Patient.first_name,
    Patient.last_name,
)


def _calls_query(scoped: Select[Call]) -> AnySelect:
    """Both call lists from `scoped` (calls the viewer may see), newest first.

    One more row, its call columns NULL, counts the notifications queued and the callers waiting
    for a call back: a statement of its own cost about 0.3 ms of Python per request
    (bench/dashboard.py).
    """
    columns = scoped.with_only_columns(
        *_CALL_COLUMNS,
        cast(null(), Integer).label("queued"),
        cast(null(), Integer).label("callbacks"),
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
    waiting = (
        select(func.count())
        .select_from(CallbackRequest)
        .where(CallbackRequest.status == CallbackStatus.OPEN)
        .scalar_subquery()
    )
    queue = (
        select(*(cast(null(), column.type) for column in _CALL_COLUMNS), func.count(), waiting)
        .select_from(Notification)
        .where(
            Notification.status == NotificationStatus.QUEUED,
            # A channel without settings sends nothing: its messages are not "waiting".
            Notification.channel.in_(bindparam("delivering", expanding=True)),
        )
    )
    both = union_all(*(select(part) for part in parts), queue).subquery()
    return select(both).order_by(both.c.created_at.desc(), both.c.id.desc())


@cache
def _staff_calls_query() -> AnySelect:
    """`_calls_query` for staff, built once: building its subqueries cost ~0.7 ms a request."""
    # Staff see every call, so their scoped select depends on neither the login nor the time.
    return _calls_query(access.calls(_STAFF, datetime.now(UTC)))


def _todays_query(scoped: Select[Appointment], start: Any, end: Any) -> AnySelect:
    """The first rows of [start, end) from `scoped`, each with the total as its last column."""
    day = scoped.where(Appointment.start_at >= start, Appointment.start_at < end)
    # A scalar subquery on the unjoined select: PostgreSQL counts it once, from the index.
    return appointment_rows_select(
        day.order_by(Appointment.start_at, Appointment.id).limit(HOME_APPOINTMENTS),
        count_select(day).scalar_subquery(),
    )


@cache
def _staff_todays_query() -> AnySelect:
    """`_todays_query` for staff, built once with the day as parameters (~0.5 ms a request)."""
    return _todays_query(access.appointments(_STAFF), bindparam("start"), bindparam("end"))


# Staff see every appointment and call whoever they are, so their statements are shared.
_STAFF = Viewer(user_id=None, role=Role.COORDINATOR)

# The home page shows the first visits of the day and links to the full list: a busy agency's
# whole day made the page the slowest in the dashboard (bench/dashboard.py).
HOME_APPOINTMENTS = 25
LIVE_CALLS = 20
RECENT_CALLS = 10


@bp.get("/")
@reads_only
def index() -> Response:
    """The day at a glance (nurses go to their own schedule)."""
    if current_user.role == Role.NURSE:
        return redirect(url_for("schedule.mine"))
    now = now_utc()
    tz = viewer_zone()
    today = local_day(now, tz)
    start, end = day_start(today, tz), day_start(today + timedelta(days=1), tz)
    who = viewer()
    if who.sees_all:
        result = db.session.execute(_staff_todays_query(), {"start": start, "end": end}).all()
    else:
        result = db.session.execute(_todays_query(access.appointments(who), start, end)).all()
    todays = read_appointment_rows(result)
    todays_total = result[0][-1] if result else 0
    live, recent, queued, waiting = _calls_and_queue(now)
    return render(
        "home/page.html",
        callbacks_waiting=waiting,
        today=today,
        appointments=todays,
        todays_total=todays_total,
        live_calls=live,
        recent_calls=recent,
        queued_notifications=queued,
    )
