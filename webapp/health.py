"""Liveness and database check for process managers and load balancers."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from webapp import db

logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> tuple[Response, int]:
    """200 with {"status": "ok", "database": "ok"}, or 503 when the database cannot be reached."""
    try:
        db.session.execute(text("SELECT 1"))
        # End the transaction now: on SQLite it holds the write lock until the request ends.
        db.session.rollback()
    except Exception as exc:  # Any failure means "not healthy"; the caller only needs the verdict.
        # The class name is enough to diagnose; the message may carry hosts or paths.
        logger.warning("health check: database unreachable (%s)", type(exc).__name__)
        return jsonify(status="error", database="error"), 503
    return jsonify(status="ok", database="ok"), 200
