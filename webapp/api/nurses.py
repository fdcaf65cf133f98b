"""Nurses, their availability and free slots; a patient's assigned nurse."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select

from core.models import AssignmentRole, Nurse, NurseAvailabilityOverride, Patient
from core.scheduling import local_to_utc, refusal_for, slot_starts, wall_time_exists, zone
from core.services.assignments import active_assignment, patient_today
from core.services.booking import free_slots
from core.services.people import find_patient_by_phone
from core.services.schedules import load_schedules
from webapp import db
from webapp.api.problems import ApiProblem
from webapp.api.queries import (
    nurse_out,
    override_out,
    paginate,
    patient_out,
    scoped_nurses,
    scoped_patients,
    visible_nurse,
    visible_patient,
    weekly_window_out,
)
from webapp.api.registry import ID, Context, operation
from webapp.api.schemas import (
    AssignedNurse,
    AvailableNurses,
    AvailableNursesQuery,
    NurseAvailabilityOut,
    NurseAvailabilityRules,
    NurseListQuery,
    NurseOut,
    NurseSlots,
    Page,
    PatientOut,
    SlotOut,
    SlotsQuery,
)

MAX_SLOTS_PER_NURSE = 50


@operation(
    "GET",
    "/nurses",
    summary="List and search nurses",
    tag="nurses",
    query=NurseListQuery,
    response=Page[NurseOut],
)
def list_nurses(ctx: Context, query: NurseListQuery) -> Page[NurseOut]:
    """Nurses by last and first name; a nurse token lists only its own nurse."""
    stmt = scoped_nurses(ctx).order_by(Nurse.last_name, Nurse.first_name, Nurse.id)
    if query.q:
        term = query.q.strip()
        stmt = stmt.where(
            or_(
                Nurse.first_name.icontains(term, autoescape=True),
                Nurse.last_name.icontains(term, autoescape=True),
                Nurse.title.icontains(term, autoescape=True),
            )
        )
    if query.active is not None:
        stmt = stmt.where(Nurse.active.is_(query.active))
    return paginate(stmt, query, nurse_out)


@operation(
    "GET",
    "/nurses/available",
    summary="Nurses with free time on a date (or at a time)",
    tag="nurses",
    query=AvailableNursesQuery,
    response=AvailableNurses,
)
def available_nurses(ctx: Context, query: AvailableNursesQuery) -> AvailableNurses:
    """Active nurses with a bookable slot on `date`, or free for a visit starting at `time`.

    Date and time are read in each nurse's own time zone. Minimum notice, horizon, time off,
    buffers and daily caps all apply, exactly as when booking.
    """
    stmt = scoped_nurses(ctx).where(Nurse.active.is_(True)).order_by(Nurse.last_name, Nurse.id)
    nurses = list(db.session.scalars(stmt))
    day = query.date
    # Wide enough for every zone's version of that local date (offsets reach +-14 hours).
    low = local_to_utc(day, 0, zone("UTC")) - timedelta(days=1)
    high = low + timedelta(days=3)
    schedules = load_schedules(db.session(), nurses, low, high, now=ctx.now)
    items: list[NurseAvailabilityOut] = []
    for nurse in nurses:
        schedule = schedules[nurse.id]
        tz = zone(nurse.time_zone)
        length = timedelta(minutes=query.duration_minutes or nurse.visit_minutes)
        if query.time is not None:
            hours, minutes = (int(part) for part in query.time.split(":"))
            minute = hours * 60 + minutes
            if not wall_time_exists(day, minute, tz):
                continue
            start = local_to_utc(day, minute, tz)
            if refusal_for(schedule, start, start + length, ctx.now) is not None:
                continue
            starts = [start]
        else:
            day_start, day_end = local_to_utc(day, 0, tz), local_to_utc(day, 24 * 60, tz)
            starts = slot_starts(
                schedule, day_start, day_end, ctx.now, int(length.total_seconds() // 60)
            )
            if not starts:
                continue
        items.append(
            NurseAvailabilityOut(
                nurse=nurse_out(nurse),
                slot_count=len(starts),
                slots=[
                    SlotOut(nurse_id=nurse.id, start=s, end=s + length)
                    for s in starts[:MAX_SLOTS_PER_NURSE]
                ],
            )
        )
    return AvailableNurses(
        date=day, time=query.time, duration_minutes=query.duration_minutes, items=items
    )


@operation(
    "GET",
    f"/nurses/<{ID}:nurse_id>",
    summary="One nurse",
    tag="nurses",
    response=NurseOut,
    errors=(404,),
)
def get_nurse(ctx: Context, nurse_id: int) -> NurseOut:
    """A nurse's details."""
    return nurse_out(visible_nurse(ctx, nurse_id))


