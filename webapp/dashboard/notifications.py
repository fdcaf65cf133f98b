"""Notifications: the outbox as a filterable list, and retrying a message that did not go out.

A message whose channel had no settings when it came due is "not configured": once the
channel is set up it is not sent on its own (it may be out of date by then), but it can be
retried here like a failed one.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from core.errors import NotFound
from core.models import (
    Channel,
    Notification,
    NotificationStatus,
    Nurse,
    Patient,
    RecipientKind,
    Role,
    User,
)
from core.notifications.delivery import RETRYABLE_STATUSES, retry_notification
from core.notifications.queries import notification_events, notifications
from core.services.common import audit
from webapp import channels, db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import (
    actor,
    blueprint,
    finish,
    is_partial,
    paginate,
    render,
)

bp = blueprint("notifications", __name__, url_prefix="/notifications")
STAFF = (Role.ADMIN, Role.COORDINATOR)


def recipient_names(rows: Iterable[Notification]) -> dict[str, str]:
    """Display names of the rows' recipients, keyed "patient:ID", "nurse:ID" or "user:ID"."""
    rows = list(rows)
    names: dict[str, str] = {}
    patient_ids = {r.patient_id for r in rows if r.patient_id is not None}
    nurse_ids = {r.nurse_id for r in rows if r.nurse_id is not None}
    user_ids = {r.user_id for r in rows if r.user_id is not None}
    if patient_ids:
        for patient in db.session.scalars(select(Patient).where(Patient.id.in_(patient_ids))):
            names[f"patient:{patient.id}"] = patient.full_name
    if nurse_ids:
        for nurse in db.session.scalars(select(Nurse).where(Nurse.id.in_(nurse_ids))):
            names[f"nurse:{nurse.id}"] = nurse.display_name
    if user_ids:
        for user in db.session.scalars(select(User).where(User.id.in_(user_ids))):
            names[f"user:{user.id}"] = user.email
    return names


def _choice(name: str, allowed: Iterable[str]) -> str | None:
    value = request.args.get(name, "")
    return value if value in set(allowed) else None


@bp.get("/")
@roles_required(*STAFF)
def index() -> Response:
    """Every notification, newest first, filterable by status, channel, recipient and event."""
    events = notification_events(db.session())
    page = paginate(
        notifications(
            status=_choice("status", [s.value for s in NotificationStatus]),
            channel=_choice("channel", [c.value for c in Channel]),
            recipient_kind=_choice("recipient_kind", [k.value for k in RecipientKind]),
            event=_choice("event", events),
        )
    )
    items = page.items
    return render(
        "notifications/page.html",
        "notifications/_table.html",
        page=page,
        names=recipient_names(items),
        statuses=list(NotificationStatus),
        channels=list(Channel),
        kinds=list(RecipientKind),
        events=events,
        args=request.args,
        retryable=RETRYABLE_STATUSES,
        delivering=channels.delivering(),
        set_aside=[setup for setup in channels.unconfigured() if setup.channel != "calls"],
    )


def _notification(notification_id: int) -> Notification:
    row = db.session.get(Notification, notification_id)
    if row is None:
        raise NotFound(f"No notification with id {notification_id}.")
    return row


def _row(row: Notification, notice: dict[str, str], status: int = 200) -> Response:
    return render(
        "notifications/_row.html",
        "notifications/_row.html",
        status=status,
        n=row,
        names=recipient_names([row]),
        retryable=RETRYABLE_STATUSES,
        delivering=channels.delivering(),
        notice=notice,
    )


@bp.post("/<int:notification_id>/retry")
@roles_required(*STAFF)
def retry(notification_id: int) -> Response:
    """Queue a message that did not go out for one more attempt; answers with its row."""
    row = _notification(notification_id)
    now = now_utc()
    setup = channels.message_setup(row.channel)
    if row.status == NotificationStatus.UNCONFIGURED and setup and not setup.configured:
        message = f"Not queued: {setup.reason}"
    elif not retry_notification(db.session(), row.id, now):
        message = (
            "Only failed, unknown or not configured messages can be retried;"
            f" this one is {row.status}."
        )
    else:
        message = ""
    if message:
        db.session.rollback()
        if not is_partial():
            return finish(url_for("notifications.index"), message, "error")
        return _row(row, {"error": message}, 422)
    audit(
        db.session(),
        actor=actor(),
        action="notification.retried",
        entity_type="notification",
        entity_id=row.id,
        now=now,
    )
    db.session.commit()
    if not is_partial():
        return finish(url_for("notifications.index"), "Queued for another attempt.")
    return _row(row, {"ok": "Queued for another attempt."})
