"""Time off: a nurse asks from "My schedule"; coordinators approve or decline in a queue."""

from __future__ import annotations

from typing import Any

from flask import abort, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from core.errors import DomainError, OverrideCollision
from core.models import Role, TimeOffRequest
from core.operations import AskTimeOff, DeclineTimeOff, validate_form
from core.services.time_off import (
    approve_time_off,
    decline_time_off,
    pending_requests,
    request_time_off,
    requests_of,
    would_collide,
)
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import (
    actor,
    blueprint,
    errors_of,
    finish,
    reads_only,
    render,
)

bp = blueprint("time_off", __name__)
STAFF = (Role.ADMIN, Role.COORDINATOR)


def _own_nurse_id() -> int:
    if current_user.nurse_id is None:
        abort(403)
    return int(current_user.nurse_id)


def my_requests_context(nurse_id: int) -> dict[str, Any]:
    """What "My schedule" needs to show the nurse's requests and the form to ask."""
    return {"time_off_requests": requests_of(db.session(), nurse_id), "time_off_errors": {}}


def _asking_again(nurse_id: int, errors: dict[str, str]) -> Response:
    """The nurse's requests and the form as she filled it in, with what to fix."""
    return render(
        "time_off/ask.html",
        "time_off/_mine.html",
        status=422,
        time_off_requests=requests_of(db.session(), nurse_id),
        time_off_errors=errors,
        form=request.form,
    )


@bp.post("/my-schedule/time-off")
@roles_required(Role.NURSE)
def ask() -> Response:
    """A nurse asks for time off; a coordinator decides."""
    nurse_id = _own_nurse_id()
    asked, errors = validate_form(AskTimeOff, request.form)
    if asked is None:
        return _asking_again(nurse_id, errors)
    try:
        request_time_off(db.session(), nurse_id, **asked.model_dump(), actor=actor(), now=now_utc())
    except DomainError as exc:
        db.session.rollback()
        return _asking_again(nurse_id, errors_of(exc))
    db.session.commit()
    return finish(url_for("schedule.mine"), "Time off requested; a coordinator will decide.")


def _queue(
    *,
    decided: TimeOffRequest | None = None,
    collisions: list[OverrideCollision] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    pending = pending_requests(db.session())
    return render(
        "time_off/page.html",
        "time_off/_queue.html",
        status=status,
        pending=[(r, would_collide(db.session(), r)) for r in pending],
        decided=decided,
        collisions=collisions,
        errors=errors or {},
    )


@bp.get("/time-off/")
@reads_only
@roles_required(*STAFF)
def queue() -> Response:
    """Requests waiting for a decision, each with the booked visits it would collide with."""
    return _queue()


@bp.post("/time-off/<int:request_id>/approve")
@roles_required(*STAFF)
def approve(request_id: int) -> Response:
    """Approve: the time off becomes an override; colliding visits are listed to move."""
    try:
        decided, collisions = approve_time_off(
            db.session(), request_id, actor=actor(), now=now_utc()
        )
    except DomainError as exc:
        db.session.rollback()
        return _queue(errors={"_form": exc.message}, status=422)
    db.session.commit()
    return _queue(decided=decided, collisions=collisions)


@bp.post("/time-off/<int:request_id>/decline")
@roles_required(*STAFF)
def decline(request_id: int) -> Response:
    """Decline, with an optional note the nurse sees."""
    declining, errors = validate_form(DeclineTimeOff, request.form)
    if declining is None:
        return _queue(errors={"_form": next(iter(errors.values()))}, status=422)
    try:
        decided = decline_time_off(
            db.session(), request_id, **declining.model_dump(), actor=actor(), now=now_utc()
        )
    except DomainError as exc:
        db.session.rollback()
        return _queue(errors={"_form": exc.message}, status=422)
    db.session.commit()
    return _queue(decided=decided)
