"""The waitlist on the dashboard: patients waiting for an earlier time, joined from the
patient's page, and the times held for them, accepted or declined on their behalf."""

from __future__ import annotations

from flask import request, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from core.errors import DomainError, NotFound
from core.models import (
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    AssignmentRole,
    OfferStatus,
    PartOfDay,
    Patient,
    Role,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
    Weekday,
)
from core.operations import JoinWaitlist, validate_form
from core.scheduling import zone
from core.services import access, waitlist
from core.services.assignments import active_assignment, patient_today
from core.timefmt import short_local
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import (
    actor,
    blueprint,
    errors_of,
    finish,
    id_field,
    paginate,
    render,
    viewer,
    viewer_zone,
)

bp = blueprint("waitlist", __name__, url_prefix="/waitlist")
STAFF = (Role.ADMIN, Role.COORDINATOR)


@bp.app_template_global("waitlist_entry_of")
def waitlist_entry_of(patient_id: int) -> WaitlistEntry | None:
    """The patient's entry still waiting (or holding a time), for their page."""
    return db.session.scalar(
        select(WaitlistEntry)
        .where(WaitlistEntry.patient_id == patient_id, WaitlistEntry.status.in_(waitlist.OPEN))
        .options(selectinload(WaitlistEntry.offers))
    )


@bp.app_template_global("held_offer")
def held_offer(entry: WaitlistEntry) -> WaitlistOffer | None:
    """The time held for the entry right now (an expired hold is not held)."""
    now = now_utc()
    return next(
        (o for o in entry.offers if o.status == OfferStatus.OFFERED and o.expires_at > now), None
    )


@bp.app_template_global("waitlist_window")
def waitlist_window(entry: WaitlistEntry) -> str:
    """The entry's window in words: "Mar 4 to Mar 7; Monday, Tuesday; morning"."""
    first, last = entry.from_date, entry.until_date
    dates = f"{first:%b} {first.day} to {last:%b} {last.day}"
    days = ", ".join(Weekday.numbered(n).label for n in entry.weekdays) or "any day"
    parts = ", ".join(PartOfDay(p).label.lower() for p in entry.parts_of_day) or "any time"
    return f"{dates}; {days}; {parts}"


def _team(patient: Patient) -> list[tuple[str, str]]:
    """The nurses a patient may wait for: their primary and backup today."""
    today = patient_today(patient, now_utc())
    team = []
    for role in (AssignmentRole.PRIMARY, AssignmentRole.BACKUP):
        assignment = active_assignment(db.session(), patient.id, on=today, role=role)
        if assignment is not None:
            team.append((str(assignment.nurse_id), f"{assignment.nurse.display_name} ({role})"))
    return team


def _join_form(
    patient: Patient, errors: dict[str, str], status: int = 200, chosen_visit: int | None = None
) -> Response:
    form = request.form if request.method == "POST" else None
    return render(
        "waitlist/join.html",
        "waitlist/_patient.html",
        status=status,
        patient=patient,
        errors=errors,
        form=form,
        chosen_weekdays=form.getlist("weekdays") if form else [],
        chosen_parts=form.getlist("parts_of_day") if form else [],
        chosen_visit=chosen_visit,
        joining=True,
    )


@bp.app_template_global("waitlist_join_context")
def waitlist_join_context(patient: Patient) -> dict[str, object]:
    """What the patient page's join form needs."""
    return {
        "team": _team(patient),
        "weekdays": list(Weekday),
        "parts": list(PartOfDay),
        "kinds": AppointmentKind,
        "visits": _upcoming_visits(patient),
    }


def _upcoming_visits(patient: Patient) -> list[tuple[str, str]]:
    """The patient's scheduled visits still ahead, as choices of a visit to bring earlier."""
    tz = zone(viewer_zone())
    visits = db.session.scalars(
        select(Appointment)
        .where(
            Appointment.patient_id == patient.id,
            Appointment.status == AppointmentStatus.SCHEDULED,
            Appointment.start_at > now_utc(),
        )
        .options(selectinload(Appointment.nurse))
        .order_by(Appointment.start_at)
        .limit(20)
    )
    return [
        (str(v.id), f"{short_local(v.start_at.astimezone(tz))} with {v.nurse.display_name}")
        for v in visits
    ]


