"""Home: today's appointments, calls in progress, recent outcomes, notifications waiting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import redirect, url_for
from flask_login import current_user
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

from core.models import (
    Appointment,
    Call,
    CallbackRequest,
    CallbackStatus,
    CallStatus,
    Notification,
    NotificationStatus,
    Role,
)
from core.services import access
from webapp import channels, db
from webapp.auth import now_utc
from webapp.dashboard.common import (
    appointment_rows,
    blueprint,
    day_start,
    local_day,
    reads_only,
    render,
    viewer,
    viewer_zone,
    with_people,
)

bp = blueprint("home", __name__)

LIVE_STATUSES = (
    CallStatus.QUEUED,
    CallStatus.INITIATED,
    CallStatus.RINGING,
    CallStatus.IN_PROGRESS,
)


# The home page shows the first visits of the day and links to the full list; a busy agency's
# whole day is no glance.
HOME_APPOINTMENTS = 25
LIVE_CALLS = 20
RECENT_CALLS = 10


def _counts(day: Select[Appointment]) -> Select[Any]:
    """One row: today's visits, the notifications queued and the callers waiting for a call back."""
    queued = (
        select(func.count())
        .select_from(Notification)
        .where(
            Notification.status == NotificationStatus.QUEUED,
            # A channel without settings sends nothing: its messages are not "waiting".
            Notification.channel.in_(channels.delivering()),
        )
    )
    waiting = (
        select(func.count())
        .select_from(CallbackRequest)
        .where(CallbackRequest.status == CallbackStatus.OPEN)
    )
    return select(
        day.with_only_columns(func.count(), maintain_column_froms=True)
        .scalar_subquery()
        .label("todays_total"),
        queued.scalar_subquery().label("queued"),
        waiting.scalar_subquery().label("callbacks"),
    )


def _calls(scoped: Select[Call]) -> Select[Call]:
    """The newest live calls and the newest finished ones from `scoped`, newest first."""
    newest = (Call.created_at.desc(), Call.id.desc())
    ids = scoped.with_only_columns(Call.id).order_by(*newest)
    live = ids.where(Call.status.in_(LIVE_STATUSES)).limit(LIVE_CALLS)
    recent = ids.where(Call.status.not_in(LIVE_STATUSES)).limit(RECENT_CALLS)
    return (
        scoped.options(joinedload(Call.patient))
        .where(or_(Call.id.in_(live), Call.id.in_(recent)))
        .order_by(*newest)
    )


@bp.get("/")
@reads_only
def index() -> Response:
    """The day at a glance (nurses go to their own schedule)."""
    if current_user.role == Role.NURSE:
        return redirect(url_for("schedule.mine"))
    now = now_utc()
    tz = viewer_zone()
    today = local_day(now, tz)
    who = viewer()
    day = access.appointments(who).where(
        Appointment.start_at >= day_start(today, tz),
        Appointment.start_at < day_start(today + timedelta(days=1), tz),
    )
    counts = db.session.execute(_counts(day)).one()
    first = with_people(day.order_by(Appointment.start_at, Appointment.id).limit(HOME_APPOINTMENTS))
    calls = db.session.scalars(_calls(access.calls(who, now))).all()
    return render(
        "home/page.html",
        callbacks_waiting=counts.callbacks,
        today=today,
        appointments=appointment_rows(db.session.scalars(first)),
        todays_total=counts.todays_total,
        live_calls=[call for call in calls if call.status in LIVE_STATUSES],
        recent_calls=[call for call in calls if call.status not in LIVE_STATUSES],
        queued_notifications=counts.queued,
    )
