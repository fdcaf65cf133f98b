"""Calendars: a nurse's day or week (coordinators), and "My schedule" for a nurse login."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from functools import cache
from typing import Any

from flask import abort, request
from flask_login import current_user
from sqlalchemy import (
    Date,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    cast,
    null,
    or_,
    select,
    union_all,
)
from werkzeug.wrappers import Response

from core.errors import ValidationError
from core.models import (
    Appointment,
    Nurse,
    NurseAvailability,
    NurseAvailabilityOverride,
    Role,
    nurse_display_name,
)
from core.services import access
from core.services.access import Viewer
from core.services.availability import WEEKDAY_NAMES
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import (
    AppointmentRow,
    appointment_rows_select,
    blueprint,
    date_field,
    day_start,
    local_day,
    read_appointment_rows,
    render,
    viewer,
    viewer_zone,
)

bp = blueprint("schedule", __name__)

# Staff see every nurse and visit: their queries depend on nothing about the login.
STAFF = Viewer(user_id=None, role=Role.COORDINATOR)


@dataclass(frozen=True, slots=True)
class Hours:
    """One weekly window of the nurse's hours, in the nurse's zone."""

    weekday: int
    start_time: time
    end_time: time


@dataclass(frozen=True, slots=True)
class Override:
    """Time off or extra hours, as the calendar and "My schedule" show it."""

    kind: str
    start_date: date
    end_date: date
    start_time: time | None
    end_time: time | None

    @property
    def all_day(self) -> bool:
        """True when the override covers whole days."""
        return self.start_time is None


@dataclass(frozen=True, slots=True)
class CalendarNurse:
    """The nurse a calendar shows, with their weekly hours and the overrides it needs."""

    id: int
    display_name: str
    time_zone: str
    calendar_token_hash: str | None  # whether "My schedule" offers to turn a feed link off
    hours: list[Hours]
    overrides: list[Override]  # by start date


@dataclass
class Day:
    """One calendar column: the date, the nurse's hours that day, overrides and visits."""

    day: date
    windows: list[str] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)
    appointments: list[AppointmentRow] = field(default_factory=list)

    @property
    def name(self) -> str:
        """Weekday name."""
        return WEEKDAY_NAMES[self.day.weekday()]


def _nurse_query(scoped: Select[tuple[Nurse]], upcoming: bool) -> Select[Any]:
    """The nurse's row from `scoped`, joined to their weekly hours and overrides.

    Parameters: `nurse_id`; overrides overlapping [`first`, `after`), and with `upcoming` also
    every one ending on or after `upcoming_from`.
    """
    # Weekly hours and overrides share one UNION ALL (an override's weekday is NULL), joined
    # to the nurse's row so that a nurse with neither still comes back.
    nurse_id = bindparam("nurse_id")
    shown = and_(
        NurseAvailabilityOverride.end_date >= bindparam("first"),
        NurseAvailabilityOverride.start_date < bindparam("after"),
    )
    if upcoming:
        shown = or_(shown, NurseAvailabilityOverride.end_date >= bindparam("upcoming_from"))
    rules = union_all(
        select(
            NurseAvailability.nurse_id,
            NurseAvailability.weekday,
            cast(null(), String).label("kind"),
            cast(null(), Date).label("start_date"),
            cast(null(), Date).label("end_date"),
            NurseAvailability.start_time,
            NurseAvailability.end_time,
        ).where(NurseAvailability.nurse_id == nurse_id),
        select(
            NurseAvailabilityOverride.nurse_id,
            cast(null(), Integer).label("weekday"),
            NurseAvailabilityOverride.kind,
            NurseAvailabilityOverride.start_date,
            NurseAvailabilityOverride.end_date,
            NurseAvailabilityOverride.start_time,
            NurseAvailabilityOverride.end_time,
        ).where(NurseAvailabilityOverride.nurse_id == nurse_id, shown),
    ).subquery()
    return (
        scoped.with_only_columns(
            Nurse.title,
            Nurse.first_name,
            Nurse.last_name,
            Nurse.time_zone,
            Nurse.calendar_token_hash,
            rules.c.weekday,
            rules.c.kind,
            rules.c.start_date,
            rules.c.end_date,
            rules.c.start_time,
            rules.c.end_time,
        )
        .join_from(Nurse, rules, rules.c.nurse_id == Nurse.id, isouter=True)
        .where(Nurse.id == nurse_id)
        .order_by(rules.c.weekday, rules.c.start_date, rules.c.start_time)
    )


