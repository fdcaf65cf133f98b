"""Appointments: list, book, read, reschedule, cancel, complete, no-show."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.models import Appointment, Source
from core.services.booking import (
    book_appointment,
    cancel_appointment,
    mark_completed,
    mark_no_show,
    reschedule_appointment,
    undo_status_change,
)
from core.services.common import Actor
from webapp import db
from webapp.api.problems import ApiProblem
from webapp.api.queries import (
    appointment_out,
    paginate,
    scoped_appointments,
    visible_appointment,
    visible_patient,
)
from webapp.api.registry import ID, Context, operation
from webapp.api.schemas import (
    AppointmentCreate,
    AppointmentListQuery,
    AppointmentOut,
    CallScheduleCreate,
    CancelRequest,
    Page,
    RescheduleRequest,
)

TAG = "appointments"
WHOLE_MINUTE = "`start` has seconds (visits start on a whole minute)"
KEY_REUSED = "the Idempotency-Key was already used for another patient's booking or another change"
# Shared with POST /calls/{call_id}/schedule, which books through the same service.
BOOKING_RULES = (
    WHOLE_MINUTE,
    "the nurse (the one named, else the patient's primary, or their backup while the primary is "
    "inactive) is not assigned to the patient on the visit's date, or is inactive",
    KEY_REUSED,
)


def actor(ctx: Context) -> Actor:
    """The API caller as the services record it."""
    assert ctx.user is not None
    return Actor.user(ctx.user.id, source=Source.API)


def replayed(ctx: Context, key: str | None) -> Appointment | None:
    """The appointment an Idempotency-Key already made, checking the caller may see it."""
    if key is None or not key.strip():
        return None
    existing = db.session.scalar(
        select(Appointment).where(Appointment.idempotency_key == key.strip()[:200])
    )
    if existing is not None and ctx.nurse_id is not None and existing.nurse_id != ctx.nurse_id:
        raise ApiProblem(
            "invalid", "That Idempotency-Key was already used for another booking; use a new one."
        )
    return existing


def own_nurse(ctx: Context, nurse_id: int | None) -> int | None:
    """The nurse to book with: a nurse token books only its own visits."""
    if ctx.nurse_id is None:
        return nurse_id
    if nurse_id is not None and nurse_id != ctx.nurse_id:
        raise ApiProblem("forbidden", "A nurse's token can book only that nurse's own visits.")
    return ctx.nurse_id


@operation(
    "GET",
    "/appointments",
    summary="List appointments",
    tag=TAG,
    query=AppointmentListQuery,
    response=Page[AppointmentOut],
)
def list_appointments(ctx: Context, query: AppointmentListQuery) -> Page[AppointmentOut]:
    """Appointments by start time, filtered by nurse, patient, status and a start range."""
    stmt = scoped_appointments(ctx).options(selectinload(Appointment.patient))
    if query.nurse_id is not None:
        stmt = stmt.where(Appointment.nurse_id == query.nurse_id)
    if query.patient_id is not None:
        stmt = stmt.where(Appointment.patient_id == query.patient_id)
    if query.status is not None:
        stmt = stmt.where(Appointment.status == query.status.value)
    if query.start is not None:
        stmt = stmt.where(Appointment.start_at >= query.start)
    if query.end is not None:
        stmt = stmt.where(Appointment.start_at < query.end)
    stmt = stmt.order_by(Appointment.start_at, Appointment.id)
    return paginate(stmt, query, appointment_out)


@operation(
    "POST",
    "/appointments",
    summary="Book an appointment",
    tag=TAG,
    body=AppointmentCreate,
    response=AppointmentOut,
    status=201,
    idempotent_header=True,
    errors=(404, 409),
    rules=BOOKING_RULES,
)
def create_appointment(
    ctx: Context, body: AppointmentCreate, idempotency_key: str | None
) -> tuple[AppointmentOut, int]:
    """Book a visit with the patient's assigned nurse (their primary unless `nurse_id` names
    their backup). A taken or unbookable time answers 409 with `alternatives`. Retrying with
    the same Idempotency-Key returns the first booking (200) instead of booking twice."""
    visible_patient(ctx, body.patient_id)
    return book_for(ctx, body, body.patient_id, idempotency_key)


def book_for(
    ctx: Context,
    body: AppointmentCreate | CallScheduleCreate,
    patient_id: int,
    idempotency_key: str | None,
    *,
    call_id: int | None = None,
) -> tuple[AppointmentOut, int]:
    """Book through the core service: 201 for a new visit, 200 when the key replays one."""
    existing = replayed(ctx, idempotency_key)
    override_reason = body.override_reason if isinstance(body, AppointmentCreate) else None
    refuse_nurse_waiver(ctx, override_reason)
    appointment = book_appointment(
        db.session(),
        patient_id=patient_id,
        start=body.start,
        actor=actor(ctx),
        now=ctx.now,
        nurse_id=own_nurse(ctx, body.nurse_id),
        duration_minutes=body.duration_minutes,
        kind=body.kind.value,
        reason=body.reason,
        idempotency_key=idempotency_key,
        call_id=call_id,
        override_reason=override_reason,
    )
    return appointment_out(appointment), 200 if existing is not None else 201


def refuse_nurse_waiver(ctx: Context, override_reason: str | None) -> None:
    """Only coordinators and admins may waive notice or the horizon; a nurse's token is 403."""
    if override_reason is not None and ctx.nurse_id is not None:
        raise ApiProblem(
            "forbidden", "Only coordinators and admins may book inside notice or past the horizon."
        )


