"""Nurses' private calendar feeds: the secret in the URL is the only credential."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, abort, current_app

from core.notifications.feeds import calendar_feed, nurse_for_calendar_token
from webapp import db

bp = Blueprint("feeds", __name__)


def _now() -> datetime:
    clock = current_app.config.get("FEED_CLOCK")
    return clock() if clock else datetime.now(UTC)


@bp.get("/calendar/<token>.ics")
def nurse_calendar(token: str) -> Response:
    """The nurse's visits as iCalendar, for Google Calendar, Outlook or Apple Calendar."""
    nurse = nurse_for_calendar_token(db.session(), token)
    if nurse is None:
        abort(404)  # unknown, rotated or revoked: the same answer, so tokens cannot be probed
    body = calendar_feed(db.session(), nurse, _now())
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'inline; filename="carematix.ics"'
    # Never kept in a cache: the feed names patients. Calendar apps poll it every few minutes.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
