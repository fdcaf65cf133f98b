"""Nurses: list and search, create and edit, weekly hours, time off and extra hours."""

from __future__ import annotations

from typing import Any

from flask import request, url_for
from sqlalchemy import or_, select
from werkzeug.wrappers import Response

from core.errors import DomainError, ValidationError
from core.models import (
    Nurse,
    NurseAvailabilityOverride,
    OverrideKind,
    Role,
)
from core.operations import AvailabilityOverride, NurseDetails, WeeklyWindow, validate_form
from core.services import access
from core.services.availability import (
    WEEKDAY_NAMES,
    WeeklyWindowInput,
    add_override,
    remove_nurse_override,
    set_weekly_availability,
    visits_outside_hours,
)
from core.services.handover import (
    BACKUP_COVERS,
    CANCEL_VISIT,
    deactivate_with_handover,
    deactivation_overview,
    refuse_unplanned_deactivation,
)
from core.services.people import create_nurse, update_nurse
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import (
    actor,
    blueprint,
    errors_of,
    finish,
    paginate,
    reads_only,
    render,
    viewer,
)

bp = blueprint("nurses", __name__, url_prefix="/nurses")
STAFF = (Role.ADMIN, Role.COORDINATOR)
COMMON_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "Europe/London",
    "UTC",
]
SETTINGS_FIELDS = [
    ("visit_minutes", "Visit length (minutes)"),
    ("buffer_before_minutes", "Buffer before (minutes)"),
    ("buffer_after_minutes", "Buffer after (minutes)"),
    ("min_notice_minutes", "Minimum notice (minutes)"),
    ("horizon_days", "Booking horizon (days)"),
    ("slot_step_minutes", "Slot step (minutes)"),
    ("daily_cap", "Daily cap (visits, blank = none)"),
]


def _nurse(nurse_id: int) -> Nurse:
    return access.get_nurse(db.session(), viewer(), nurse_id)


@bp.get("/")
@reads_only
@roles_required(*STAFF)
def index() -> Response:
    """All nurses, searchable by name or specialisation, a page at a time."""
    query = request.args.get("q", "").strip()
    stmt = access.nurses(viewer()).order_by(Nurse.last_name, Nurse.first_name, Nurse.id)
    if query:
        like = f"%{query}%"
        stmt = stmt.where(
            or_(
                Nurse.first_name.ilike(like),
                Nurse.last_name.ilike(like),
                Nurse.specializations.cast(db.String).ilike(like),
            )
        )
    return render("nurses/page.html", "nurses/_table.html", page=paginate(stmt), q=query)


def _form(nurse: Nurse | None, errors: dict[str, str], status: int = 200) -> Response:
    return render(
        "nurses/form.html",
        "nurses/_form.html",
        status=status,
        nurse=nurse,
        form=request.form if request.method == "POST" else None,
        errors=errors,
        zones=COMMON_ZONES,
        settings_fields=SETTINGS_FIELDS,
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*STAFF)
def create() -> Response:
    """Add a nurse."""
    if request.method == "GET":
        return _form(None, {})
    details, errors = validate_form(NurseDetails, request.form)
    if details is None:
        return _form(None, errors, 422)
    try:
        nurse = create_nurse(db.session(), actor=actor(), now=now_utc(), **details.model_dump())
    except ValidationError as exc:
        db.session.rollback()
        return _form(None, errors_of(exc), 422)
    db.session.commit()
    return finish(url_for("nurses.show", nurse_id=nurse.id), "Nurse added.")


@bp.route("/<int:nurse_id>/edit", methods=["GET", "POST"])
@roles_required(*STAFF)
def edit(nurse_id: int) -> Response:
    """Change a nurse's details and visit settings (or deactivate them)."""
    nurse = _nurse(nurse_id)
    if request.method == "GET":
        return _form(nurse, {})
    details, errors = validate_form(
        NurseDetails, request.form, active=request.form.get("active") == "on"
    )
    if details is None:
        return _form(nurse, errors, 422)
    try:
        if nurse.active and not details.active:
            refuse_unplanned_deactivation(
                db.session(), nurse.id, now=now_utc(), instead="use Deactivate on her page"
            )
        update_nurse(db.session(), nurse.id, actor=actor(), now=now_utc(), **details.model_dump())
    except ValidationError as exc:
        db.session.rollback()
        return _form(nurse, errors_of(exc), 422)
    db.session.commit()
    return finish(url_for("nurses.show", nurse_id=nurse.id), "Nurse saved.")