@operation(
    "GET",
    f"/appointments/<{ID}:appointment_id>",
    summary="One appointment",
    tag=TAG,
    response=AppointmentOut,
    errors=(404,),
)
def get_appointment(ctx: Context, appointment_id: int) -> AppointmentOut:
    """An appointment's details."""
    return appointment_out(visible_appointment(ctx, appointment_id))


@operation(
    "POST",
    f"/appointments/<{ID}:appointment_id>/reschedule",
    summary="Move an appointment",
    tag=TAG,
    body=RescheduleRequest,
    response=AppointmentOut,
    idempotent_header=True,
    errors=(404, 409),
    rules=(
        WHOLE_MINUTE,
        "the appointment's nurse is not assigned to the patient on the new date",
        KEY_REUSED,
    ),
)
def reschedule(
    ctx: Context, appointment_id: int, body: RescheduleRequest, idempotency_key: str | None
) -> AppointmentOut:
    """Cancel the visit and book a linked new one at `start`, in one step; the answer is the
    new appointment (its `rescheduled_from_id` is the old one)."""
    visible_appointment(ctx, appointment_id)
    replayed(ctx, idempotency_key)
    refuse_nurse_waiver(ctx, body.override_reason)
    moved = reschedule_appointment(
        db.session(),
        appointment_id,
        new_start=body.start,
        actor=actor(ctx),
        now=ctx.now,
        duration_minutes=body.duration_minutes,
        idempotency_key=idempotency_key,
        override_reason=body.override_reason,
    )
    return appointment_out(moved)


@operation(
    "POST",
    f"/appointments/<{ID}:appointment_id>/cancel",
    summary="Cancel an appointment",
    tag=TAG,
    body=CancelRequest,
    response=AppointmentOut,
    errors=(404, 409),
)
def cancel(ctx: Context, appointment_id: int, body: CancelRequest) -> AppointmentOut:
    """Cancel a scheduled visit with a reason code and an optional note."""
    visible_appointment(ctx, appointment_id)
    cancelled = cancel_appointment(
        db.session(),
        appointment_id,
        actor=actor(ctx),
        now=ctx.now,
        reason_code=body.reason_code,
        note=body.note,
    )
    return appointment_out(cancelled)


@operation(
    "POST",
    f"/appointments/<{ID}:appointment_id>/complete",
    summary="Mark an appointment completed",
    tag=TAG,
    response=AppointmentOut,
    errors=(404, 409),
)
def complete(ctx: Context, appointment_id: int) -> AppointmentOut:
    """Record that a visit that has started took place."""
    visible_appointment(ctx, appointment_id)
    return appointment_out(
        mark_completed(db.session(), appointment_id, actor=actor(ctx), now=ctx.now)
    )


@operation(
    "POST",
    f"/appointments/<{ID}:appointment_id>/no-show",
    summary="Mark an appointment as a no-show",
    tag=TAG,
    response=AppointmentOut,
    errors=(404, 409),
)
def no_show(ctx: Context, appointment_id: int) -> AppointmentOut:
    """Record that the patient did not attend a visit that has started."""
    visible_appointment(ctx, appointment_id)
    return appointment_out(
        mark_no_show(db.session(), appointment_id, actor=actor(ctx), now=ctx.now)
    )


@operation(
    "POST",
    f"/appointments/<{ID}:appointment_id>/undo",
    summary="Undo the latest status change",
    tag=TAG,
    response=AppointmentOut,
    errors=(404, 409),
)
def undo(ctx: Context, appointment_id: int) -> AppointmentOut:
    """Take back the latest completion, no-show or cancellation within ten minutes, when the
    visit's time is still free."""
    visible_appointment(ctx, appointment_id)
    return appointment_out(
        undo_status_change(db.session(), appointment_id, actor=actor(ctx), now=ctx.now)
    )
