"""Appointments: filtered list, booking from free slots, reschedule, cancel, close."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import abort, request, url_for
from flask_login import current_user
from sqlalchemy import Select, func, or_, select
from werkzeug.wrappers import Response

from core.appointment_status import CLOSING_STATUSES, UNDO_WINDOW, change_refusal, undo_deadline
from core.errors import DomainError, InvalidState, NotFound, SlotUnavailable, ValidationError
from core.limits import MAX_ID
from core.models import (
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    AssignmentRole,
    CancelReason,
    Nurse,
    Patient,
    Role,
    SeriesScope,
    StatusChange,
)
from core.notifications.queries import notifications_for_appointment
from core.operations import (
    CANCEL_REASON_CHOICE,
    CancelVisit,
    Reschedule,
    VisitDetails,
    VisitNote,
    validate_form,
)
from core.scheduling import WAIVABLE
from core.services import access, openings
from core.services.booking import (
    book_appointment,
    cancel_appointment,
    check_override_reason,
    free_slots,
    mark_completed,
    mark_no_show,
    reschedule_appointment,
    resolve_nurse,
    undo_status_change,
)
from core.services.series import MoveRefused, move_following
from core.services.status_changes import latest_change, undoable_change
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import (
    actor,
    appointment_rows,
    blueprint,
    check_year,
    date_field,
    day_label,
    day_start,
    errors_of,
    finish,
    id_field,
    instant_field,
    is_whole_number,
    local_day,
    paginate,
    reads_only,
    render,
    repeated_time_note,
    text,
    viewer,
    viewer_zone,
    with_people,
)
from webapp.dashboard.notifications import recipient_names

bp = blueprint("appointments", __name__, url_prefix="/appointments")
STAFF = (Role.ADMIN, Role.COORDINATOR)


NURSE_DROPDOWN_LIMIT = 100
# Past this many visits the list's pager says "10000+" and stops counting. Counting all
# 100,000 visits of the benchmark's agency on every list request cost PostgreSQL 2.4-2.5 ms a
# request over the three pages, 1.2 ms with the cap (bench/dashboard.py, docs/performance.md).
COUNT_LIMIT = 10_000


def _ids_named(model: type[Nurse] | type[Patient], name: str) -> Select[int]:
    """Ids of the people whose first or last name contains `name`."""
    like = f"%{name}%"
    return select(model.id).where(or_(model.first_name.ilike(like), model.last_name.ilike(like)))


def _nurse_choices(visible: Select[Nurse]) -> Select[int, str, str, str]:
    """The nurse dropdown's options: none when there are more than NURSE_DROPDOWN_LIMIT."""
    # A short team gets a dropdown; a large agency a name search, since a thousand options are
    # no way to find someone. The size check is an uncorrelated subquery: the database counts
    # at most one row past the limit, once, and for a large agency never sorts the nurses.
    limit = NURSE_DROPDOWN_LIMIT
    counted = visible.with_only_columns(Nurse.id).limit(limit + 1).subquery()
    few = select(func.count()).select_from(counted).scalar_subquery() <= limit
    return (
        visible.with_only_columns(Nurse.id, Nurse.title, Nurse.first_name, Nurse.last_name)
        .where(few)
        .order_by(Nurse.last_name, Nurse.first_name)
    )


