"""Nurses: add, change and deactivate them; set their weekly hours, time off and extra hours."""

from __future__ import annotations

from datetime import time

from core.models import Nurse
from core.services.availability import (
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
    refuse_unplanned_deactivation,
)
from core.services.people import create_nurse, update_nurse
from webapp import db
from webapp.api.appointments import actor
from webapp.api.queries import (
    nurse_out,
    override_out,
    visible_nurse,
    visit_outside_hours,
    weekly_window_out,
)
from webapp.api.registry import ID, STAFF, Context, operation
from webapp.api.schemas import (
    NurseCreate,
    NurseDeactivate,
    NurseOut,
    NurseUpdate,
    OverrideAdded,
    OverrideCreate,
    OverrideRemoved,
    WeeklyHoursOut,
    WeeklyHoursPut,
)

TAG = "nurses"
NURSE_RULES = (
    "a name is only spaces",
    "`phone` is not a possible phone number",
    "`email` does not look like an email address",
    "`time_zone` is not an IANA time zone",
)


@operation(
    "POST",
    "/nurses",
    summary="Add a nurse",
    tag=TAG,
    body=NurseCreate,
    response=NurseOut,
    status=201,
    roles=STAFF,
    rules=NURSE_RULES,
    keeps_answers=True,
)
def add_nurse(ctx: Context, body: NurseCreate) -> NurseOut:
    """Add a nurse through the dashboard's own service; set her hours with PUT
    /nurses/{nurse_id}/weekly-hours before she can be booked."""
    return nurse_out(create_nurse(db.session(), actor=actor(ctx), now=ctx.now, **dict(body)))


@operation(
    "PATCH",
    f"/nurses/<{ID}:nurse_id>",
    summary="Change a nurse's details or visit settings",
    tag=TAG,
    body=NurseUpdate,
    response=NurseOut,
    roles=STAFF,
    errors=(404, 409),
    rules=(
        *NURSE_RULES,
        "`active` is false while she still has upcoming visits or patients (deactivate her "
        "with a handover: POST /nurses/{nurse_id}/deactivate)",
    ),
    keeps_answers=True,
)
def change_nurse(ctx: Context, nurse_id: int, body: NurseUpdate) -> NurseOut:
    """Change the fields sent; the others stay. `active` true reactivates her; false
    deactivates her only when nothing needs handing over, as the dashboard's edit form."""
    nurse: Nurse = visible_nurse(ctx, nurse_id)
    changes = body.model_dump(exclude_unset=True)
    if nurse.active and changes.get("active") is False:
        refuse_unplanned_deactivation(
            db.session(), nurse.id, now=ctx.now, instead=f"use POST /nurses/{nurse.id}/deactivate"
        )
    return nurse_out(update_nurse(db.session(), nurse.id, actor=actor(ctx), now=ctx.now, **changes))


@operation(
    "POST",
    f"/nurses/<{ID}:nurse_id>/deactivate",
    summary="Deactivate a nurse, handing over her patients and visits",
    tag=TAG,
    body=NurseDeactivate,
    response=NurseOut,
    roles=STAFF,
    errors=(404, 409),
    rules=(
        "a patient she is primary for, or an upcoming visit of hers, has no choice in "
        "`patients` or `visits`, or names no other active nurse (the error's field names it: "
        "`patient-<id>`, `visit-<id>`)",
        "a patient's choice is their backup (null) but they have none",
    ),
    keeps_answers=True,
)
def deactivate_nurse(ctx: Context, nurse_id: int, body: NurseDeactivate) -> NurseOut:
    """As the dashboard's deactivation page: each patient she is primary for goes to the nurse
    named (null: their backup covers), each upcoming visit moves to the nurse named (null:
    it is cancelled), her backup roles end, and she is deactivated: all of it or none. A
    nurse already inactive answers 409; a visit the chosen nurse is not free for, 409."""
    nurse = visible_nurse(ctx, nurse_id)
    deactivate_with_handover(
        db.session(),
        nurse.id,
        patients={
            p.patient_id: BACKUP_COVERS if p.nurse_id is None else str(p.nurse_id)
            for p in body.patients
        },
        visits={
            v.appointment_id: CANCEL_VISIT if v.nurse_id is None else str(v.nurse_id)
            for v in body.visits
        },
        actor=actor(ctx),
        now=ctx.now,
    )
    return nurse_out(nurse)


