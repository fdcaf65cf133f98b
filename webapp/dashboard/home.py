"""Home: today's appointments, calls in progress, recent outcomes, notifications waiting."""

from __future__ import annotations

from datetime import timedelta

from flask import redirect, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

from core.models import Appointment, Call, CallStatus, Notification, NotificationStatus
from core.services import access
from webapp import db
from webapp.auth import now_utc
from webapp.dashboard.common import (
    appointment_rows,
    blueprint,
    count_rows,
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


# The home page shows the first visits of the day and links to the full list: a busy agency's
# whole day made the page the slowest in the dashboard (bench/dashboard.py).
HOME_APPOINTMENTS = 25


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
    todays = appointment_rows(
        todays_stmt.order_by(Appointment.start_at, Appointment.id).limit(HOME_APPOINTMENTS)
    )
    todays_total = len(todays) if len(todays) < HOME_APPOINTMENTS else count_rows(todays_stmt)
    live = db.session.scalars(
        access.calls(viewer(), now)
        .where(Call.status.in_(LIVE_STATUSES))
        .options(joinedload(Call.patient))
        .order_by(Call.created_at.desc())
        .limit(20)
    ).all()
    recent = db.session.scalars(
        access.calls(viewer(), now)
        .where(Call.status.not_in(LIVE_STATUSES))
        .options(joinedload(Call.patient))
        .order_by(Call.created_at.desc())
        .limit(10)
    ).all()
    queued = db.session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.status == NotificationStatus.QUEUED)
    )
    return render(
        "home/page.html",
        today=today,
        appointments=todays,
        todays_total=todays_total or 0,
        live_calls=live,
        recent_calls=recent,
        queued_notifications=queued or 0,
    )