@bp.post("/<int:nurse_id>/active")
@roles_required(*STAFF)
def toggle_active(nurse_id: int) -> Response:
    """Reactivate a nurse, or deactivate one who has no visit or patient to hand over
    (answers with her row); otherwise go to the deactivation page, changing nothing."""
    nurse = _nurse(nurse_id)
    now = now_utc()
    if nurse.active and deactivation_overview(db.session(), nurse.id, now=now).affects_anything:
        return finish(url_for("nurses.deactivate", nurse_id=nurse.id))
    update_nurse(db.session(), nurse.id, actor=actor(), now=now, active=not nurse.active)
    db.session.commit()
    return render("nurses/_row.html", "nurses/_row.html", nurse=nurse)


def _deactivation_page(
    nurse: Nurse, *, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    overview = deactivation_overview(db.session(), nurse.id, now=now_utc())
    return render(
        "nurses/deactivate.html",
        "nurses/_deactivate.html",
        status=status,
        overview=overview,
        errors=errors or {},
        form=request.form if request.method == "POST" else None,
        backup_covers=BACKUP_COVERS,
        cancel_visit=CANCEL_VISIT,
    )


def _choices(prefix: str) -> dict[int, str]:
    """The form's `<prefix>-<id>` choices, by id."""
    chosen: dict[int, str] = {}
    for name, value in request.form.items():
        head, _, raw_id = name.partition("-")
        if head == prefix and raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 12:
            chosen[int(raw_id)] = value
    return chosen


@bp.route("/<int:nurse_id>/deactivate", methods=["GET", "POST"])
@roles_required(*STAFF)
def deactivate(nurse_id: int) -> Response:
    """What deactivating the nurse affects, with a choice for each visit and patient; on
    POST, all of it is done in one transaction, or none of it."""
    nurse = _nurse(nurse_id)
    if request.method == "GET":
        return _deactivation_page(nurse)
    try:
        deactivate_with_handover(
            db.session(),
            nurse.id,
            patients=_choices("patient"),
            visits=_choices("visit"),
            actor=actor(),
            now=now_utc(),
        )
    except DomainError as exc:
        db.session.rollback()
        errors = errors_of(exc)
        if "nurse_id" in errors:
            errors["_form"] = errors.pop("nurse_id")
        return _deactivation_page(nurse, errors=errors, status=422)
    db.session.commit()
    return finish(url_for("nurses.show", nurse_id=nurse.id), f"{nurse.display_name} deactivated.")


@bp.get("/<int:nurse_id>")
@roles_required(*STAFF)
def show(nurse_id: int) -> Response:
    """A nurse's details, weekly hours and overrides."""
    nurse = _nurse(nurse_id)
    return render(
        "nurses/show.html",
        nurse=nurse,
        grid=_grid_from_rows(nurse),
        grid_errors={},
        overrides=_overrides(nurse),
        override_errors={},
        collisions=None,
        form=None,
        weekdays=WEEKDAY_NAMES,
        kinds=OverrideKind,
    )


# ------------------------------------------------------------------ weekly hours


def _grid_from_rows(nurse: Nurse) -> dict[int, list[tuple[str, str]]]:
    grid: dict[int, list[tuple[str, str]]] = {day: [] for day in range(7)}
    for row in nurse.availability:
        grid[row.weekday].append((f"{row.start_time:%H:%M}", f"{row.end_time:%H:%M}"))
    return grid


def _grid_from_form() -> dict[int, list[tuple[str, str]]]:
    grid: dict[int, list[tuple[str, str]]] = {}
    for day in range(7):
        starts = request.form.getlist(f"start-{day}")
        ends = request.form.getlist(f"end-{day}")
        grid[day] = [(s.strip(), e.strip()) for s, e in zip(starts, ends, strict=False)]
    return grid


def _windows(
    grid: dict[int, list[tuple[str, str]]],
) -> tuple[list[WeeklyWindowInput], dict[str, str]]:
    """The grid's filled-in rows as weekly windows, and each day's first problem."""
    windows: list[WeeklyWindowInput] = []
    errors: dict[str, str] = {}
    for day, pairs in grid.items():
        for start, end in pairs:
            if not start and not end:
                continue
            form = {"start": start, "end": end}
            window, problems = validate_form(WeeklyWindow, form, weekday=day)
            if window is None:
                errors.setdefault(f"day-{day}", f"{WEEKDAY_NAMES[day]}: {_first(problems)}")
            else:
                windows.append(WeeklyWindowInput(**window.model_dump()))
    return windows, errors


def _first(problems: dict[str, str]) -> str:
    """A window's problem, its start's first."""
    return problems.get("start") or next(iter(problems.values()))


def _grid_error(exc: ValidationError, windows: list[WeeklyWindowInput]) -> dict[str, str]:
    field = exc.field or ""
    if field.startswith("windows[") and field.endswith("]"):
        index = int(field[len("windows[") : -1])
        return {f"day-{windows[index].weekday}": exc.message}
    if field.startswith("day-"):
        return {field: exc.message}
    for day, name in enumerate(WEEKDAY_NAMES):
        if exc.message.startswith(name):
            return {f"day-{day}": exc.message}
    return {"_form": exc.message}


@bp.post("/<int:nurse_id>/availability")
@roles_required(*STAFF)
def save_availability(nurse_id: int) -> Response:
    """Replace the nurse's weekly hours with the grid's rows (blank rows are ignored)."""
    nurse = _nurse(nurse_id)
    grid = _grid_from_form()
    windows, errors = _windows(grid)
    try:
        if not errors:
            set_weekly_availability(db.session(), nurse.id, windows, actor=actor(), now=now_utc())
    except ValidationError as exc:  # windows that overlap
        db.session.rollback()
        errors = _grid_error(exc, windows)
    if errors:
        return render(
            "nurses/_availability.html",
            "nurses/_availability.html",
            status=422,
            nurse=nurse,
            grid=grid,
            grid_errors=errors,
            weekdays=WEEKDAY_NAMES,
            saved=False,
        )
    # The change is saved either way; visits it leaves outside her hours are listed to move.
    outside = visits_outside_hours(db.session(), nurse.id, now_utc())
    db.session.commit()
    db.session.refresh(nurse)
    return render(
        "nurses/_availability.html",
        "nurses/_availability.html",
        nurse=nurse,
        grid=_grid_from_rows(nurse),
        grid_errors={},
        weekdays=WEEKDAY_NAMES,
        saved=True,
        outside=outside,
    )


# ------------------------------------------------------------------ overrides


def _overrides(nurse: Nurse) -> list[NurseAvailabilityOverride]:
    return list(
        db.session.scalars(
            select(NurseAvailabilityOverride)
            .where(NurseAvailabilityOverride.nurse_id == nurse.id)
            .order_by(NurseAvailabilityOverride.start_date, NurseAvailabilityOverride.id)
        )
    )


def _overrides_partial(
    nurse: Nurse,
    *,
    errors: dict[str, str] | None = None,
    collisions: list[Any] | None = None,
    stranded: list[Any] | None = None,
    status: int = 200,
) -> Response:
    return render(
        "nurses/_overrides.html",
        "nurses/_overrides.html",
        status=status,
        nurse=nurse,
        overrides=_overrides(nurse),
        override_errors=errors or {},
        collisions=collisions,
        stranded=stranded or [],
        form=request.form if errors else None,
        kinds=OverrideKind,
    )


@bp.post("/<int:nurse_id>/overrides")
@roles_required(*STAFF)
def add_override_view(nurse_id: int) -> Response:
    """Add time off or extra hours; lists the booked visits that time off now covers."""
    nurse = _nurse(nurse_id)
    override, errors = validate_form(AvailabilityOverride, request.form)
    if override is None:
        return _overrides_partial(nurse, errors=errors, status=422)
    try:
        _, collisions = add_override(
            db.session(), nurse.id, **override.model_dump(), actor=actor(), now=now_utc()
        )
    except ValidationError as exc:
        db.session.rollback()
        return _overrides_partial(nurse, errors=errors_of(exc), status=422)
    db.session.commit()
    return _overrides_partial(nurse, collisions=collisions)


@bp.post("/<int:nurse_id>/overrides/<int:override_id>/delete")
@roles_required(*STAFF)
def remove_override_view(nurse_id: int, override_id: int) -> Response:
    """Remove one of this nurse's overrides."""
    nurse = _nurse(nurse_id)
    # Visits booked in extra hours that are gone now stand outside her hours: listed.
    stranded = remove_nurse_override(
        db.session(), nurse.id, override_id, actor=actor(), now=now_utc()
    )
    db.session.commit()
    return _overrides_partial(nurse, stranded=stranded)