@bp.get("/")
@reads_only
def index() -> Response:
    """Appointments the viewer may see, filtered by status, nurse, dates and patient."""
    args = request.args
    tz = viewer_zone()
    errors: dict[str, str] = {}
    who = viewer()
    stmt = access.appointments(who)
    status = args.get("status", "")
    if status in {s.value for s in AppointmentStatus}:
        stmt = stmt.where(Appointment.status == status)
    nurse_name = args.get("nurse", "").strip()
    if nurse_name:
        stmt = stmt.where(Appointment.nurse_id.in_(_ids_named(Nurse, nurse_name)))
    nurse_id = None
    try:
        start = date_field("from", "From", required=False, source=args)
        end = date_field("to", "To", required=False, source=args)
        if is_whole_number(args.get("nurse_id", "")):  # anything else is no choice of nurse
            nurse_id = id_field("nurse_id", "Nurse", source=args)
    except ValidationError as exc:
        errors = errors_of(exc)
        start = end = None
    if nurse_id is not None:
        stmt = stmt.where(Appointment.nurse_id == nurse_id)
    if start and end and end < start:
        # No visit can match such a range: say so rather than show an empty list.
        errors["to"] = (
            f"“To” ({day_label(end)}) is before “From” ({day_label(start)}): "
            "swap them, or clear one. The dates were not applied."
        )
        start = end = None
    if start:
        stmt = stmt.where(Appointment.start_at >= day_start(start, tz))
    if end:
        stmt = stmt.where(Appointment.start_at < day_start(end + timedelta(days=1), tz))
    query = args.get("q", "").strip()
    if query:
        stmt = stmt.where(Appointment.patient_id.in_(_ids_named(Patient, query)))
    first = Appointment.start_at.desc() if args.get("order") == "desc" else Appointment.start_at
    page = paginate(with_people(stmt.order_by(first, Appointment.id)), count_limit=COUNT_LIMIT)
    return render(
        "appointments/page.html",
        "appointments/_table.html",
        status=422 if errors else 200,
        page=page,
        rows=appointment_rows(page.items),
        count_limit=COUNT_LIMIT,
        statuses=list(AppointmentStatus),
        nurses=db.session.execute(_nurse_choices(access.nurses(who))).all(),
        args=args,
        errors=errors,
    )


# ------------------------------------------------------------------ booking

# How far the booking form looks for the nurse's next day with free time before it opens.
FIRST_FREE_DAY_SEARCH = 14


def _booking_nurse(patient: Patient) -> Nurse | None:
    """Whom a booking for the patient goes to: the primary, or the backup covering for an
    inactive primary (None when neither can take it; booking then says why)."""
    now = now_utc()
    try:
        return resolve_nurse(db.session(), patient, nurse_id=None, start=now, now=now)
    except DomainError:
        return None


def typed_time_zone(patient: Patient | None, nurse: Nurse | None) -> str:
    """The zone a typed time is read in: the one patient and nurse share, else the viewer's."""
    # A coordinator in New York booking a Chicago patient with a Chicago nurse thinks in
    # Chicago time, as both people at the visit do.
    if patient is not None and nurse is not None and patient.time_zone == nurse.time_zone:
        return patient.time_zone
    return viewer_zone()


def _slots_for(nurse: Nurse | None, day: date, length: int | None = None) -> list[Any]:
    if nurse is None:
        return []
    tz = viewer_zone()
    return free_slots(
        db.session(),
        nurse.id,
        start=day_start(day, tz),
        end=day_start(day + timedelta(days=1), tz),
        now=now_utc(),
        duration_minutes=length,
    )


def _day_arg(source: Any, default: date | None = None) -> date:
    """The day whose free slots a form shows: `default`, else tomorrow, when none (or a refused
    one) is given."""
    try:
        day = date_field("day", "Day", required=False, source=source)
    except ValidationError:
        day = None
    return day or default or local_day(now_utc(), viewer_zone()) + timedelta(days=1)


def _first_free_day(nurse: Nurse | None, length: int | None = None) -> date | None:
    """The first day (in the viewer's zone) the nurse has a free time, looking two weeks on."""
    if nurse is None:
        return None
    now = now_utc()
    found = free_slots(
        db.session(),
        nurse.id,
        start=now,
        end=now + timedelta(days=FIRST_FREE_DAY_SEARCH),
        now=now,
        duration_minutes=length,
    )
    return local_day(found[0].start, viewer_zone()) if found else None


def _check_day(source: Any) -> None:
    """A ValidationError when the form's day is given but not a date it can show."""
    date_field("day", "Day", required=False, source=source)


@dataclass(frozen=True, slots=True)
class ChosenTime:
    """A nurse and a start picked on a time grid, which the booking form offers to book."""

    nurse: Nurse
    start: datetime


def _chosen_on_grid(source: Any) -> ChosenTime | None:
    """The grid's prefill (`nurse_id` and `at`, an ISO instant with its offset), or None when
    neither is given; a ValidationError (or NotFound) for anything else."""
    raw_at = (source.get("at") or "").strip()
    nurse_id = id_field("nurse_id", "Nurse", required=False, source=source)
    if nurse_id is None and not raw_at:
        return None
    if nurse_id is None or not raw_at:
        raise ValidationError("A time chosen on the grid needs both the nurse and the start.")
    try:
        start = datetime.fromisoformat(raw_at)
    except ValueError:
        start = None
    if start is None or start.tzinfo is None:
        raise ValidationError("The chosen start must be a date and time with its offset.")
    check_year(start, "The chosen start", "at")
    nurse = db.session.scalar(access.nurses(viewer()).where(Nurse.id == nurse_id))
    if nurse is None:
        raise access.not_found(Nurse, nurse_id)
    return ChosenTime(nurse, start)


