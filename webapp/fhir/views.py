"""The FHIR R4B interactions under /fhir/R4B: reads, searches and booking an Appointment.

Each view gets the caller (the /api/v1 bearer token) and the request's `now`, and returns a
resource or a Bundle; `_answer` owns the transaction and turns every refusal into an
OperationOutcome. Role scoping is /api/v1's own (webapp.api.queries), so a nurse's token sees
only her schedule, her visits and her patients, and other records answer 404.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import Any

from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.resource import Resource
from flask import Blueprint, Response, current_app, request
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from core.errors import DomainError, SlotUnavailable
from core.limits import MAX_ID
from core.logs import log_failure
from core.models import Appointment, AppointmentStatus, Nurse
from core.services.booking import free_slots
from webapp import db
from webapp.api.appointments import book_for
from webapp.api.auth import authenticate_request
from webapp.api.problems import ApiProblem
from webapp.api.queries import (
    scoped_appointments,
    scoped_nurses,
    visible_appointment,
    visible_nurse,
    visible_patient,
)
from webapp.api.registry import MAX_BODY_BYTES, Context, clock, idempotency_key
from webapp.fhir import resources
from webapp.fhir.capability import capability_statement
from webapp.fhir.errors import FHIR_JSON, FhirError, from_domain_error, from_problem
from webapp.fhir.search import (
    Page,
    base_url,
    bundle,
    date_range,
    page,
    reference_ids,
    search_args,
    token_codes,
)

logger = logging.getLogger(__name__)

bp = Blueprint("fhir", __name__, url_prefix="/fhir/R4B")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
DEFAULT_SLOT_DAYS = 7
MAX_SLOT_DAYS = 31
_ROUTES: list[tuple[str, str, str]] = []  # (rule, endpoint, method) of every interaction


def interaction(
    rule: str, method: str = "GET", *, auth: bool = True
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Route a FHIR interaction on the blueprint; `auth` False only for the metadata."""

    def decorator(view: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(view)
        def wrapped(**path: str) -> Response:
            return _answer(view, path, auth)

        # OPTIONS is answered by `unmatched` from the facade's own routes: Flask's would list
        # the catch-all's methods too.
        bp.add_url_rule(
            rule,
            endpoint=view.__name__,
            view_func=wrapped,
            methods=[method],
            provide_automatic_options=False,
        )
        _ROUTES.append((rule, view.__name__, method))
        return view

    return decorator


def _answer(view: Callable[..., Response], path: dict[str, str], auth: bool) -> Response:
    """Run the view in one transaction; every failure is an OperationOutcome."""
    try:
        now = clock()
        user = authenticate_request(now) if auth else None
        if user is not None:
            db.session.commit()  # keep the token's last use even if the request then fails
        response = view(Context(user=user, now=now), **path)
        db.session.commit()
        return response
    except Exception as exc:
        db.session.rollback()
        return _refusal(exc).response()


def _refusal(exc: Exception) -> FhirError:
    """The OperationOutcome for whatever stopped a view."""
    if isinstance(exc, FhirError):
        return exc
    if isinstance(exc, ApiProblem):
        return from_problem(exc)
    if isinstance(exc, SlotUnavailable):
        free = [resources.SlotKey.of(slot).id for slot in exc.alternatives]
        return from_domain_error(exc, [f"Free instead: Slot/{slot_id}" for slot_id in free])
    if isinstance(exc, DomainError):
        return from_domain_error(exc)
    if isinstance(exc, IntegrityError):
        # A concurrent request won a race the services' own checks could not see.
        return FhirError(409, "The change conflicts with another one made at the same time.")
    log_failure(logger, "FHIR %s %s failed", request.method, request.path)
    if current_app.config.get("API_RAISE_ERRORS"):
        raise exc
    return FhirError(500, "Something failed on our side.")


def fhir_json(resource: Resource, status: int = 200, **headers: str) -> Response:
    """A resource as application/fhir+json."""
    response = Response(resource.model_dump_json(), status=status, mimetype=FHIR_JSON)
    response.headers.update(headers)
    return response


def record_id(value: str, resource_type: str) -> int:
    """Our id in a FHIR id; one that cannot be ours is a 404 like a missing record."""
    if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
        raise FhirError(404, f"No {resource_type} with id {value!r}.")
    return int(value)


def _search(stmt: Select[Any], at: Page, convert: Callable[[Any], Resource]) -> Response:
    """One page of an ordered query's rows as a searchset Bundle."""
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = db.session.scalars(stmt.limit(at.count).offset(at.offset))
    return fhir_json(bundle([convert(row) for row in rows], total or 0, at))


@interaction("/metadata", auth=False)
def metadata(ctx: Context) -> Response:
    """The CapabilityStatement (no token needed: clients read it before signing in)."""
    return fhir_json(capability_statement(ctx.now))


@interaction("/Practitioner/<id>")
def read_practitioner(ctx: Context, id: str) -> Response:
    """A nurse as a Practitioner."""
    return fhir_json(resources.practitioner(visible_nurse(ctx, record_id(id, "Practitioner"))))


@interaction("/Patient/<id>")
def read_patient(ctx: Context, id: str) -> Response:
    """A patient's minimum necessary details."""
    return fhir_json(resources.patient(visible_patient(ctx, record_id(id, "Patient"))))


@interaction("/Schedule/<id>")
def read_schedule(ctx: Context, id: str) -> Response:
    """A nurse's Schedule (it has her id)."""
    nurse = visible_nurse(ctx, record_id(id, "Schedule"))
    return fhir_json(resources.schedule(nurse, ctx.now))


@interaction("/Schedule")
def search_schedules(ctx: Context) -> Response:
    """Schedules by nurse (actor)."""
    args = search_args("Schedule")
    stmt = scoped_nurses(ctx).order_by(Nurse.id)
    nurse_ids = reference_ids(args, "actor", "Practitioner")
    if nurse_ids is not None:
        stmt = stmt.where(Nurse.id.in_(nurse_ids))
    return _search(stmt, page(args), lambda nurse: resources.schedule(nurse, ctx.now))


@interaction("/Slot")
def search_slots(ctx: Context) -> Response:
    """Free time of the active nurses the caller may see, by schedule, nurse, specialty and
    start; computed by the booking engine, so every Slot found can be booked."""
    args = search_args("Slot")
    statuses = token_codes(args, "status")
    if statuses is not None and statuses != {"free"}:
        raise FhirError(
            400, "Only free Slots are published: search status=free.", expression="status"
        )
    low, high = date_range(args, "start")
    low = max(low or ctx.now, ctx.now)
    high = high or low + timedelta(days=DEFAULT_SLOT_DAYS)
    if high - low > timedelta(days=MAX_SLOT_DAYS):
        raise FhirError(
            400, f"Ask for at most {MAX_SLOT_DAYS} days of Slots at a time.", expression="start"
        )
    stmt = scoped_nurses(ctx).where(Nurse.active.is_(True)).order_by(Nurse.id)
    for name, resource_type in (("schedule", "Schedule"), ("schedule.actor", "Practitioner")):
        nurse_ids = reference_ids(args, name, resource_type)
        if nurse_ids is not None:
            stmt = stmt.where(Nurse.id.in_(nurse_ids))
    specialties = token_codes(args, "specialty")
    found: list[tuple[resources.SlotKey, Nurse]] = []
    for nurse in db.session.scalars(stmt):
        names = {name.strip().casefold() for name in nurse.specializations or []}
        if high <= low or (specialties is not None and not names & specialties):
            continue
        slots = free_slots(db.session(), nurse.id, start=low, end=high, now=ctx.now)
        found += [(resources.SlotKey.of(slot), nurse) for slot in slots]
    found.sort(key=lambda pair: (pair[0].start, pair[0].nurse_id))
    at = page(args)
    chosen = found[at.offset : at.offset + at.count]
    return fhir_json(bundle([resources.slot(key, nurse) for key, nurse in chosen], len(found), at))


@interaction("/Slot/<id>")
def read_slot(ctx: Context, id: str) -> Response:
    """A Slot found by search, while it is still free."""
    key = resources.SlotKey.parse(id)
    if key is None:
        raise FhirError(404, f"No Slot with id {id!r}.")
    nurse = visible_nurse(ctx, key.nurse_id)
    slots = free_slots(
        db.session(),
        nurse.id,
        start=key.start,
        end=key.start + timedelta(minutes=1),
        now=ctx.now,
        duration_minutes=key.minutes,
    )
    if not nurse.active or not slots:
        raise FhirError(404, f"Slot {id} is not free (any more).")
    return fhir_json(resources.slot(key, nurse))


@interaction("/Appointment/<id>")
def read_appointment(ctx: Context, id: str) -> Response:
    """A visit as an Appointment."""
    return fhir_json(resources.appointment(visible_appointment(ctx, record_id(id, "Appointment"))))


STATUS_CODES = {code: status for status, code in resources.APPOINTMENT_STATUS.items()}


@interaction("/Appointment")
def search_appointments(ctx: Context) -> Response:
    """Visits by patient, nurse, start and status, in order of start."""
    args = search_args("Appointment")
    stmt = scoped_appointments(ctx).options(selectinload(Appointment.nurse))
    for name, resource_type, column in (
        ("patient", "Patient", Appointment.patient_id),
        ("practitioner", "Practitioner", Appointment.nurse_id),
    ):
        ids = reference_ids(args, name, resource_type)
        if ids is not None:
            stmt = stmt.where(column.in_(ids))
    low, high = date_range(args, "date")
    if low is not None:
        stmt = stmt.where(Appointment.start_at >= low)
    if high is not None:
        stmt = stmt.where(Appointment.start_at < high)
    codes = token_codes(args, "status")
    if codes is not None:
        unknown = codes - resources.FHIR_APPOINTMENT_STATUSES
        if unknown:
            raise FhirError(
                400, f"{sorted(unknown)[0]!r} is no Appointment status.", expression="status"
            )
        statuses: list[AppointmentStatus] = [STATUS_CODES[c] for c in codes if c in STATUS_CODES]
        stmt = stmt.where(Appointment.status.in_(statuses))
    stmt = stmt.order_by(Appointment.start_at, Appointment.id)
    return _search(stmt, page(args), resources.appointment)


def _appointment_body() -> FhirAppointment:
    """The request's body as an R4B Appointment: 413, 415 or 400 when it cannot be one."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise FhirError(413, f"Send at most {MAX_BODY_BYTES // 1024} KiB.")
    if request.mimetype not in {FHIR_JSON, "application/json"}:
        raise FhirError(415, f"Send the Appointment as {FHIR_JSON}.")
    raw = request.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise FhirError(413, f"Send at most {MAX_BODY_BYTES // 1024} KiB.")
    try:
        return FhirAppointment.model_validate_json(raw)
    except PydanticValidationError as exc:
        issues = exc.errors(include_url=False, include_input=False)
        words = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or 'Appointment'}: "
            + " ".join(issue["msg"].split())
            for issue in issues[:5]
        )
        raise FhirError(400, f"The body is not a valid R4B Appointment. {words}".strip()) from exc


@interaction("/Appointment", "POST")
def create_appointment(ctx: Context) -> Response:
    """Book a visit: name a Slot found by search (or a start, and the nurse), and the patient.
    201 with the Appointment; the same Idempotency-Key again answers 200 with the same one."""
    details = resources.booking(_appointment_body())
    visible_patient(ctx, details.patient_id)
    booked, status = book_for(ctx, details, details.patient_id, idempotency_key())
    visit = visible_appointment(ctx, booked.id)
    return fhir_json(
        resources.appointment(visit), status, Location=f"{base_url()}/Appointment/{visit.id}"
    )


@cache
def _fhir_map() -> Map:
    """The facade's own routes alone, to tell an unknown path (404) from a wrong method (405)."""
    return Map(
        [Rule(rule, endpoint=endpoint, methods=[method]) for rule, endpoint, method in _ROUTES]
    )


@bp.route("/", defaults={"rest": ""}, methods=ALL_METHODS, endpoint="unmatched_root")
@bp.route("/<api_any_path:rest>", methods=ALL_METHODS)
def unmatched(rest: str) -> Response:
    """Anything under /fhir/R4B no interaction matched: OPTIONS, or an OperationOutcome 404
    or 405."""
    try:
        _fhir_map().bind("fhir").match("/" + rest, method=request.method)
    except MethodNotAllowed as exc:
        allowed = ", ".join(sorted({*(exc.valid_methods or []), "OPTIONS"}))
        if request.method == "OPTIONS":
            return Response(status=204, headers={"Allow": allowed})
        return FhirError(
            405,
            f"{request.method} is not supported here; use {allowed}.",
            headers={"Allow": allowed},
        ).response()
    except NotFound:
        pass
    return FhirError(
        404, f"No FHIR interaction at {request.path}; see {base_url()}/metadata."
    ).response()
