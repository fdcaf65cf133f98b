"""Calendars: a nurse's day or week (coordinators), and "My schedule" for a nurse login."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

from flask import abort, request
from flask_login import current_user
from sqlalchemy import and_, or_
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.wrappers import Response

from core.models import Appointment, Nurse, NurseAvailabilityOverride, Role
from core.scheduling import WeeklyRule
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
    reads_only,
    render,
    viewer,
    viewer_zone,
    with_people,
)
from webapp.dashboard.time_off import my_requests_context

bp = blueprint("schedule", __name__)


@dataclass(frozen=True, slots=True)
class CalendarNurse:
    """The nurse a calendar shows, with their weekly hours and the overrides it needs."""

    nurse: Nurse
    hours: list[WeeklyRule]  # the scheduling engine's own rules, dates of validity included
    overrides: list[NurseAvailabilityOverride]  # by start date and time


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


def _calendar_data(
    nurse_id: int, first: date, after: date, tz: str, upcoming_from: date | None = None
) -> tuple[CalendarNurse, list[AppointmentRow]]:
    """The nurse if the viewer may see them, with hours, overrides and visits.

    Overrides are those overlapping [first, after), and with `upcoming_from` also every one
    ending on or after that date; visits those the viewer may see in those days in `tz`.
    NotFound when the nurse is missing or out of scope.
    """
    who = viewer()
    shown = and_(
        NurseAvailabilityOverride.end_date >= first,
        NurseAvailabilityOverride.start_date < after,
    )
    if upcoming_from is not None:
        shown = or_(shown, NurseAvailabilityOverride.end_date >= upcoming_from)
    # Two statements: the nurse with her weekly hours (a handful of rows), then her overrides.
    nurse = (
        db.session.scalars(
            access.nurses(who)
            .where(Nurse.id == nurse_id)
            .options(
                joinedload(Nurse.availability),
                selectinload(Nurse.overrides.and_(shown)),
            )
        )
        .unique()
        .one_or_none()
    )
    if nurse is None:
        raise access.not_found(Nurse, nurse_id)
    visits = with_people(
        access.appointments(who)
        .where(
            Appointment.nurse_id == nurse_id,
            Appointment.start_at >= day_start(first, tz),
            Appointment.start_at < day_start(after, tz),
        )
        .order_by(Appointment.start_at, Appointment.id)
    )
    hours = [
        WeeklyRule(rule.weekday, rule.start_time, rule.end_time, rule.valid_from, rule.valid_to)
        for rule in nurse.availability
    ]
    overrides = sorted(nurse.overrides, key=lambda o: (o.start_date, o.start_time or time.min))
    calendar = CalendarNurse(nurse=nurse, hours=hours, overrides=overrides)
    return calendar, appointment_rows(db.session.scalars(visits))


def _calendar(nurse_id: int, template: str) -> Response:
    tz = viewer_zone()
    view = "day" if request.args.get("view") == "day" else "week"
    # A date the calendar cannot show is refused (400, saying which dates it can).
    anchor = date_field("date", "Date", required=False, source=request.args)
    today = local_day(now_utc(), tz)
    anchor = anchor or today
    first = anchor if view == "day" else anchor - timedelta(days=anchor.weekday())
    count = 1 if view == "day" else 7
    after = first + timedelta(days=count)
    mine = template == "schedule/mine.html"
    nurse, rows = _calendar_data(nurse_id, first, after, tz, today if mine else None)
    days = [Day(first + timedelta(days=i)) for i in range(count)]
    by_date = {d.day: d for d in days}
    for row in rows:
        by_date[local_day(row.start_at, tz)].appointments.append(row)
    for d in days:
        # Hours that start or stop on a date (a new rota) apply from that date only.
        applying = sorted((h for h in nurse.hours if h.applies_on(d.day)), key=_start_of)
        d.windows = [f"{h.start:%H:%M}-{h.end:%H:%M}" for h in applying]
        d.overrides = [o for o in nurse.overrides if o.start_date <= d.day <= o.end_date]
    step = timedelta(days=count)
    context: dict[str, Any] = {
        "nurse": nurse.nurse,
        "days": days,
        "view": view,
        "anchor": anchor,
        "prev_date": (first - step).isoformat(),
        "next_date": (first + step).isoformat(),
        "today": today.isoformat(),
    }
    if mine:
        context["weekly_hours"] = sorted(
            (h for h in nurse.hours if h.valid_to is None or h.valid_to >= today), key=_start_of
        )
        context["upcoming_overrides"] = [o for o in nurse.overrides if o.end_date >= today]
        context["weekdays"] = WEEKDAY_NAMES
        # Her visits that have started can be marked completed from here (after confirming).
        context["complete_from"] = now_utc()
        context.update(my_requests_context(nurse_id))
    return render(template, "schedule/_calendar.html", **context)


def _start_of(hours: WeeklyRule) -> tuple[time, date]:
    return hours.start, hours.valid_from or date.min


@bp.get("/nurses/<int:nurse_id>/calendar")
@reads_only
@roles_required(Role.ADMIN, Role.COORDINATOR)
def calendar(nurse_id: int) -> Response:
    """A nurse's day or week."""
    return _calendar(nurse_id, "schedule/calendar.html")


@bp.get("/my-schedule")
@reads_only
@roles_required(Role.NURSE)
def mine() -> Response:
    """The signed-in nurse's own day or week, hours and time off."""
    if current_user.nurse_id is None:
        abort(403)
    return _calendar(current_user.nurse_id, "schedule/mine.html")