def _booking_form(
    *,
    patient: Patient | None,
    errors: dict[str, str],
    conflict: SlotUnavailable | None = None,
    asked: datetime | None = None,
    status: int = 200,
) -> Response:
    source = request.form if request.method == "POST" else request.args
    try:
        chosen = _chosen_on_grid(source)
    except (ValidationError, NotFound):
        chosen = None  # a form sent back keeps its own errors; GET /new refused it already
    nurse = _booking_nurse(patient) if patient is not None else None
    day = _day_arg(source, None if source.get("day") else _first_free_day(nurse))
    slots = _slots_for(nurse, day)
    patients = db.session.scalars(
        access.patients(viewer(), now_utc()).order_by(Patient.last_name, Patient.first_name)
    ).all()
    # A full primary nurse's conflict offers the backup nurse's times: say whose they are.
    offered = {slot.nurse_id for slot in conflict.alternatives} if conflict else set()
    slot_nurses = (
        {
            other.id: other.display_name
            for other in db.session.scalars(select(Nurse).where(Nurse.id.in_(offered)))
        }
        if offered
        else {}
    )
    return render(
        "appointments/book.html",
        "appointments/_book_form.html",
        status=status,
        patient=patient,
        patients=patients,
        nurse=nurse,
        slot_nurses=slot_nurses,
        day=day,
        slots=slots,
        errors=errors,
        conflict=conflict,
        asked=asked,
        waivable=WAIVABLE,
        form=source,
        kinds=list(AppointmentKind),
        typed_zone=typed_time_zone(patient, nurse),
        booking=True,
        chosen=chosen,
    )


def _chosen_start(label: str, typed_zone: str) -> datetime:
    """The refused time a coordinator books anyway (`override_start`), a slot button's instant
    (`start`), else the local time typed (`start_local`), read in `typed_zone`."""
    name = next((n for n in ("override_start", "start") if request.form.get(n)), "start_local")
    return instant_field(name, label, typed_zone)


def _waiver() -> tuple[str | None, dict[str, str]]:
    """The reason given with "Book anyway" (None without the button), and its error if blank."""
    if not request.form.get("override_start"):
        return None, {}
    try:
        return check_override_reason(request.form.get("override_reason", "")), {}
    except ValidationError as exc:
        return None, errors_of(exc)


def _chosen_slot(label: str, typed_zone: str) -> tuple[int | None, datetime]:
    """An offered time with another nurse (`start_with`: her id, a slash, the instant), else
    `_chosen_start` with the patient's own nurse (None)."""
    chosen = text("start_with")
    if not chosen:
        return None, _chosen_start(label, typed_zone)
    nurse_id, _, start = chosen.partition("/")
    try:
        instant = datetime.fromisoformat(start)
    except ValueError:
        instant = None
    if (
        not is_whole_number(nurse_id)
        or int(nurse_id) > MAX_ID
        or instant is None
        or instant.tzinfo is None
    ):
        raise ValidationError(f"{label} must be one of the offered times.", field="start")
    check_year(instant, label, "start")
    return int(nurse_id), instant


def _patient_arg(source: Any) -> Patient | None:
    raw = (source.get("patient_id") or "").strip()
    if not is_whole_number(raw):
        return None
    if int(raw) > MAX_ID:  # no such patient can exist; the query would fail on PostgreSQL
        raise NotFound("No such patient.", field="patient_id")
    return access.get_patient(db.session(), viewer(), int(raw), now_utc())


@bp.get("/new")
@roles_required(*STAFF)
def new() -> Response:
    """The booking form: pick a patient, then one of their nurse's free slots (or book the
    nurse and time chosen on a time grid: `nurse_id` and `at`)."""
    _check_day(request.args)
    _chosen_on_grid(request.args)  # a bad prefill is refused (400) rather than ignored
    return _booking_form(patient=_patient_arg(request.args), errors={})


