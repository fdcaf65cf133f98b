"""Calendars: a nurse's day or week (coordinators), and "My schedule" for a nurse login."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from flask import abort, request
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from core.errors import ValidationError
from core.models import Appointment, Nurse, NurseAvailabilityOverride, Role
from core.services import access
from core.services.availability import WEEKDAY_NAMES
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import (
    AppointmentRow,
    appointment_rows,
    blueprint,
    date_field,
    day_start,
    local_day,
    render,
    viewer,
    viewer_zone,
)

bp = blueprint("schedule", __name__)


@dataclass
class Day:
    """One calendar column: the date, the nurse's hours that day, overrides and visits."""

    day: date
    windows: list[str] = field(default_factory=list)
    overrides: list[NurseAvailabilityOverride] = field(default_factory=list)
    appointments: list[AppointmentRow] = field(default_factory=list)

    @property
    def name(self) -> str:
        """Weekday name."""
        return WEEKDAY_NAMES[self.day.weekday()]


def _calendar(nurse: Nurse, template: str) -> Response:
    tz = viewer_zone()
    view = "day" if request.args.get("view") == "day" else "week"
    try:
        anchor = date_field("date", "Date", required=False, source=request.args)
    except ValidationError:
        anchor = None
    anchor = anchor or local_day(now_utc(), tz)
    first = anchor if view == "day" else anchor - timedelta(days=anchor.weekday())
    count = 1 if view == "day" else 7
    days = [Day(first + timedelta(days=i)) for i in range(count)]
    by_date = {d.day: d for d in days}
    start, end = day_start(first, tz), day_start(first + timedelta(days=count), tz)
    rows = appointment_rows(
        access.appointments(viewer())
        .where(
            Appointment.nurse_id == nurse.id,
            Appointment.start_at >= start,
            Appointment.start_at < end,
        )
        .order_by(Appointment.start_at)
    )
    for row in rows:
        by_date[local_day(row.start_at, tz)].appointments.append(row)
    windows: dict[int, list[str]] = defaultdict(list)
    for rule in nurse.availability:
        windows[rule.weekday].append(f"{rule.start_time:%H:%M}-{rule.end_time:%H:%M}")
    overrides = db.session.scalars(
        select(NurseAvailabilityOverride).where(
            NurseAvailabilityOverride.nurse_id == nurse.id,
            NurseAvailabilityOverride.end_date >= first,
            NurseAvailabilityOverride.start_date < first + timedelta(days=count),
        )
    ).all()
    for d in days:
        d.windows = windows.get(d.day.weekday(), [])
        d.overrides = [o for o in overrides if o.start_date <= d.day <= o.end_date]
    step = timedelta(days=count)
    context: dict[str, Any] = {
        "nurse": nurse,
        "days": days,
        "view": view,
        "anchor": anchor,
        "prev_date": (first - step).isoformat(),
        "next_date": (first + step).isoformat(),
        "today": local_day(now_utc(), tz).isoformat(),
    }
    if template == "schedule/mine.html":
        context["upcoming_overrides"] = db.session.scalars(
            select(NurseAvailabilityOverride)
            .where(
                NurseAvailabilityOverride.nurse_id == nurse.id,
                NurseAvailabilityOverride.end_date >= local_day(now_utc(), tz),
            )
            .order_by(NurseAvailabilityOverride.start_date)
        ).all()
        context["weekdays"] = WEEKDAY_NAMES
    return render(template, "schedule/_calendar.html", **context)


@bp.get("/nurses/<int:nurse_id>/calendar")
@roles_required(Role.ADMIN, Role.COORDINATOR)
def calendar(nurse_id: int) -> Response:
    """A nurse's day or week."""
    nurse = access.get_nurse(db.session, viewer(), nurse_id)
    return _calendar(nurse, "schedule/calendar.html")


@bp.get("/my-schedule")
@roles_required(Role.NURSE)
def mine() -> Response:
    """The signed-in nurse's own day or week, hours and time off."""
    if current_user.nurse_id is None:
        abort(403)
    nurse = access.get_nurse(db.session, viewer(), current_user.nurse_id)
    return _calendar(nurse, "schedule/mine.html")