def _clock(value: str | None) -> time | None:
    return None if value is None else time.fromisoformat(value)


@operation(
    "PUT",
    f"/nurses/<{ID}:nurse_id>/weekly-hours",
    summary="Set a nurse's weekly hours",
    tag=TAG,
    body=WeeklyHoursPut,
    response=WeeklyHoursOut,
    roles=STAFF,
    errors=(404, 409),
    rules=(
        "a window's end is not after its start (00:00 is midnight), or its `valid_to` is "
        "before its `valid_from`",
        "two windows on the same weekday overlap on dates they share",
    ),
    keeps_answers=True,
)
def put_weekly_hours(ctx: Context, nurse_id: int, body: WeeklyHoursPut) -> WeeklyHoursOut:
    """Replace all her weekly windows with these. The change is saved even when booked visits
    fall outside the new hours: they are listed in `outside_hours` to move, as the dashboard
    lists them."""
    nurse = visible_nurse(ctx, nurse_id)
    windows = [
        WeeklyWindowInput(
            weekday=w.weekday,
            start=time.fromisoformat(w.start),
            end=time.fromisoformat(w.end),
            valid_from=w.valid_from,
            valid_to=w.valid_to,
        )
        for w in body.windows
    ]
    set_weekly_availability(db.session(), nurse.id, windows, actor=actor(ctx), now=ctx.now)
    outside = visits_outside_hours(db.session(), nurse.id, ctx.now)
    return WeeklyHoursOut(
        nurse_id=nurse.id,
        time_zone=nurse.time_zone,
        weekly=[weekly_window_out(w) for w in nurse.availability],
        outside_hours=[visit_outside_hours(c) for c in outside],
    )


@operation(
    "POST",
    f"/nurses/<{ID}:nurse_id>/overrides",
    summary="Give a nurse time off or extra hours",
    tag=TAG,
    body=OverrideCreate,
    response=OverrideAdded,
    status=201,
    roles=STAFF,
    errors=(404,),
    rules=(
        "`end_date` is before `start_date`, or more than a year after it",
        "only one of `start_time` and `end_time` is given, or the end is not after the start "
        "(00:00 is midnight)",
    ),
    keeps_answers=True,
)
def add_nurse_override(ctx: Context, nurse_id: int, body: OverrideCreate) -> OverrideAdded:
    """Time off or extra hours on dates in her zone, all day or between two times. Time off
    is saved even over booked visits: those are listed in `collisions`, to move or cancel."""
    nurse = visible_nurse(ctx, nurse_id)
    override, collisions = add_override(
        db.session(),
        nurse.id,
        kind=body.kind,
        start_date=body.start_date,
        end_date=body.end_date,
        start_time=_clock(body.start_time),
        end_time=_clock(body.end_time),
        reason=body.reason,
        actor=actor(ctx),
        now=ctx.now,
    )
    return OverrideAdded(
        override=override_out(override),
        collisions=[visit_outside_hours(c) for c in collisions],
    )


@operation(
    "DELETE",
    f"/nurses/<{ID}:nurse_id>/overrides/<{ID}:override_id>",
    summary="Remove a nurse's time off or extra hours",
    tag=TAG,
    response=OverrideRemoved,
    roles=STAFF,
    errors=(404, 409),
    keeps_answers=True,
)
def remove_nurse_override_view(ctx: Context, nurse_id: int, override_id: int) -> OverrideRemoved:
    """Remove one of her overrides (ids are in GET /nurses/{nurse_id}/availability). Visits
    booked in removed extra hours stay booked and are listed in `outside_hours`."""
    nurse = visible_nurse(ctx, nurse_id)
    stranded = remove_nurse_override(
        db.session(), nurse.id, override_id, actor=actor(ctx), now=ctx.now
    )
    return OverrideRemoved(
        override_id=override_id, outside_hours=[visit_outside_hours(c) for c in stranded]
    )