@bp.get("/slots")
@roles_required(*STAFF)
def slots() -> Response:
    """The free slots of the patient's primary nurse on one day (a fragment of the form)."""
    patient = _patient_arg(request.args)
    _check_day(request.args)
    nurse = _booking_nurse(patient) if patient is not None else None
    day = _day_arg(request.args, _first_free_day(nurse))
    return render(
        "appointments/_slots_changed.html",
        "appointments/_slots_changed.html",
        patient=patient,
        nurse=nurse,
        day=day,
        slots=_slots_for(nurse, day),
        typed_zone=typed_time_zone(patient, nurse),
        booking=True,
    )


@bp.get("/next-available")
@reads_only
@roles_required(*STAFF)
def next_available() -> Response:
    """The patient's next free times with their care team and nurses who cover their needs."""
    patient = _patient_arg(request.args)
    if patient is None:
        raise NotFound("No such patient.", field="patient_id")
    return render(
        "appointments/_next_available.html",
        "appointments/_next_available.html",
        patient=patient,
        openings=openings.next_available(db.session(), patient.id, now=now_utc()),
        relation_labels=RELATION_LABELS,
    )


# How the next-available list names each nurse's place in the patient's care.
RELATION_LABELS = {
    openings.Relation.PRIMARY: AssignmentRole.PRIMARY.label,
    openings.Relation.BACKUP: AssignmentRole.BACKUP.label,
    openings.Relation.MATCHING: "Covers their needs",
}


@bp.post("/new")
@roles_required(*STAFF)
def book() -> Response:
    """Book a visit; every problem with the form is shown at once, and a taken time answers
    409 with the alternatives to pick from."""
    try:
        patient = _patient_arg(request.form)
    except NotFound:
        patient = None
    nurse = _booking_nurse(patient) if patient is not None else None
    # Where the time comes from (a slot button, an offered alternative or a typed time) is the
    # page's own business; what is booked is checked by the operation the API also uses.
    when: dict[str, Any] = {}
    time_errors: dict[str, str] = {}
    try:
        _check_day(request.form)
        when["nurse_id"], start = _chosen_slot("Start", typed_time_zone(patient, nurse))
        when["start"] = start.isoformat()
    except ValidationError as exc:
        time_errors = errors_of(exc)
    fields = {name: request.form.get(name, "") for name in ("patient_id", "kind", "reason")}
    if patient is None and fields["patient_id"].strip():
        fields["patient_id"] = ""  # not one this user may book for: ask again
    visit, errors = validate_form(VisitDetails, fields, **when)
    if time_errors:  # what is wrong with the time as given, rather than only "required"
        errors.pop("start", None)
        errors.update(time_errors)
    if visit is None or errors:
        return _booking_form(patient=patient, errors=errors, status=422)
    # Without a reason the booking is judged by the rules, and the refusal asks for one again.
    override_reason, waiver_errors = _waiver()
    try:
        appointment = book_appointment(
            db.session(),
            **visit.model_dump(),
            actor=actor(),
            now=now_utc(),
            override_reason=override_reason,
        )
    except SlotUnavailable as exc:
        db.session.rollback()
        return _booking_form(
            patient=patient, errors=waiver_errors, conflict=exc, asked=visit.start, status=409
        )
    except DomainError as exc:
        db.session.rollback()
        errors = errors_of(exc)
        if "nurse_id" in errors:
            errors["patient_id"] = errors.pop("nurse_id")
        return _booking_form(patient=patient, errors=errors, status=422)
    db.session.commit()
    told = "Appointment booked." + repeated_time_note(
        appointment.start_at, typed_time_zone(patient, nurse)
    )
    return finish(url_for("appointments.show", appointment_id=appointment.id), told)


# ------------------------------------------------------------------ one appointment


def _appointment(appointment_id: int) -> Appointment:
    return access.get_appointment(db.session(), viewer(), appointment_id)


