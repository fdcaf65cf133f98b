"""Calendars: a nurse's day or week (coordinators), and "My schedule" for a nurse login."""

from __future__ import annotations

from collections.abc import Sequence
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
    Time,
    and_,
    bindparam,
    cast,
    null,
    or_,
    select,
    union_all,
)
from werkzeug.wrappers import Response

from core.db import AnySelect
from core.models import (
    Appointment,
    Nurse,
    NurseAvailability,
    NurseAvailabilityOverride,
    Role,
    nurse_display_name,
)
from core.scheduling import WeeklyRule
from core.services import access
from core.services.access import Viewer
from core.services.availability import WEEKDAY_NAMES
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import (
    APPOINTMENT_ROW_WIDTH,
    AppointmentRow,
    appointment_rows_select,
    blueprint,
    date_field,
    day_start,
    local_day,
    no_appointment_row,
    read_appointment_rows,
    reads_only,
    render,
    viewer,
    viewer_zone,
)
from webapp.dashboard.time_off import my_requests_context

bp = blueprint("schedule", __name__)

# Staff see every nurse and visit: their queries depend on nothing about the login.
STAFF = Viewer(user_id=None, role=Role.COORDINATOR)


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
    hours: list[WeeklyRule]  # the scheduling engine's own rules, dates of validity included
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


def _calendar_query(
    nurses: Select[Nurse], visits: Select[Appointment], upcoming: bool
) -> AnySelect:
    """The nurse's row from `nurses`, joined to their hours, overrides and visits.

    Parameters: `nurse_id`; overrides overlapping [`first`, `after`), and with `upcoming` also
    every one ending on or after `upcoming_from`; visits from `visits` starting in
    [`start`, `end`). Columns: the nurse's five, the appointment row's, then the rule's six
    (a weekly rule's dates are the ones it is valid between).
    """
    # One statement for the whole page: hours, overrides and visits share a UNION ALL, each
    # part NULL in the others' columns, joined to the nurse's row so that a nurse with none
    # of them still comes back. Each statement cost ~0.25 ms of Python (bench/dashboard.py).
    nurse_id = bindparam("nurse_id", type_=Integer)
    shown = and_(
        NurseAvailabilityOverride.end_date >= bindparam("first"),
        NurseAvailabilityOverride.start_date < bindparam("after"),
    )
    if upcoming:
        shown = or_(shown, NurseAvailabilityOverride.end_date >= bindparam("upcoming_from"))
    no_row = no_appointment_row()
    # The first part names the UNION's columns, so its NULLs carry the rules' names.
    no_rule = (
        cast(null(), Integer).label("weekday"),
        cast(null(), String).label("rule_kind"),
        cast(null(), Date).label("start_date"),
        cast(null(), Date).label("end_date"),
        cast(null(), Time).label("start_time"),
        cast(null(), Time).label("end_time"),
    )
    parts = union_all(
        appointment_rows_select(
            visits.where(
                Appointment.nurse_id == nurse_id,
                Appointment.start_at >= bindparam("start"),
                Appointment.start_at < bindparam("end"),
            ),
            *no_rule,
            Appointment.nurse_id,
        ),
        select(
            *no_row,
            NurseAvailability.weekday,
            no_rule[1],
            NurseAvailability.valid_from,
            NurseAvailability.valid_to,
            NurseAvailability.start_time,
            NurseAvailability.end_time,
            NurseAvailability.nurse_id,
        ).where(NurseAvailability.nurse_id == nurse_id),
        select(
            *no_row,
            no_rule[0],
            NurseAvailabilityOverride.kind,
            NurseAvailabilityOverride.start_date,
            NurseAvailabilityOverride.end_date,
            NurseAvailabilityOverride.start_time,
            NurseAvailabilityOverride.end_time,
            NurseAvailabilityOverride.nurse_id,
        ).where(NurseAvailabilityOverride.nurse_id == nurse_id, shown),
    ).subquery()
    *columns, part_nurse_id = parts.c
    rule = columns[len(no_row) :]
    # Hours by weekday and start, overrides by date, visits by start: the other parts' keys
    # are NULL, and where NULLs sort does not matter.
    order = (rule[0], rule[2], rule[4], columns[1])
    return (
        nurses.with_only_columns(
            Nurse.title,
            Nurse.first_name,
            Nurse.last_name,
            Nurse.time_zone,
            Nurse.calendar_token_hash,
            *columns,
        )
        .join_from(Nurse, parts, part_nurse_id == Nurse.id, isouter=True)
        .where(Nurse.id == nurse_id)
        .order_by(*order)
    )


# Where each part's columns start in a `_calendar_query` row: the visit's id, the rule's weekday.
_VISIT = 5
_RULE = _VISIT + APPOINTMENT_ROW_WIDTH


@cache
def _staff_calendar_query() -> AnySelect:
    """`_calendar_query` for staff, built once: building it cost more than running it."""
    return _calendar_query(access.nurses(STAFF), access.appointments(STAFF), False)


def _calendar_data(
    nurse_id: int, first: date, after: date, tz: str, upcoming_from: date | None = None
) -> tuple[CalendarNurse, list[AppointmentRow]]:
    """The nurse if the viewer may see them, with hours, overrides and visits, in one query.

    Overrides are those overlapping [first, after), and with `upcoming_from` also every one
    ending on or after that date; visits those the viewer may see in those days in `tz`.
    NotFound when the nurse is missing or out of scope.
    """
    # Columns, not the Nurse and its rules as ORM objects in three statements: those cost
    # more than the rest of the page (bench/dashboard.py).
    who = viewer()
    upcoming = upcoming_from is not None
    query = (
        _staff_calendar_query()
        if who.sees_all and not upcoming
        else _calendar_query(access.nurses(who), access.appointments(who), upcoming)
    )
    params = {
        "nurse_id": nurse_id,
        "first": first,
        "after": after,
        "upcoming_from": upcoming_from,
        "start": day_start(first, tz),
        "end": day_start(after, tz),
    }
    result = db.session.execute(query, params).all()
    if not result:
        raise access.not_found(Nurse, nurse_id)
    hours: list[WeeklyRule] = []
    overrides: list[Override] = []
    visits: list[Sequence[Any]] = []
    for row in result:
        if row[_VISIT] is not None:
            visits.append(row[_VISIT:])
        elif row[_RULE] is not None:
            weekday, _, valid_from, valid_to, start_time, end_time = row[_RULE:]
            hours.append(WeeklyRule(weekday, start_time, end_time, valid_from, valid_to))
        elif row[_RULE + 1] is not None:
            overrides.append(Override(*row[_RULE + 1 :]))
    title, first_name, last_name, time_zone, token_hash = result[0][:5]
    nurse = CalendarNurse(
        id=nurse_id,
        display_name=nurse_display_name(title, first_name, last_name),
        time_zone=time_zone,
        calendar_token_hash=token_hash,
        hours=hours,
        overrides=overrides,
    )
    return nurse, read_appointment_rows(visits)


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
        "nurse": nurse,
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