@operation(
    "GET",
    f"/nurses/<{ID}:nurse_id>/slots",
    summary="A nurse's free slots over a range",
    tag="nurses",
    query=SlotsQuery,
    response=NurseSlots,
    errors=(404,),
    rules=("`end` is not after `start`", "`end` is more than 92 days after `start`"),
)
def nurse_slots(ctx: Context, nurse_id: int, query: SlotsQuery) -> NurseSlots:
    """Bookable visit starts in [start, end) (at most 92 days), on the nurse's local grid."""
    nurse = visible_nurse(ctx, nurse_id)
    slots = free_slots(
        db.session(),
        nurse.id,
        start=query.start,
        end=query.end,
        now=ctx.now,
        duration_minutes=query.duration_minutes,
    )
    return NurseSlots(
        nurse_id=nurse.id,
        start=query.start,
        end=query.end,
        duration_minutes=query.duration_minutes or nurse.visit_minutes,
        items=[SlotOut.model_validate(s) for s in slots],
    )


@operation(
    "GET",
    f"/nurses/<{ID}:nurse_id>/availability",
    summary="A nurse's weekly hours and upcoming time off or extra hours",
    tag="nurses",
    response=NurseAvailabilityRules,
    errors=(404,),
)
def nurse_availability(ctx: Context, nurse_id: int) -> NurseAvailabilityRules:
    """The weekly working windows (wall-clock, in the nurse's zone) and the overrides that end
    today or later. For bookable times use /nurses/{nurse_id}/slots."""
    nurse = visible_nurse(ctx, nurse_id)
    since = ctx.now.astimezone(zone(nurse.time_zone)).date()
    overrides = db.session.scalars(
        select(NurseAvailabilityOverride)
        .where(
            NurseAvailabilityOverride.nurse_id == nurse.id,
            NurseAvailabilityOverride.end_date >= since,
        )
        .order_by(NurseAvailabilityOverride.start_date, NurseAvailabilityOverride.id)
    )
    return NurseAvailabilityRules(
        nurse_id=nurse.id,
        time_zone=nurse.time_zone,
        weekly=[weekly_window_out(w) for w in nurse.availability],
        overrides=[override_out(o) for o in overrides],
    )


@operation(
    "GET",
    f"/patients/<{ID}:patient_id>",
    summary="One patient, with their address and emergency contact",
    tag="patients",
    response=PatientOut,
    errors=(404,),
)
def get_patient(ctx: Context, patient_id: int) -> PatientOut:
    """A patient's contact details, home address and emergency contact (no clinical notes)."""
    return patient_out(visible_patient(ctx, patient_id))


@operation(
    "GET",
    "/patients/by-phone/<phone>/assigned-nurse",
    summary="The assigned nurse of the patient with this phone number",
    tag="patients",
    response=AssignedNurse,
    errors=(404,),
)
def assigned_nurse(ctx: Context, phone: str) -> AssignedNurse:
    """Look a patient up by phone (E.164 such as +12025550101; URL-encode the `+` as %2B in
    strict clients) and give their primary and backup nurses today."""
    patient = find_patient_by_phone(db.session(), phone[:64])
    if patient is not None:
        patient = db.session.scalar(scoped_patients(ctx).where(Patient.id == patient.id))
    if patient is None:
        raise ApiProblem("not_found", "No patient has that phone number.")
    today = patient_today(patient, ctx.now)
    primary = active_assignment(db.session(), patient.id, on=today)
    backup = active_assignment(db.session(), patient.id, on=today, role=AssignmentRole.BACKUP)
    return AssignedNurse(
        patient_id=patient.id,
        patient_name=patient.full_name,
        time_zone=patient.time_zone,
        primary=nurse_out(primary.nurse) if primary else None,
        primary_since=primary.valid_from if primary else None,
        backup=nurse_out(backup.nurse) if backup else None,
    )