def _detail(
    appointment: Appointment, *, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    messages = notifications_for_appointment(db.session(), appointment.id)
    moved_to = (
        db.session.scalar(
            select(Appointment.id).where(Appointment.rescheduled_from_id == appointment.id)
        )
        if appointment.cancel_reason == CancelReason.RESCHEDULED
        else None
    )
    now = now_utc()
    change = latest_change(db.session(), appointment.id)
    undoable = undoable_change(db.session(), appointment, now)
    return render(
        "appointments/show.html",
        status=status,
        appointment=appointment,
        moved_to=moved_to,
        reasons=CANCEL_REASON_CHOICE.members,
        errors=errors or {},
        form=request.form if errors else None,
        can_manage=current_user.role in STAFF,
        started=appointment.start_at <= now,
        messages=messages,
        names=recipient_names(messages),
        change=change if change is not None and change.undone_at is None else None,
        undo=undoable if undoable is not None and _may_undo(undoable) else None,
        undo_until=undo_deadline(undoable.at) if undoable is not None else None,
    )


@bp.get("/<int:appointment_id>")
def show(appointment_id: int) -> Response:
    """One appointment, with what can be done to it."""
    return _detail(_appointment(appointment_id))


# ------------------------------------------------------------------ status changes

# The dashboard's name for each change, the status it sets, and the endpoint that applies it.
CHANGES = {
    "complete": (AppointmentStatus.COMPLETED, "appointments.complete"),
    "no-show": (AppointmentStatus.NO_SHOW, "appointments.no_show"),
    "cancel": (AppointmentStatus.CANCELLED, "appointments.cancel"),
}


def _may_undo(change: StatusChange) -> bool:
    """Staff undo any change; a nurse only a completion or no-show (she cannot cancel)."""
    return current_user.role in STAFF or change.to_status in CLOSING_STATUSES


def _confirm(
    appointment: Appointment,
    change: str,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The confirmation step of a status change: what it does, a note, confirm or go back."""
    target, endpoint = CHANGES[change]
    refusal = change_refusal(
        appointment.status, target, start_at=appointment.start_at, now=now_utc()
    )
    return render(
        "appointments/confirm.html",
        "appointments/_confirm.html",
        status=status,
        appointment=appointment,
        change=change,
        target=target,
        action=url_for(endpoint, appointment_id=appointment.id),
        refusal=refusal,
        reasons=CANCEL_REASON_CHOICE.members,
        errors=errors or {},
        form=request.form if request.method == "POST" else None,
        undo_minutes=int(UNDO_WINDOW.total_seconds() // 60),
    )


@bp.route("/<int:appointment_id>/cancel", methods=["GET", "POST"])
@roles_required(*STAFF)
def cancel(appointment_id: int) -> Response:
    """Cancel with a reason and an optional note, after a confirmation page (GET)."""
    appointment = _appointment(appointment_id)
    if request.method == "GET":
        return _confirm(appointment, "cancel")
    cancellation, errors = validate_form(CancelVisit, request.form)
    if cancellation is None:
        return _confirm(appointment, "cancel", errors=errors, status=422)
    try:
        cancel_appointment(
            db.session(), appointment.id, **cancellation.model_dump(), actor=actor(), now=now_utc()
        )
    except (ValidationError, InvalidState) as exc:
        db.session.rollback()
        return _confirm(appointment, "cancel", errors=errors_of(exc), status=422)
    db.session.commit()
    return finish(
        url_for("appointments.show", appointment_id=appointment.id), "Appointment cancelled."
    )


def _close(appointment_id: int, change: str, action: Any, message: str) -> Response:
    appointment = _appointment(appointment_id)
    if request.method == "GET":
        return _confirm(appointment, change)
    closing, errors = validate_form(VisitNote, request.form)
    if closing is None:
        return _confirm(appointment, change, errors=errors, status=422)
    try:
        action(db.session(), appointment.id, **closing.model_dump(), actor=actor(), now=now_utc())
    except (ValidationError, InvalidState) as exc:
        db.session.rollback()
        errors = errors_of(exc)
        if "appointment_id" in errors:
            errors["_status"] = errors.pop("appointment_id")
        return _confirm(appointment, change, errors=errors, status=422)
    db.session.commit()
    return finish(url_for("appointments.show", appointment_id=appointment.id), message)


@bp.route("/<int:appointment_id>/complete", methods=["GET", "POST"])
def complete(appointment_id: int) -> Response:
    """Record that the visit took place (staff, or the appointment's own nurse), after a
    confirmation page (GET) that takes an optional note."""
    return _close(appointment_id, "complete", mark_completed, "Marked completed.")


@bp.route("/<int:appointment_id>/no-show", methods=["GET", "POST"])
def no_show(appointment_id: int) -> Response:
    """Record that the patient did not attend (staff, or the appointment's own nurse), after
    a confirmation page (GET) that takes an optional note."""
    return _close(appointment_id, "no-show", mark_no_show, "Marked as no-show.")


@bp.post("/<int:appointment_id>/undo")
def undo(appointment_id: int) -> Response:
    """Take back the visit's latest status change, within the undo window."""
    appointment = _appointment(appointment_id)
    change = latest_change(db.session(), appointment.id)
    if change is not None and not _may_undo(change):
        abort(403)
    try:
        undo_status_change(db.session(), appointment.id, actor=actor(), now=now_utc())
    except InvalidState as exc:
        db.session.rollback()
        return _detail(appointment, errors={"_status": exc.message}, status=422)
    db.session.commit()
    return finish(url_for("appointments.show", appointment_id=appointment.id), "Change undone.")


def _reschedule_form(
    appointment: Appointment,
    *,
    errors: dict[str, str],
    conflict: SlotUnavailable | None = None,
    asked: datetime | None = None,
    move_refused: MoveRefused | None = None,
    status: int = 200,
) -> Response:
    source = request.form if request.method == "POST" else request.args
    length = appointment.duration_minutes
    # A visit is usually moved a little: open on its own date while that is still ahead.
    own_day = local_day(appointment.start_at, viewer_zone())
    today = local_day(now_utc(), viewer_zone())
    if source.get("day"):
        day = _day_arg(source)
    elif own_day >= today:
        day = own_day
    else:
        day = _day_arg(source, _first_free_day(appointment.nurse, length))
    return render(
        "appointments/reschedule.html",
        "appointments/_reschedule_form.html",
        status=status,
        appointment=appointment,
        day=day,
        slots=_slots_for(appointment.nurse, day, length),
        errors=errors,
        conflict=conflict,
        asked=asked,
        waivable=WAIVABLE,
        move_refused=move_refused,
        scopes=list(SeriesScope),
        scope=_move_scope(appointment, source),
        form=source,
        typed_zone=typed_time_zone(appointment.patient, appointment.nurse),
    )


def _move_scope(appointment: Appointment, source: Any) -> SeriesScope:
    """Which visits a move takes: this one, or (for a visit of a series) it and all after it."""
    wanted = source.get("scope")
    if appointment.series_id is not None and wanted == SeriesScope.FOLLOWING:
        return SeriesScope.FOLLOWING
    return SeriesScope.THIS


def _move_following(appointment: Appointment, start: datetime) -> Response:
    """Move a series visit and every later one by the same change; all or nothing."""
    assert appointment.series_id is not None
    try:
        moved = move_following(
            db.session(),
            appointment.series_id,
            appointment.id,
            new_start=start,
            actor=actor(),
            now=now_utc(),
        )
    except MoveRefused as exc:
        db.session.rollback()
        return _reschedule_form(appointment, errors={}, move_refused=exc, status=409)
    except DomainError as exc:
        db.session.rollback()
        return _reschedule_form(appointment, errors=errors_of(exc), status=422)
    db.session.commit()
    told = f"{len(moved.moved)} visits moved; they continue as this series."
    return finish(url_for("series.show", series_id=moved.series.id), told)


@bp.route("/<int:appointment_id>/reschedule", methods=["GET", "POST"])
@roles_required(*STAFF)
def reschedule(appointment_id: int) -> Response:
    """Move a visit to another free time with the same nurse."""
    appointment = _appointment(appointment_id)
    if request.method == "GET":
        _check_day(request.args)
        return _reschedule_form(appointment, errors={})
    try:
        _check_day(request.form)
        start = _chosen_start("New start", typed_time_zone(appointment.patient, appointment.nurse))
    except ValidationError as exc:
        return _reschedule_form(appointment, errors=errors_of(exc), status=422)
    move, errors = validate_form(Reschedule, {}, start=start.isoformat())
    if move is None:
        return _reschedule_form(appointment, errors=errors, status=422)
    if _move_scope(appointment, request.form) == SeriesScope.FOLLOWING:
        return _move_following(appointment, move.start)
    override_reason, waiver_errors = _waiver()
    try:
        new = reschedule_appointment(
            db.session(),
            appointment.id,
            new_start=move.start,
            duration_minutes=move.duration_minutes,
            actor=actor(),
            now=now_utc(),
            override_reason=override_reason,
        )
    except SlotUnavailable as exc:
        db.session.rollback()
        return _reschedule_form(
            appointment, errors=waiver_errors, conflict=exc, asked=move.start, status=409
        )
    except DomainError as exc:
        db.session.rollback()
        return _reschedule_form(appointment, errors=errors_of(exc), status=422)
    db.session.commit()
    told = "Appointment moved." + repeated_time_note(
        new.start_at, typed_time_zone(appointment.patient, appointment.nurse)
    )
    return finish(url_for("appointments.show", appointment_id=new.id), told)
