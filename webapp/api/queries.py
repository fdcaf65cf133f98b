"""Role-scoped lookups, pagination and the row-to-schema conversions the views share.

Scoping is core.services.access, the dashboard's own: a nurse token's restriction lives in the
queries themselves, so another nurse's records answer 404 exactly like missing ones.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import request
from sqlalchemy import Select

from core.errors import OverrideCollision
from core.models import (
    Appointment,
    AppointmentSeries,
    Call,
    Nurse,
    NurseAvailability,
    NurseAvailabilityOverride,
    Patient,
    PatientNurseAssignment,
)
from core.services import access
from core.timefmt import local_iso
from webapp import db
from webapp.api.registry import Context
from webapp.api.schemas import (
    AddressOut,
    AppointmentOut,
    AssignmentOut,
    CallOut,
    EmergencyContactOut,
    NurseOut,
    OverrideOut,
    Page,
    PageQuery,
    PatientOut,
    VisitOutsideHours,
    WeeklyWindowOut,
)

OutT = TypeVar("OutT")


def viewer(ctx: Context) -> access.Viewer:
    """The caller as the access rules see them."""
    assert ctx.user is not None
    return access.Viewer(user_id=ctx.user.id, role=ctx.user.role, nurse_id=ctx.user.nurse_id)


def visible_patient(ctx: Context, patient_id: int) -> Patient:
    """The patient, if the caller may see them; else NotFound (404)."""
    return access.get_patient(db.session(), viewer(ctx), patient_id, ctx.now)


def visible_nurse(ctx: Context, nurse_id: int) -> Nurse:
    """The nurse, if the caller may see them (a nurse token sees only itself); else 404."""
    return access.get_nurse(db.session(), viewer(ctx), nurse_id)


def scoped_nurses(ctx: Context) -> Select[Nurse]:
    """Nurses the caller may see."""
    return access.nurses(viewer(ctx))


def scoped_patients(ctx: Context) -> Select[Patient]:
    """Patients the caller may see."""
    return access.patients(viewer(ctx), ctx.now)


def scoped_appointments(ctx: Context) -> Select[Appointment]:
    """Appointments the caller may see."""
    return access.appointments(viewer(ctx))


def visible_appointment(ctx: Context, appointment_id: int) -> Appointment:
    """The appointment, if the caller may see it; else 404."""
    return access.get_appointment(db.session(), viewer(ctx), appointment_id)


def visible_series(ctx: Context, series_id: int) -> AppointmentSeries:
    """The series, if the caller may see it; else 404."""
    return access.get_series(db.session(), viewer(ctx), series_id)


def scoped_calls(ctx: Context) -> Select[Call]:
    """Calls the caller may see (a nurse: calls with one of their patients)."""
    return access.calls(viewer(ctx), ctx.now)


def visible_call(ctx: Context, call_id: int) -> Call:
    """The call, if the caller may see it; else 404."""
    return access.get_call(db.session(), viewer(ctx), call_id, ctx.now)


def _page_link(page: int) -> str:
    args = request.args.to_dict(flat=True)
    args["page"] = str(page)
    return f"{request.path}?{urlencode(args)}"


def paginate(stmt: Select[Any], query: PageQuery, convert: Callable[[Any], OutT]) -> Page[OutT]:
    """One page of `stmt` (already ordered), with links to the pages around it."""
    page = db.paginate(stmt, page=query.page, per_page=query.per_page, error_out=False)
    return Page[Any](
        items=[convert(row) for row in page.items],
        page=page.page,
        per_page=page.per_page,
        total=page.total or 0,
        next=_page_link(page.page + 1) if page.has_next else None,
        prev=_page_link(page.page - 1) if page.has_prev else None,
    )


def nurse_out(nurse: Nurse) -> NurseOut:
    """The API's view of a nurse."""
    return NurseOut(
        id=nurse.id,
        first_name=nurse.first_name,
        last_name=nurse.last_name,
        title=nurse.title,
        display_name=nurse.display_name,
        specializations=list(nurse.specializations or []),
        email=nurse.email,
        phone=nurse.phone,
        time_zone=nurse.time_zone,
        visit_minutes=nurse.visit_minutes,
        slot_step_minutes=nurse.slot_step_minutes,
        active=nurse.active,
    )


