"""Time grids: a nurse's day or week, a team's day, and a nurse's printable route sheet."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import abort, make_response, request, url_for
from flask_login import current_user
from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

from core.errors import ValidationError
from core.grid import MAX_COLUMNS, MAX_ROWS, ColumnInput, Grid, GridVisit, layout
from core.models import Appointment, AppointmentKind, AppointmentStatus, Nurse, Role
from core.scheduling import zone
from core.services import access
from core.services.common import audit
from core.services.schedules import load_schedules
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import (
    actor,
    blueprint,
    date_field,
    day_start,
    label,
    local_day,
    page_number,
    reads_only,
    render,
    viewer,
    viewer_zone,
    with_people,
)
from webapp.dashboard.nurses import COMMON_ZONES

bp = blueprint("grid", __name__)
STAFF = (Role.ADMIN, Role.COORDINATOR)
# What a grid draws: a cancelled visit (a moved one, above all) no longer holds its time.
SHOWN = (AppointmentStatus.SCHEDULED, AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW)
# Longest specialisation name the board filters by; anything longer cannot match a nurse.
FILTER_LENGTH = 100


@dataclass(frozen=True, slots=True)
class VisitCard:
    """What a visit block shows: its times in the grid's zone, patient and kind."""

    times: str
    patient_name: str
    kind: str
    address: str
    local_day: date  # in the viewer's zone: the day the reschedule form opens on


def _zone_arg(default: str) -> str:
    """The zone the grid is drawn in: `tz` when given (an unknown one is refused), else
    `default`."""
    name = request.args.get("tz", "").strip() or default
    zone(name)  # a ValidationError naming the problem: the blueprint answers 400
    return name


def _zones(*first: str) -> list[str]:
    """The zone select's options: the given ones first, then the common ones."""
    return list(dict.fromkeys([*first, *COMMON_ZONES]))


def _visits(
    nurse_ids: list[int], low: datetime, high: datetime, tz: str
) -> dict[int, list[GridVisit]]:
    """The viewer's visible visits of these nurses touching [low, high), by nurse."""
    rows = db.session.scalars(
        access.appointments(viewer())
        .where(
            Appointment.nurse_id.in_(nurse_ids),
            Appointment.status.in_(SHOWN),
            Appointment.start_at < high,
            Appointment.end_at > low,
        )
        .options(joinedload(Appointment.patient))  # the nurse is the column's own
        .order_by(Appointment.start_at, Appointment.id)
    )
    shown_in, mine = zone(tz), viewer_zone()
    found: dict[int, list[GridVisit]] = {n: [] for n in nurse_ids}
    for visit in rows:
        start, end = visit.start_at.astimezone(shown_in), visit.end_at.astimezone(shown_in)
        card = VisitCard(
            times=f"{start:%H:%M}\u2013{end:%H:%M}",
            patient_name=visit.patient.full_name,
            kind=label(visit.kind, AppointmentKind),
            address=visit.patient.address if visit.kind == AppointmentKind.HOME_VISIT else "",
            local_day=local_day(visit.start_at, mine),
        )
        found[visit.nurse_id].append(
            GridVisit(visit.id, visit.start_at, visit.end_at, visit.status, card)
        )
    return found


def _free_links(grid: Grid, nurse_for: Any) -> dict[tuple[int, int], tuple[str, str]]:
    """Booking-form links of the free rows and their times, by (column, line): staff book
    there."""
    if current_user.role not in STAFF:
        return {}
    base, mine, shown_in = url_for("appointments.new"), zone(viewer_zone()), zone(grid.time_zone)
    # A board's columns share their rows' instants: each is written out once, not per nurse.
    written: dict[datetime, tuple[str, str]] = {}
    links = {}
    for free in grid.free:
        if free.start not in written:
            # The instant is UTC ("+00:00"): its "+" is the one character a query must escape.
            at = free.start.isoformat().replace("+", "%2B")
            day = free.start.astimezone(mine).date().isoformat()
            written[free.start] = (
                f"&at={at}&day={day}",
                f"{free.start.astimezone(shown_in):%H:%M}",
            )
        query, shown = written[free.start]
        links[free.column, free.line] = (f"{base}?nurse_id={nurse_for(free.key).id}{query}", shown)
    return links


# ------------------------------------------------------------------ a nurse's day or week


def _nurse(nurse_id: int) -> Nurse:
    nurse = db.session.scalar(access.nurses(viewer()).where(Nurse.id == nurse_id))
    if nurse is None:
        raise access.not_found(Nurse, nurse_id)
    return nurse


