"""Patients: list and search, add and change; their care team (assign and end nurses)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from core.models import AssignmentRole, Patient, PatientNurseAssignment
from core.services.assignments import (
    active_assignment,
    assign_nurse,
    patient_today,
    remove_assignment,
)
from core.services.people import create_patient, patient_matches, update_patient
from webapp import db
from webapp.api.appointments import actor
from webapp.api.queries import (
    assignment_out,
    paginate,
    patient_out,
    scoped_patients,
    visible_patient,
)
from webapp.api.registry import ID, STAFF, Context, operation
from webapp.api.schemas import (
    AssignmentCreate,
    AssignmentOut,
    CareTeamOut,
    Page,
    PatientCreate,
    PatientListQuery,
    PatientOut,
    PatientUpdate,
)

TAG = "patients"
# What the services refuse in details the schema accepts (the dashboard's checks, shared).
PATIENT_RULES = (
    "a name is only spaces",
    "`phone` or `emergency_contact_phone` is not a possible phone number, or another patient "
    "has `phone`",
    "`email` does not look like an email address",
    "`time_zone` is not an IANA time zone",
    "`date_of_birth` is after today",
    "an address lacks its line 1, city or postal code, or an emergency contact its name or phone",
)


@operation(
    "GET",
    "/patients",
    summary="List and search patients",
    tag=TAG,
    query=PatientListQuery,
    response=Page[PatientOut],
)
def list_patients(ctx: Context, query: PatientListQuery) -> Page[PatientOut]:
    """Patients by last and first name, searched as the dashboard does (every word in the
    name, or digits of the phone); a nurse token lists only her patients."""
    stmt = scoped_patients(ctx).order_by(Patient.last_name, Patient.first_name, Patient.id)
    if query.q and query.q.strip():
        stmt = stmt.where(patient_matches(query.q.strip()))
    return paginate(stmt, query, patient_out)


@operation(
    "POST",
    "/patients",
    summary="Add a patient",
    tag=TAG,
    body=PatientCreate,
    response=PatientOut,
    status=201,
    roles=STAFF,
    rules=PATIENT_RULES,
    keeps_answers=True,
)
def add_patient(ctx: Context, body: PatientCreate) -> PatientOut:
    """Add a patient through the dashboard's own service (same checks, same audit record)."""
    return patient_out(create_patient(db.session(), actor=actor(ctx), now=ctx.now, **dict(body)))


@operation(
    "PATCH",
    f"/patients/<{ID}:patient_id>",
    summary="Change a patient's details",
    tag=TAG,
    body=PatientUpdate,
    response=PatientOut,
    roles=STAFF,
    errors=(404, 409),
    rules=PATIENT_RULES,
    keeps_answers=True,
)
def change_patient(ctx: Context, patient_id: int, body: PatientUpdate) -> PatientOut:
    """Change the fields sent; the others stay. The audit trail records which changed."""
    visible_patient(ctx, patient_id)
    changes = body.model_dump(exclude_unset=True)
    return patient_out(
        update_patient(db.session(), patient_id, actor=actor(ctx), now=ctx.now, **changes)
    )


def care_team_out(ctx: Context, patient: Patient) -> CareTeamOut:
    """Today's primary and backup, and every assignment not yet over."""
    today = patient_today(patient, ctx.now)
    rows = db.session.scalars(
        select(PatientNurseAssignment)
        .where(
            PatientNurseAssignment.patient_id == patient.id,
            or_(
                PatientNurseAssignment.valid_to.is_(None), PatientNurseAssignment.valid_to >= today
            ),
        )
        .options(selectinload(PatientNurseAssignment.nurse))
        .order_by(PatientNurseAssignment.valid_from, PatientNurseAssignment.id)
    )
    primary = active_assignment(db.session(), patient.id, on=today)
    backup = active_assignment(db.session(), patient.id, on=today, role=AssignmentRole.BACKUP)
    return CareTeamOut(
        patient_id=patient.id,
        primary=assignment_out(primary) if primary else None,
        backup=assignment_out(backup) if backup else None,
        assignments=[assignment_out(row) for row in rows],
    )


@operation(
    "GET",
    f"/patients/<{ID}:patient_id>/assignments",
    summary="A patient's care team",
    tag=TAG,
    response=CareTeamOut,
    errors=(404,),
)
def care_team(ctx: Context, patient_id: int) -> CareTeamOut:
    """The patient's primary and backup nurses today, and the assignments that end today or
    later (a change dated ahead shows here before it takes effect)."""
    return care_team_out(ctx, visible_patient(ctx, patient_id))


@operation(
    "POST",
    f"/patients/<{ID}:patient_id>/assignments",
    summary="Make a nurse the patient's primary or backup",
    tag=TAG,
    body=AssignmentCreate,
    response=AssignmentOut,
    status=201,
    roles=STAFF,
    errors=(404, 409),
    rules=(
        "the nurse is inactive",
        "the nurse is already the patient's nurse in the other role",
    ),
    keeps_answers=True,
)
def assign(ctx: Context, patient_id: int, body: AssignmentCreate) -> AssignmentOut:
    """From today in the patient's zone, the nurse takes the role; the nurse who had it ends
    yesterday (visits already booked with her stay: move them apart)."""
    patient = visible_patient(ctx, patient_id)
    assignment = assign_nurse(
        db.session(),
        patient_id=patient.id,
        nurse_id=body.nurse_id,
        role=body.role,
        actor=actor(ctx),
        now=ctx.now,
    )
    return assignment_out(assignment)


@operation(
    "POST",
    f"/patients/<{ID}:patient_id>/assignments/<{ID}:assignment_id>/end",
    summary="Take a nurse off the patient's care team",
    tag=TAG,
    response=CareTeamOut,
    roles=STAFF,
    errors=(404, 409),
    keeps_answers=True,
)
def end_assignment(ctx: Context, patient_id: int, assignment_id: int) -> CareTeamOut:
    """From today: one that started earlier ends yesterday, one not yet begun is removed.
    Visits already booked with the nurse are kept. An ended one answers 409."""
    patient = visible_patient(ctx, patient_id)
    remove_assignment(db.session(), patient.id, assignment_id, actor=actor(ctx), now=ctx.now)
    return care_team_out(ctx, patient)
