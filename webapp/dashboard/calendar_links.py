"""Nurses' calendar subscription links: create a new one (the old stops working) or turn off.

Only the token's hash is stored, so the full URL can be shown once, right after it is made.
A nurse manages their own link from "My schedule"; coordinators and admins any nurse's.
"""

from __future__ import annotations

from flask import abort, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from core.models import Nurse, Role
from core.notifications.feeds import revoke_calendar_token, rotate_calendar_token
from core.services import access
from webapp import db
from webapp.auth import now_utc, roles_required
from webapp.dashboard.common import actor, blueprint, render, viewer

bp = blueprint("calendar_links", __name__)
STAFF = (Role.ADMIN, Role.COORDINATOR)


def _answer(nurse: Nurse, mine: bool, feed_url: str | None, notice: str) -> Response:
    response = render(
        "calendar_links/page.html",
        "calendar_links/_link.html",
        nurse=nurse,
        mine=mine,
        feed_url=feed_url,
        notice=notice,
    )
    response.headers["Cache-Control"] = "no-store"  # it may carry the secret URL
    return response


def _rotate(nurse: Nurse, mine: bool) -> Response:
    token = rotate_calendar_token(db.session(), nurse.id, actor(), now_utc())
    db.session.commit()
    feed_url = url_for("feeds.nurse_calendar", token=token, _external=True)
    return _answer(nurse, mine, feed_url, "New link created; any earlier link no longer works.")


def _revoke(nurse: Nurse, mine: bool) -> Response:
    revoke_calendar_token(db.session(), nurse.id, actor(), now_utc())
    db.session.commit()
    return _answer(nurse, mine, None, "Calendar link turned off.")


def _my_nurse() -> Nurse:
    if current_user.nurse_id is None:
        abort(403)
    return access.get_nurse(db.session(), viewer(), current_user.nurse_id)


@bp.post("/my-schedule/calendar-link")
@roles_required(Role.NURSE)
def rotate_mine() -> Response:
    """A new subscription link for the signed-in nurse (shown once)."""
    return _rotate(_my_nurse(), mine=True)


@bp.post("/my-schedule/calendar-link/off")
@roles_required(Role.NURSE)
def revoke_mine() -> Response:
    """Turn the signed-in nurse's subscription link off."""
    return _revoke(_my_nurse(), mine=True)


@bp.post("/nurses/<int:nurse_id>/calendar-link")
@roles_required(*STAFF)
def rotate(nurse_id: int) -> Response:
    """A new subscription link for a nurse (shown once, to pass on to them)."""
    return _rotate(access.get_nurse(db.session(), viewer(), nurse_id), mine=False)


@bp.post("/nurses/<int:nurse_id>/calendar-link/off")
@roles_required(*STAFF)
def revoke(nurse_id: int) -> Response:
    """Turn a nurse's subscription link off."""
    return _revoke(access.get_nurse(db.session(), viewer(), nurse_id), mine=False)