@bp.get("/")
@roles_required(*STAFF)
def index() -> Response:
    """Who is waiting, first in line first, with the times held for them; or past entries."""
    closed = request.args.get("show") == "closed"
    statuses = [s for s in WaitlistStatus if (s in waitlist.OPEN) != closed]
    stmt = (
        select(WaitlistEntry)
        .where(WaitlistEntry.status.in_(statuses))
        .options(
            selectinload(WaitlistEntry.patient),
            selectinload(WaitlistEntry.nurse),
            selectinload(WaitlistEntry.offers).selectinload(WaitlistOffer.nurse),
        )
    )
    if closed:
        stmt = stmt.order_by(WaitlistEntry.joined_at.desc(), WaitlistEntry.id.desc())
    else:
        stmt = stmt.order_by(WaitlistEntry.joined_at, WaitlistEntry.id)
    return render("waitlist/page.html", "waitlist/_table.html", page=paginate(stmt), closed=closed)


@bp.get("/join/<int:patient_id>")
@roles_required(*STAFF)
def new(patient_id: int) -> Response:
    """The form to put a patient on the waitlist (`appointment_id`: to bring that visit
    earlier, chosen already)."""
    patient = access.get_patient(db.session(), viewer(), patient_id, now_utc())
    chosen = id_field("appointment_id", "visit", required=False, source=request.args)
    if chosen is not None and str(chosen) not in dict(_upcoming_visits(patient)):
        raise NotFound("That is not one of this patient's visits still ahead.")
    return _join_form(patient, {}, chosen_visit=chosen)


@bp.post("/join/<int:patient_id>")
@roles_required(*STAFF)
def join(patient_id: int) -> Response:
    """Put the patient on the waitlist; the form again with every problem when it cannot."""
    patient = access.get_patient(db.session(), viewer(), patient_id, now_utc())
    details, errors = validate_form(
        JoinWaitlist,
        request.form,
        patient_id=patient.id,
        weekdays=request.form.getlist("weekdays"),
        parts_of_day=request.form.getlist("parts_of_day"),
    )
    if details is None:
        return _join_form(patient, errors, 422)
    try:
        waitlist.join(
            db.session(),
            patient_id=patient.id,
            nurse_id=details.nurse_id,
            from_date=details.from_date,
            until_date=details.until_date,
            weekdays=[day.number for day in details.weekdays],
            parts_of_day=[part.value for part in details.parts_of_day],
            kind=details.kind,
            appointment_id=details.appointment_id,
            actor=actor(),
            now=now_utc(),
        )
    except DomainError as exc:
        db.session.rollback()
        return _join_form(patient, errors_of(exc), 422)
    db.session.commit()
    return finish(
        url_for("patients.show", patient_id=patient.id),
        f"{patient.full_name} is on the waitlist: freed time that fits will be held for them.",
    )


def _done(message: str, category: str = "success") -> Response:
    """Back where the action was taken (the patient's page or the waitlist)."""
    target = request.form.get("next", "")
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("waitlist.index")
    return finish(target, message, category)


@bp.post("/<int:entry_id>/cancel")
@roles_required(*STAFF)
def cancel(entry_id: int) -> Response:
    """Take a patient off the waitlist; a time held for them goes to the next in line."""
    try:
        waitlist.cancel(db.session(), entry_id, actor=actor(), now=now_utc())
    except DomainError as exc:
        db.session.rollback()
        return _done(exc.message, "error")
    db.session.commit()
    return _done("Taken off the waitlist.")


@bp.post("/offers/<int:offer_id>/accept")
@roles_required(*STAFF)
def accept(offer_id: int) -> Response:
    """Book the held time for the patient (or move the visit they wanted earlier onto it),
    through the ordinary booking checks."""
    try:
        visit = waitlist.accept(db.session(), offer_id, actor=actor(), now=now_utc())
    except DomainError as exc:
        db.session.rollback()
        return _done(exc.message, "error")
    db.session.commit()
    told = (
        "Moved their visit to the held time."
        if visit.rescheduled_from_id is not None
        else "Booked the held time."
    )
    return finish(url_for("appointments.show", appointment_id=visit.id), told)


@bp.post("/offers/<int:offer_id>/decline")
@roles_required(*STAFF)
def decline(offer_id: int) -> Response:
    """The patient passes on the held time: it goes to the next in line; they wait on."""
    try:
        waitlist.decline(db.session(), offer_id, actor=actor(), now=now_utc())
    except DomainError as exc:
        db.session.rollback()
        return _done(exc.message, "error")
    db.session.commit()
    return _done("Declined: the time went to the next in line, and the patient waits on.")