def _nurse_grid(nurse_id: int, template: str) -> Response:
    nurse = _nurse(nurse_id)
    tz = _zone_arg(nurse.time_zone)
    day = date_field("day", "Day", required=False, source=request.args)
    week = date_field("week", "Week", required=False, source=request.args)
    now = now_utc()
    today = local_day(now, tz)
    if day is not None:
        days = [day]
    else:
        anchor = week or today
        monday = anchor - timedelta(days=anchor.weekday())
        days = [monday + timedelta(days=n) for n in range(7)]
    low, high = day_start(days[0], tz), day_start(days[-1] + timedelta(days=1), tz)
    schedule = load_schedules(db.session(), [nurse], low, high, now=now)[nurse.id]
    visits = _visits([nurse.id], low, high, tz)[nurse.id]
    grid = layout(
        [ColumnInput(d, d, schedule, [v for v in visits if _touches(v, d, tz)]) for d in days],
        tz,
        now,
    )
    step = timedelta(days=len(days))
    move = {"day": "", "week": ""}
    key = "day" if day is not None else "week"
    return render(
        template,
        "grid/_nurse_grid.html",
        nurse=nurse,
        grid=grid,
        free_links=_free_links(grid, lambda _: nurse),
        view=key,
        tz=tz,
        zones=_zones(nurse.time_zone, viewer_zone(), tz),
        first=days[0],
        last=days[-1],
        here=request.path,
        earlier={**move, key: (days[0] - step).isoformat(), "tz": tz},
        later={**move, key: (days[0] + step).isoformat(), "tz": tz},
        this={**move, key: today.isoformat(), "tz": tz},
        other_view=(
            {"week": days[0].isoformat(), "tz": tz}
            if day is not None
            else {"day": (today if today in days else days[0]).isoformat(), "tz": tz}
        ),
        can_manage=current_user.role in STAFF,
        keep={key: days[0].isoformat()},
    )


def _touches(visit: GridVisit, day: date, tz: str) -> bool:
    return visit.start < day_start(day + timedelta(days=1), tz) and visit.end > day_start(day, tz)


@bp.get("/nurses/<int:nurse_id>/grid")
@reads_only
@roles_required(*STAFF)
def nurse_grid(nurse_id: int) -> Response:
    """A nurse's week (or, with `day`, one day) as a time grid, in her zone or `tz`."""
    return _nurse_grid(nurse_id, "grid/nurse.html")


@bp.get("/my-schedule/grid")
@reads_only
@roles_required(Role.NURSE)
def my_grid() -> Response:
    """The signed-in nurse's own week or day as a time grid."""
    if current_user.nurse_id is None:
        abort(403)
    return _nurse_grid(current_user.nurse_id, "grid/mine.html")


# ------------------------------------------------------------------ the team's day


