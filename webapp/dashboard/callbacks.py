"""Callback requests: callers who needed a person when none could take the call.

The phone agent records one when a caller asks for staff and no staff line is set (or the
voice connection is lost for good). Coordinators work through the open ones, oldest first,
and mark each done once they have called the patient back.
"""

from __future__ import annotations

from flask import request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from core.errors import InvalidState
from core.models import CallbackRequest, CallbackStatus, Patient, Role
from core.services.calls import resolve_callback_request
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import actor, blueprint, finish, is_partial, paginate, render

bp = blueprint("callbacks", __name__, url_prefix="/callbacks")
STAFF = (Role.ADMIN, Role.COORDINATOR)


def _patient_names(rows: list[CallbackRequest]) -> dict[int, str]:
    ids = {row.patient_id for row in rows if row.patient_id is not None}
    if not ids:
        return {}
    patients = db.session.scalars(select(Patient).where(Patient.id.in_(ids)))
    return {patient.id: patient.full_name for patient in patients}


@bp.get("/")
@roles_required(*STAFF)
def index() -> Response:
    """Open requests, oldest first (a queue); or the done ones, most recently done first."""
    done = request.args.get("status") == CallbackStatus.DONE
    stmt = select(CallbackRequest).where(
        CallbackRequest.status == (CallbackStatus.DONE if done else CallbackStatus.OPEN)
    )
    if done:
        stmt = stmt.order_by(CallbackRequest.resolved_at.desc(), CallbackRequest.id.desc())
    else:
        stmt = stmt.order_by(CallbackRequest.created_at, CallbackRequest.id)
    page = paginate(stmt)
    return render(
        "callbacks/page.html",
        "callbacks/_table.html",
        page=page,
        done=done,
        names=_patient_names(list(page.items)),
    )


@bp.post("/<int:request_id>/done")
@roles_required(*STAFF)
def resolve(request_id: int) -> Response:
    """Mark a request done once the patient has been called back; answers with its row."""
    try:
        row = resolve_callback_request(db.session(), request_id, actor=actor(), now=now_utc())
    except InvalidState as exc:
        db.session.rollback()
        already = db.session.get(CallbackRequest, request_id)
        if not is_partial() or already is None:
            return finish(url_for("callbacks.index"), exc.message, "error")
        return _row(already, {"error": exc.message}, 422)
    db.session.commit()
    if not is_partial():
        return finish(url_for("callbacks.index"), "Marked as called back.")
    return _row(row, {"ok": "Marked as called back."})


def _row(row: CallbackRequest, notice: dict[str, str], status: int = 200) -> Response:
    return render(
        "callbacks/_row.html",
        "callbacks/_row.html",
        status=status,
        c=row,
        names=_patient_names([row]),
        notice=notice,
    )
