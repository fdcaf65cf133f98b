"""Patients: list and search, create and edit, primary and backup nurse assignment."""

from __future__ import annotations

from typing import Any

from flask import request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

from core.errors import InvalidState, NotFound, ValidationError
from core.models import (
    Appointment,
    AssignmentRole,
    Nurse,
    Patient,
    Role,
)
from core.operations import LANGUAGES, CareTeamChange, PatientDetails, validate_form
from core.services import access
from core.services.assignments import (
    active_assignment,
    assign_nurse,
    patient_today,
    rank_nurses,
    remove_assignment,
)
from core.services.common import audit
from core.services.people import create_patient, patient_matches, update_patient
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import (
    actor,
    blueprint,
    errors_of,
    finish,
    is_partial,
    paginate,
    reads_only,
    render,
    viewer,
)
from webapp.dashboard.nurses import COMMON_ZONES

bp = blueprint("patients", __name__, url_prefix="/patients")
STAFF = (Role.ADMIN, Role.COORDINATOR)


@bp.get("/")
@reads_only
def index() -> Response:
    """Patients the viewer may see, searchable by name or phone, a page at a time."""
    query = request.args.get("q", "").strip()
    stmt = access.patients(viewer(), now_utc()).order_by(
        Patient.last_name, Patient.first_name, Patient.id
    )
    if query:
        stmt = stmt.where(patient_matches(query))
    return render("patients/page.html", "patients/_table.html", page=paginate(stmt), q=query)


def _save(patient: Patient | None) -> Patient:
    """Create or update from the form; one ValidationError holds every field's problem."""
    details, errors = validate_form(
        PatientDetails,
        request.form,
        sms_consent=request.form.get("sms_consent") == "on",
        context={"today": now_utc().date()},
    )
    if details is None:
        raise ValidationError(next(iter(errors.values())), errors=errors)
    values = details.model_dump()
    try:
        if patient is None:
            return create_patient(db.session(), actor=actor(), now=now_utc(), **values)
        return update_patient(db.session(), patient.id, actor=actor(), now=now_utc(), **values)
    except ValidationError as exc:  # what only the records can tell (a phone already taken)
        raise ValidationError(
            exc.message, errors=exc.details.get("errors", errors_of(exc))
        ) from exc


def _form(patient: Patient | None, errors: dict[str, str], status: int = 200) -> Response:
    return render(
        "patients/form.html",
        "patients/_form.html",
        status=status,
        patient=patient,
        form=request.form if request.method == "POST" else None,
        errors=errors,
        zones=COMMON_ZONES,
        languages=sorted(LANGUAGES),
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*STAFF)
def create() -> Response:
    """Add a patient."""
    if request.method == "GET":
        return _form(None, {})
    try:
        patient = _save(None)
    except ValidationError as exc:
        db.session.rollback()
        return _form(None, exc.details["errors"], 422)
    db.session.commit()
    return finish(url_for("patients.show", patient_id=patient.id), "Patient added.")


@bp.route("/<int:patient_id>/edit", methods=["GET", "POST"])
@roles_required(*STAFF)
def edit(patient_id: int) -> Response:
    """Change a patient's details."""
    patient = access.get_patient(db.session(), viewer(), patient_id, now_utc())
    if request.method == "GET":
        return _form(patient, {})
    try:
        _save(patient)
    except ValidationError as exc:
        db.session.rollback()
        return _form(patient, exc.details["errors"], 422)
    db.session.commit()
    return finish(url_for("patients.show", patient_id=patient.id), "Patient saved.")


def _care_team_context(patient: Patient, errors: dict[str, str]) -> dict[str, Any]:
    now = now_utc()
    today = patient_today(patient, now)
    primary = active_assignment(db.session(), patient.id, on=today)
    backup = active_assignment(db.session(), patient.id, on=today, role=AssignmentRole.BACKUP)
    staff = current_user.role in STAFF
    proposals = (
        rank_nurses(db.session(), patient.id, now=now)[:5] if primary is None and staff else []
    )
    nurses = (
        db.session.scalars(
            select(Nurse).where(Nurse.active.is_(True)).order_by(Nurse.last_name, Nurse.id)
        ).all()
        if staff
        else []
    )
    return {
        "patient": patient,
        "primary": primary,
        "backup": backup,
        "proposals": proposals,
        "nurses": nurses,
        "errors": errors,
        "can_edit": staff,
    }


def _care_team(patient: Patient, errors: dict[str, str], status: int = 200) -> Response:
    return render(
        "patients/_care_team.html",
        "patients/_care_team.html",
        status=status,
        **_care_team_context(patient, errors),
    )


@bp.get("/<int:patient_id>")
def show(patient_id: int) -> Response:
    """A patient's details, care team and appointments; viewing them is recorded in the audit
    trail (who opened which record, when)."""
    now = now_utc()
    patient = access.get_patient(db.session(), viewer(), patient_id, now)
    audit(
        db.session(),
        actor=actor(),
        action="patient.viewed",
        entity_type="patient",
        entity_id=patient.id,
        now=now,
    )
    db.session.commit()
    upcoming = db.session.scalars(
        access.appointments(viewer())
        .where(Appointment.patient_id == patient.id)
        .options(joinedload(Appointment.nurse))
        .order_by(Appointment.start_at.desc())
        .limit(50)
    ).all()
    return render("patients/show.html", appointments=upcoming, **_care_team_context(patient, {}))


@bp.post("/<int:patient_id>/assign")
@roles_required(*STAFF)
def assign(patient_id: int) -> Response:
    """Make a nurse the patient's primary or backup; answers with the care team fragment."""
    patient = access.get_patient(db.session(), viewer(), patient_id, now_utc())
    change, errors = validate_form(CareTeamChange, request.form)
    if change is None:
        return _care_team(patient, errors, 422)
    try:
        assign_nurse(
            db.session(), patient_id=patient.id, **change.model_dump(), actor=actor(), now=now_utc()
        )
    except ValidationError as exc:
        db.session.rollback()
        return _care_team(patient, errors_of(exc), 422)
    except NotFound:
        db.session.rollback()
        return _care_team(patient, {"nurse_id": "Choose a nurse."}, 422)
    db.session.commit()
    return _care_team(patient, {})


@bp.post("/<int:patient_id>/assignments/<int:assignment_id>/end")
@roles_required(*STAFF)
def end_assignment(patient_id: int, assignment_id: int) -> Response:
    """Take a nurse off the care team from today; answers with the care team fragment."""
    patient = access.get_patient(db.session(), viewer(), patient_id, now_utc())
    try:
        remove_assignment(db.session(), patient.id, assignment_id, actor=actor(), now=now_utc())
    except InvalidState as exc:
        db.session.rollback()
        return _care_team(patient, errors_of(exc), 422)
    db.session.commit()
    if not is_partial():
        return finish(url_for("patients.show", patient_id=patient.id), "Care team changed.")
    return _care_team(patient, {})