def patient_out(patient: Patient) -> PatientOut:
    """The API's view of a patient: contact details, address and emergency contact."""
    address = None
    if patient.has_address:
        assert patient.address_line1 and patient.address_city and patient.address_postal_code
        address = AddressOut(
            line1=patient.address_line1,
            line2=patient.address_line2,
            city=patient.address_city,
            region=patient.address_region,
            postal_code=patient.address_postal_code,
            one_line=patient.address,
        )
    contact = None
    if patient.emergency_contact_name and patient.emergency_contact_phone:
        contact = EmergencyContactOut(
            name=patient.emergency_contact_name,
            relationship=patient.emergency_contact_relationship,
            phone=patient.emergency_contact_phone,
        )
    return PatientOut(
        id=patient.id,
        first_name=patient.first_name,
        last_name=patient.last_name,
        date_of_birth=patient.date_of_birth,
        phone=patient.phone,
        email=patient.email,
        time_zone=patient.time_zone,
        preferred_language=patient.preferred_language,
        sms_consent=patient.sms_consent,
        address=address,
        emergency_contact=contact,
    )


def appointment_out(appointment: Appointment) -> AppointmentOut:
    """The API's view of an appointment."""
    zone_name = appointment.patient.time_zone
    return AppointmentOut(
        id=appointment.id,
        nurse_id=appointment.nurse_id,
        patient_id=appointment.patient_id,
        start=appointment.start_at,
        end=appointment.end_at,
        duration_minutes=appointment.duration_minutes,
        patient_time_zone=zone_name,
        start_local=local_iso(appointment.start_at, zone_name),
        status=appointment.status,  # type: ignore[arg-type]
        kind=appointment.kind,  # type: ignore[arg-type]
        reason=appointment.reason,
        source=appointment.source,
        call_id=appointment.call_id,
        rescheduled_from_id=appointment.rescheduled_from_id,
        cancel_reason=appointment.cancel_reason,
        cancel_note=appointment.cancel_note,
        cancelled_at=appointment.cancelled_at,
        created_at=appointment.created_at,
        updated_at=appointment.updated_at,
        series_id=appointment.series_id,
        series_index=appointment.series_index,
    )


def call_out(call: Call) -> CallOut:
    """The API's view of a call."""
    return CallOut(
        id=call.id,
        call_sid=call.call_sid,
        direction=call.direction,  # type: ignore[arg-type]
        status=call.status,  # type: ignore[arg-type]
        from_number=call.from_number,
        to_number=call.to_number,
        patient_id=call.patient_id,
        created_at=call.created_at,
        started_at=call.started_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        duration_seconds=call.duration_seconds,
        outcome=call.outcome,
        verified=call.verified,
        simulated=call.simulated,
        has_transcript=call.transcript is not None,
    )


def _hhmm(value: time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")


def weekly_window_out(window: NurseAvailability) -> WeeklyWindowOut:
    """The API's view of one weekly working window."""
    return WeeklyWindowOut(
        weekday=window.weekday,
        start_time=window.start_time.strftime("%H:%M"),
        end_time=window.end_time.strftime("%H:%M"),
        valid_from=window.valid_from,
        valid_to=window.valid_to,
    )


def override_out(override: NurseAvailabilityOverride) -> OverrideOut:
    """The API's view of time off or extra hours."""
    return OverrideOut(
        id=override.id,
        kind=override.kind,  # type: ignore[arg-type]
        start_date=override.start_date,
        end_date=override.end_date,
        start_time=_hhmm(override.start_time),
        end_time=_hhmm(override.end_time),
    )


def visit_outside_hours(collision: OverrideCollision) -> VisitOutsideHours:
    """A booked visit a change of hours leaves uncovered, as the dashboard lists it."""
    return VisitOutsideHours(
        appointment_id=collision.appointment_id,
        patient_id=collision.extra["patient_id"],
        start=collision.start,
        end=collision.end,
    )


def assignment_out(assignment: PatientNurseAssignment) -> AssignmentOut:
    """The API's view of a nurse on a patient's care team."""
    return AssignmentOut(
        id=assignment.id,
        patient_id=assignment.patient_id,
        nurse_id=assignment.nurse_id,
        role=assignment.role,  # type: ignore[arg-type]
        valid_from=assignment.valid_from,
        valid_to=assignment.valid_to,
        nurse=nurse_out(assignment.nurse),
    )
