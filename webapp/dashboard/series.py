"""Recurring visits on the dashboard: build a series, preview every visit as the booking
engine judges it (free, or refused with alternatives to pick or skip), book, read, cancel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from flask import abort, request, url_for
from flask_login import current_user
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select
from werkzeug.wrappers import Response

from core.errors import DomainError, NotFound
from core.limits import MAX_ID
from core.models import (
    Appointment,
    AppointmentKind,
    AppointmentSeries,
    AppointmentStatus,
    AssignmentRole,
    CancelReason,
    Patient,
    Role,
    SeriesScope,
    Weekday,
)
from core.operations import (
    CANCEL_REASON_CHOICE,
    FORM,
    CancelSeriesVisits,
    SeriesDetails,
    field_messages,
    validate_form,
)
from core.recurrence import MAX_OCCURRENCES
from core.scheduling import WAIVABLE, zone
from core.services import access
from core.services.assignments import active_assignment, patient_today
from core.services.series import (
    SeriesPlan,
    SeriesRefused,
    book_series,
    cancel_occurrences,
    plan_series,
    series_in_words,
)
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import (
    actor,
    blueprint,
    errors_of,
    finish,
    is_whole_number,
    render,
    viewer,
)

bp = blueprint("series", __name__, url_prefix="/series")
STAFF = (Role.ADMIN, Role.COORDINATOR)
# The form's own fields, beside the operation's: the first visit as a date and a wall time.
RULE_FIELDS = (
    "patient_id",
    "nurse_id",
    "first_day",
    "first_time",
    "interval_weeks",
    "count",
    "until",
    "duration_minutes",
    "kind",
    "reason",
)
# The fields passed to SeriesDetails as typed (weekdays and start are read apart).
OPERATION_FIELDS = (
    "patient_id",
    "nurse_id",
    "interval_weeks",
    "count",
    "until",
    "duration_minutes",
    "kind",
    "reason",
)
CHOICE_PREFIX = "choice-"
SKIP = "skip"
WAIVE = "waive"  # book this visit although it is inside notice or past the horizon


@bp.app_template_global("series_of_patient")
def series_of_patient(patient_id: int) -> list[AppointmentSeries]:
    """The patient's series the viewer may see, newest first (for the patient's page)."""
    return list(
        db.session.scalars(
            access.series(viewer())
            .where(AppointmentSeries.patient_id == patient_id)
            .order_by(AppointmentSeries.id.desc())
        )
    )


@bp.app_template_global("series_rule")
def series_rule(series: AppointmentSeries) -> str:
    """The series' rule in words, for templates."""
    return series_in_words(series)


def _patient(raw: str | None) -> Patient | None:
    """The patient a link or form names, if the viewer may see them; NotFound past any id."""
    raw = (raw or "").strip()
    if not is_whole_number(raw):
        return None
    if int(raw) > MAX_ID:  # no such patient can exist; the query would fail on PostgreSQL
        raise NotFound("No such patient.", field="patient_id")
    return access.get_patient(db.session(), viewer(), int(raw), now_utc())


def _patient_in_form(raw: str | None) -> Patient | None:
    """The form's patient, or None when it names none the viewer may book for."""
    try:
        return _patient(raw)
    except NotFound:
        return None


def _care_team(patient: Patient | None) -> list[tuple[str, str]]:
    """The nurses a series may be booked with: the patient's primary and backup today."""
    if patient is None:
        return []
    today = patient_today(patient, now_utc())
    team = []
    for role in (AssignmentRole.PRIMARY, AssignmentRole.BACKUP):
        assignment = active_assignment(db.session(), patient.id, on=today, role=role)
        if assignment is not None:
            team.append((str(assignment.nurse_id), f"{assignment.nurse.display_name} ({role})"))
    return team


def _zone_of(patient: Patient | None, nurse_id: str) -> str:
    """The zone the form's wall time is read in: the chosen nurse's, else the primary's."""
    if patient is None:
        return "UTC"
    if nurse_id.strip().isdigit():
        chosen = next(
            (a.nurse for a in patient.assignments if str(a.nurse_id) == nurse_id.strip()), None
        )
        if chosen is not None:
            return chosen.time_zone
    primary = active_assignment(db.session(), patient.id, on=patient_today(patient, now_utc()))
    return primary.nurse.time_zone if primary is not None else patient.time_zone