def _visits_query(scoped: Select[tuple[Appointment]]) -> Select[Any]:
    """Appointment rows of `nurse_id` from `scoped` starting in [`start`, `end`), in order."""
    return appointment_rows_select(
        scoped.where(
            Appointment.nurse_id == bindparam("nurse_id"),
            Appointment.start_at >= bindparam("start"),
            Appointment.start_at < bindparam("end"),
        ).order_by(Appointment.start_at)
    )


@cache
def _staff_visits_query() -> Select[Any]:
    """`_visits_query` for staff, built once (see `_staff_nurse_query`)."""
    return _visits_query(access.appointments(STAFF))


@cache
def _staff_nurse_query() -> Select[Any]:
    """`_nurse_query` for staff, built once: building it cost more than running it."""
    return _nurse_query(access.nurses(STAFF), False)


def _calendar_nurse(
    nurse_id: int, first: date, after: date, upcoming_from: date | None = None
) -> CalendarNurse:
    """The nurse if the viewer may see them, with hours and the overrides shown, in one query.

    Overrides are those overlapping [first, after), and with `upcoming_from` also every one
    ending on or after that date. NotFound when the nurse is missing or out of scope.
    """
    # Columns, not the Nurse and its rules as ORM objects in three statements: those cost
    # more than the rest of the page (bench/dashboard.py).
    who = viewer()
    upcoming = upcoming_from is not None
    query = (
        _staff_nurse_query()
        if who.sees_all and not upcoming
        else _nurse_query(access.nurses(who), upcoming)
    )
    params = {"nurse_id": nurse_id, "first": first, "after": after, "upcoming_from": upcoming_from}
    result = db.session.execute(query, params).all()
    if not result:
        raise access.not_found(Nurse, nurse_id)
    hours: list[Hours] = []
    overrides: list[Override] = []
    for row in result:
        if row[5] is not None:
            hours.append(Hours(row[5], row[9], row[10]))
        elif row[6] is not None:
            overrides.append(Override(row[6], row[7], row[8], row[9], row[10]))
    title, first_name, last_name, time_zone, token_hash = result[0][:5]
    return CalendarNurse(
        id=nurse_id,
        display_name=nurse_display_name(title, first_name, last_name),
        time_zone=time_zone,
        calendar_token_hash=token_hash,
        hours=hours,
        overrides=overrides,
    )


def _calendar(nurse_id: int, template: str) -> Response:
    tz = viewer_zone()
    view = "day" if request.args.get("view") == "day" else "week"
    try:
        anchor = date_field("date", "Date", required=False, source=request.args)
    except ValidationError:
        anchor = None
    today = local_day(now_utc(), tz)
    anchor = anchor or today
    first = anchor if view == "day" else anchor - timedelta(days=anchor.weekday())
    count = 1 if view == "day" else 7
    after = first + timedelta(days=count)
    mine = template == "schedule/mine.html"
    who = viewer()
    nurse = _calendar_nurse(nurse_id, first, after, today if mine else None)
    days = [Day(first + timedelta(days=i)) for i in range(count)]
    by_date = {d.day: d for d in days}
    visits = _staff_visits_query() if who.sees_all else _visits_query(access.appointments(who))
    window = {"nurse_id": nurse_id, "start": day_start(first, tz), "end": day_start(after, tz)}
    rows = read_appointment_rows(db.session.execute(visits, window).all())
    for row in rows:
        by_date[local_day(row.start_at, tz)].appointments.append(row)
    windows: dict[int, list[str]] = defaultdict(list)
    for rule in nurse.hours:
        windows[rule.weekday].append(f"{rule.start_time:%H:%M}-{rule.end_time:%H:%M}")
    for d in days:
        d.windows = windows.get(d.day.weekday(), [])
        d.overrides = [o for o in nurse.overrides if o.start_date <= d.day <= o.end_date]
    step = timedelta(days=count)
    context: dict[str, Any] = {
        "nurse": nurse,
        "days": days,
        "view": view,
        "anchor": anchor,
        "prev_date": (first - step).isoformat(),
        "next_date": (first + step).isoformat(),
        "today": today.isoformat(),
    }
    if mine:
        context["upcoming_overrides"] = [o for o in nurse.overrides if o.end_date >= today]
        context["weekdays"] = WEEKDAY_NAMES
    return render(template, "schedule/_calendar.html", **context)


@bp.get("/nurses/<int:nurse_id>/calendar")
@roles_required(Role.ADMIN, Role.COORDINATOR)
def calendar(nurse_id: int) -> Response:
    """A nurse's day or week."""
    return _calendar(nurse_id, "schedule/calendar.html")


@bp.get("/my-schedule")
@roles_required(Role.NURSE)
def mine() -> Response:
    """The signed-in nurse's own day or week, hours and time off."""
    if current_user.nurse_id is None:
        abort(403)
    return _calendar(current_user.nurse_id, "schedule/mine.html")
