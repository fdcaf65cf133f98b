"""The audit trail: who did what to which record, and when (admins only).

Every change, and every read of a call's transcript, is recorded by the core services with
ids and codes only, never PHI. This page lists them newest first, narrowed by record, action
or actor, so an admin can answer "who changed this, and when?".
"""

from __future__ import annotations

from flask import request
from sqlalchemy import or_, select
from werkzeug.wrappers import Response

from core.models import AuditEvent, Role, User
from webapp import db
from webapp.auth import roles_required
from webapp.dashboard.common import blueprint, paginate, reads_only, render, whole_number_arg

bp = blueprint("audit", __name__, url_prefix="/audit")

# Records with a page of their own, so an event can link to what it changed.
LINKED = {
    "patient": "patients.show",
    "nurse": "nurses.show",
    "appointment": "appointments.show",
    "call": "calls.show",
}
ENTITY_ARGUMENT = {
    "patient": "patient_id",
    "nurse": "nurse_id",
    "appointment": "appointment_id",
    "call": "call_id",
}


@bp.get("/")
@reads_only
@roles_required(Role.ADMIN)
def index() -> Response:
    """Events newest first; `entity_type`, `entity_id`, `action` and `actor` narrow them."""
    stmt = select(AuditEvent)
    entity_type = request.args.get("entity_type", "").strip()
    entity_id = whole_number_arg("entity_id", "That record id")
    action = request.args.get("action", "").strip()
    who = request.args.get("actor", "").strip()
    if entity_type:
        stmt = stmt.where(AuditEvent.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action, autoescape=True))
    if who:
        logins = select(User.id).where(User.email.contains(who, autoescape=True))
        stmt = stmt.where(
            or_(
                AuditEvent.actor.contains(who, autoescape=True),
                AuditEvent.actor_user_id.in_(logins),
            )
        )
    page = paginate(stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()))
    # Events name staff by user id (no personal data in the trail): show their logins here.
    ids = {e.actor_user_id for e in page.items if e.actor_user_id is not None}
    emails: dict[int, str] = {}
    if ids:
        for user in db.session.execute(select(User.id, User.email).where(User.id.in_(ids))):
            emails[user.id] = user.email
    return render(
        "audit/page.html",
        "audit/_table.html",
        page=page,
        emails=emails,
        args=request.args,
        linked=LINKED,
        entity_argument=ENTITY_ARGUMENT,
        entity_types=sorted(
            {"user", "notification", "callback_request", "api_token", "condition_mapping", *LINKED}
        ),
    )