def _read_rule(form: Mapping[str, Any]) -> tuple[SeriesDetails | None, dict[str, str], str]:
    """The series the form describes, or every problem with it; and the zone of its times."""
    patient = _patient_in_form(form.get("patient_id"))
    tz_name = _zone_of(patient, form.get("nurse_id", ""))
    errors: dict[str, str] = {}
    data: dict[str, Any] = {
        name: form.get(name, "").strip() for name in OPERATION_FIELDS if form.get(name, "").strip()
    }
    if patient is None:
        data.pop("patient_id", None)
    data["weekdays"] = form.getlist("weekdays") if hasattr(form, "getlist") else []
    try:
        day = date.fromisoformat(form.get("first_day", "").strip())
        at = time.fromisoformat(form.get("first_time", "").strip())
        data["start"] = datetime.combine(day, at, tzinfo=zone(tz_name)).isoformat()
    except ValueError:
        errors["first_day"] = "Give the first visit's date and time."
    try:
        details = SeriesDetails.model_validate(data)
    except PydanticValidationError as exc:
        problems = field_messages(exc, SeriesDetails)
        if "start" in problems:
            errors.setdefault("first_day", problems.pop("start"))
        return None, {**problems, **errors}, tz_name
    return (details if not errors else None), errors, tz_name


def _service_errors(exc: DomainError) -> dict[str, str]:
    errors = errors_of(exc)
    if "start" in errors:
        errors["first_day"] = errors.pop("start")
    if "occurrences" in errors:  # the preview's choices: no field of the form to point at
        errors[FORM] = errors.pop("occurrences")
    return errors


def _builder(
    *,
    errors: dict[str, str],
    plan: SeriesPlan | None = None,
    tz_name: str = "UTC",
    message: str = "",
    status: int = 200,
) -> Response:
    form = request.form if request.method == "POST" else request.args
    patient = (
        _patient(form.get("patient_id"))
        if request.method == "GET"
        else _patient_in_form(form.get("patient_id"))
    )
    patients = db.session.scalars(
        access.patients(viewer(), now_utc()).order_by(Patient.last_name, Patient.first_name)
    ).all()
    return render(
        "series/new.html",
        "series/_builder.html",
        status=status,
        form=form,
        chosen_weekdays=form.getlist("weekdays") if request.method == "POST" else [],
        patient=patient,
        patients=patients,
        team=_care_team(patient),
        errors=errors,
        plan=plan,
        tz_name=tz_name,
        message=message,
        weekdays=list(Weekday),
        kinds=list(AppointmentKind),
        rule_fields=RULE_FIELDS,
        max_visits=MAX_OCCURRENCES,
        waivable=WAIVABLE,
    )


@bp.get("/new")
@roles_required(*STAFF)
def new() -> Response:
    """The series form, for the patient given (from their page or the booking form)."""
    return _builder(errors={})


@bp.post("/preview")
@roles_required(*STAFF)
def preview() -> Response:
    """Every visit of the rule, checked: free, or refused with why and times to pick."""
    details, errors, tz_name = _read_rule(request.form)
    if details is None:
        return _builder(errors=errors, tz_name=tz_name, status=422)
    try:
        plan = plan_series(db.session(), details, now=now_utc())
    except DomainError as exc:
        db.session.rollback()
        return _builder(errors=_service_errors(exc), tz_name=tz_name, status=422)
    db.session.rollback()  # a preview changes nothing
    return _builder(errors={}, plan=plan, tz_name=plan.nurse.time_zone)


@dataclass
class Choices:
    """What the coordinator chose for each refused visit of the preview."""

    replacements: dict[int, datetime] = field(default_factory=dict)
    skip: set[int] = field(default_factory=set)
    waive: set[int] = field(default_factory=set)


def _choices(form: Mapping[str, str]) -> Choices:
    """For each refused visit, the alternative picked (by its index), a skip, or "book
    anyway"."""
    chosen = Choices()
    for name, value in form.items():
        if not name.startswith(CHOICE_PREFIX):
            continue
        raw = name.removeprefix(CHOICE_PREFIX)
        if not raw.isdigit() or len(raw) > 4:
            abort(400)
        if value == SKIP:
            chosen.skip.add(int(raw))
            continue
        if value == WAIVE:
            chosen.waive.add(int(raw))
            continue
        try:
            chosen.replacements[int(raw)] = datetime.fromisoformat(value)
        except ValueError:
            abort(400)
    return chosen