@bp.get("/team-day")
@reads_only
@roles_required(*STAFF)
def team_day() -> Response:
    """Active nurses side by side on one day, 20 to a page, filtered by specialisation."""
    tz = _zone_arg(viewer_zone())
    now = now_utc()
    day = date_field("day", "Day", required=False, source=request.args) or local_day(now, tz)
    wanted = request.args.get("specialization", "").strip()
    if len(wanted) > FILTER_LENGTH:
        raise ValidationError(f"A specialisation is at most {FILTER_LENGTH} characters.")
    active = access.nurses(viewer()).where(Nurse.active.is_(True))
    # Each nurse's specialisations are a JSON list. The team shares a handful of distinct
    # lists: read those as text (no JSON operators, which differ between the databases, and
    # no decoding a thousand rows), match them here, then ask for the nurses holding them.
    as_text = cast(Nurse.specializations, String)
    lists = {
        text: json.loads(text) or []
        for text in db.session.scalars(active.with_only_columns(as_text).distinct())
        if text
    }
    known = sorted(
        {s.strip() for specs in lists.values() for s in specs if s.strip()}, key=str.lower
    )
    if wanted:
        held = [
            t for t, specs in lists.items() if wanted.lower() in {s.strip().lower() for s in specs}
        ]
        active = active.where(as_text.in_(held))
    matching = (
        db.session.scalar(
            select(func.count()).select_from(active.with_only_columns(Nurse.id).subquery())
        )
        or 0
    )
    pages = max(1, -(-matching // MAX_COLUMNS))
    page = min(page_number(), pages)
    nurses = list(
        db.session.scalars(
            active.order_by(Nurse.last_name, Nurse.first_name, Nurse.id)
            .offset((page - 1) * MAX_COLUMNS)
            .limit(MAX_COLUMNS)
        )
    )
    chosen = [n.id for n in nurses]
    low, high = day_start(day, tz), day_start(day + timedelta(days=1), tz)
    schedules = load_schedules(db.session(), nurses, low, high, now=now)
    visits = _visits(chosen, low, high, tz) if chosen else {}
    grid = layout([ColumnInput(n, day, schedules[n.id], visits[n.id]) for n in nurses], tz, now)
    args = {"day": day.isoformat(), "specialization": wanted, "tz": tz}
    return render(
        "grid/team.html",
        "grid/_team.html",
        grid=grid,
        free_links=_free_links(grid, lambda nurse: nurse),
        day=day,
        tz=tz,
        zones=_zones(viewer_zone(), tz),
        specializations=known,
        wanted=wanted,
        matching=matching,
        page=page,
        pages=pages,
        here=request.path,
        args=args,
        earlier={**args, "day": (day - timedelta(days=1)).isoformat()},
        later={**args, "day": (day + timedelta(days=1)).isoformat()},
        today={**args, "day": local_day(now, tz).isoformat()},
        can_manage=True,
    )


# ------------------------------------------------------------------ route sheet

ROUTE_SHEET_COLUMNS = ["Time", "Minutes", "Patient", "Address", "Phone", "Kind", "Reason"]
# A spreadsheet runs a cell starting with one of these as a formula; a phone number's "+"
# is the one exception kept as typed (digits only after it, nothing to run).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Stop:
    """One visit of a route sheet, in order."""

    id: int
    time: str
    minutes: int
    patient_name: str
    address: str
    phone: str
    kind: str
    reason: str
    status: str

    def cells(self) -> list[str]:
        """The CSV row, in ROUTE_SHEET_COLUMNS order."""
        values = [self.time, str(self.minutes), self.patient_name, self.address]
        values += [self.phone, self.kind, self.reason]
        return [_safe_cell(v) for v in values]


def _safe_cell(value: str) -> str:
    if value.startswith(FORMULA_STARTS) and not (value[:1] == "+" and value[1:].isdigit()):
        return "'" + value
    return value


def _route(nurse_id: int) -> tuple[Nurse, date, list[Stop]]:
    """The nurse (if the viewer may see her), the day (in her zone) and its visits in order."""
    nurse = _nurse(nurse_id)
    tz = nurse.time_zone
    day = date_field("day", "Day", required=False, source=request.args) or local_day(now_utc(), tz)
    low, high = day_start(day, tz), day_start(day + timedelta(days=1), tz)
    visits = db.session.scalars(
        with_people(
            access.appointments(viewer()).where(
                Appointment.nurse_id == nurse.id,
                Appointment.status.in_(SHOWN),
                Appointment.start_at >= low,
                Appointment.start_at < high,
            )
        ).order_by(Appointment.start_at, Appointment.id)
    )
    shown_in = zone(tz)
    stops = [
        Stop(
            id=v.id,
            time=f"{v.start_at.astimezone(shown_in):%H:%M %Z}",
            minutes=v.duration_minutes,
            patient_name=v.patient.full_name,
            address=v.patient.address,
            phone=v.patient.phone,
            kind=label(v.kind, AppointmentKind),
            reason=v.reason,
            status=v.status,
        )
        for v in visits
    ]
    return nurse, day, stops


def _audit_route(nurse: Nurse, day: date, stops: list[Stop], action: str) -> None:
    """Record who saw which nurse's patients' contact details for which day."""
    audit(
        db.session(),
        actor=actor(),
        action=action,
        entity_type="nurse",
        entity_id=nurse.id,
        now=now_utc(),
        day=day.isoformat(),
        appointment_ids=[s.id for s in stops],
    )
    db.session.commit()


@bp.get("/nurses/<int:nurse_id>/route-sheet")
def route_sheet(nurse_id: int) -> Response:
    """A nurse's visits of one day in order, to print (staff; a nurse her own); viewing it is
    recorded in the audit trail, as it lists patients' addresses and phones."""
    nurse, day, stops = _route(nurse_id)
    _audit_route(nurse, day, stops, "route_sheet.viewed")
    return render(
        "grid/route_sheet.html",
        nurse=nurse,
        day=day,
        stops=stops,
        earlier=(day - timedelta(days=1)).isoformat(),
        later=(day + timedelta(days=1)).isoformat(),
    )


@bp.get("/nurses/<int:nurse_id>/route-sheet.csv")
def route_sheet_csv(nurse_id: int) -> Response:
    """The route sheet as CSV; never cached, and the export is audited."""
    nurse, day, stops = _route(nurse_id)
    _audit_route(nurse, day, stops, "route_sheet.exported")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ROUTE_SHEET_COLUMNS)
    writer.writerows(stop.cells() for stop in stops)
    response = make_response(out.getvalue())
    response.mimetype = "text/csv"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="route-sheet-nurse-{nurse.id}-{day.isoformat()}.csv"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# ------------------------------------------------------------------ placement classes

CSS_BEGIN = "/* time grid placement: generated by scripts/grid_css.py, do not edit */"
CSS_END = "/* end of time grid placement */"


def placement_css() -> str:
    """The CSS classes that place grid items (no inline styles under the CSP): gr-cols<n>
    column templates, gr-c<line>/gr-w<n> columns, gr-r<line>/gr-s<n> rows."""
    lines = [CSS_BEGIN]
    lines += [
        f".gr-cols{n} {{ grid-template-columns: 4.6rem repeat({n}, minmax(7.5rem, 1fr)); }}"
        for n in range(1, MAX_COLUMNS + 1)
    ]
    lines += [f".gr-c{n} {{ grid-column-start: {n}; }}" for n in range(1, MAX_COLUMNS + 2)]
    lines += [f".gr-w{n} {{ grid-column-end: span {n}; }}" for n in range(1, MAX_COLUMNS + 1)]
    lines += [f".gr-r{n} {{ grid-row-start: {n}; }}" for n in range(1, MAX_ROWS + 2)]
    lines += [f".gr-s{n} {{ grid-row-end: span {n}; }}" for n in range(1, MAX_ROWS + 1)]
    lines.append(CSS_END)
    return "\n".join(lines) + "\n"
