"""Liveness and database check for process managers and load balancers."""

from __future__ import annotations

import asyncio
import logging

from quart import Blueprint, current_app
from sqlalchemy import Engine, text

from voice import get_database, get_drain

logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

# Shorter than SQLite's busy timeout: a health probe must answer, not queue behind writers.
CHECK_TIMEOUT_SECONDS = 5.0


def _select_one(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


@bp.get("/health")
async def health() -> tuple[dict[str, str], int]:
    """200 with {"status": "ok", "database": "ok"}; 503 when the database cannot be reached, or
    with {"status": "draining"} once the instance is shutting down (voice.drain)."""
    database = get_database(current_app)
    if database is None:
        return {"status": "error", "database": "error"}, 503
    try:
        # The engine is synchronous; a worker thread keeps the event loop (and live calls) free.
        await asyncio.wait_for(
            asyncio.to_thread(_select_one, database.engine), CHECK_TIMEOUT_SECONDS
        )
    except Exception as exc:  # Any failure means "not healthy"; the caller only needs the verdict.
        # The class name is enough to diagnose; the message may carry hosts or paths.
        logger.warning("health check: database unreachable (%s)", type(exc).__name__)
        return {"status": "error", "database": "error"}, 503
    drain = get_drain(current_app)
    if drain.draining:
        # A proxy's health check takes this instance out of rotation; its calls carry on.
        return {"status": "draining", "database": "ok", "calls": str(len(drain.calls))}, 503
    return {"status": "ok", "database": "ok"}, 200