@bp.post("/new")
@roles_required(*STAFF)
def book() -> Response:
    """Book the previewed series: the free visits, the alternatives picked, none skipped;
    if anything changed since the preview nothing is booked and the new preview shows why."""
    details, errors, tz_name = _read_rule(request.form)
    if details is None:
        return _builder(errors=errors, tz_name=tz_name, status=422)
    chosen = _choices(request.form)
    reason = request.form.get("override_reason", "").strip() or None
    if chosen.waive and reason is None:  # ask again, with the visits still on screen
        plan = plan_series(
            db.session(),
            details,
            now=now_utc(),
            replacements=chosen.replacements,
            skip=chosen.skip,
        )
        db.session.rollback()
        return _builder(
            errors={"override_reason": "Say why these visits are booked anyway."},
            plan=plan,
            tz_name=plan.nurse.time_zone,
            status=422,
        )
    try:
        booked = book_series(
            db.session(),
            details,
            actor=actor(),
            now=now_utc(),
            replacements=chosen.replacements,
            skip=chosen.skip,
            waive=chosen.waive,
            override_reason=reason if chosen.waive else None,
        )
    except SeriesRefused as refused:
        db.session.rollback()
        return _builder(
            errors={},
            plan=refused.plan,
            tz_name=refused.plan.nurse.time_zone,
            message="Some times are no longer free, so nothing was booked: choose again.",
            status=409,
        )
    except DomainError as exc:
        db.session.rollback()
        return _builder(errors=_service_errors(exc), tz_name=tz_name, status=422)
    db.session.commit()
    count = len(booked.booked)
    return finish(
        url_for("series.show", series_id=booked.series.id),
        f"{count} visit{'s' if count != 1 else ''} booked.",
    )


def _series(series_id: int) -> AppointmentSeries:
    return access.get_series(db.session(), viewer(), series_id)


@bp.get("/<int:series_id>")
def show(series_id: int) -> Response:
    """A series: its rule and every visit booked in it."""
    series = _series(series_id)
    moved = [a.id for a in series.appointments if a.cancel_reason == CancelReason.RESCHEDULED]
    # Where each moved visit went: the same series, or the one "this and following" began.
    moved_to = (
        {
            a.rescheduled_from_id: a
            for a in db.session.scalars(
                select(Appointment).where(Appointment.rescheduled_from_id.in_(moved))
            )
        }
        if moved
        else {}
    )
    return render(
        "series/show.html",
        series=series,
        moved_to=moved_to,
        can_manage=current_user.role in STAFF,
        scheduled=AppointmentStatus.SCHEDULED,
    )


def _cancel_form(
    series: AppointmentSeries, *, errors: dict[str, str], status: int = 200
) -> Response:
    source = request.form if request.method == "POST" else request.args
    chosen = next(
        (a for a in series.appointments if str(a.id) == source.get("appointment_id", "")), None
    )
    if chosen is None:
        abort(404)
    scope = source.get("scope", SeriesScope.THIS)
    following = [
        a
        for a in series.appointments
        if a.status == AppointmentStatus.SCHEDULED and a.start_at >= chosen.start_at
    ]
    return render(
        "series/cancel.html",
        status=status,
        series=series,
        chosen=chosen,
        scope=scope if scope in {s.value for s in SeriesScope} else SeriesScope.THIS,
        scopes=list(SeriesScope),
        following=following,
        reasons=CANCEL_REASON_CHOICE.members,
        errors=errors,
        form=request.form if request.method == "POST" else None,
    )


@bp.route("/<int:series_id>/cancel", methods=["GET", "POST"])
@roles_required(*STAFF)
def cancel(series_id: int) -> Response:
    """Cancel one visit of the series, or it and every later one."""
    series = _series(series_id)
    if request.method == "GET":
        return _cancel_form(series, errors={})
    change, errors = validate_form(CancelSeriesVisits, request.form)
    if change is None:
        return _cancel_form(series, errors=errors, status=422)
    try:
        cancelled = cancel_occurrences(
            db.session(),
            series.id,
            change.appointment_id,
            scope=change.scope,
            actor=actor(),
            now=now_utc(),
            reason_code=change.reason_code,
            note=change.note,
        )
    except DomainError as exc:
        db.session.rollback()
        return _cancel_form(series, errors=errors_of(exc) or {FORM: exc.message}, status=422)
    db.session.commit()
    count = len(cancelled)
    return finish(
        url_for("series.show", series_id=series.id),
        f"{count} visit{'s' if count != 1 else ''} cancelled.",
    )
