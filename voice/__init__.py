"""The Quart voice service: app factory and the database it shares with the dashboard."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from quart import Quart
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.db import make_engine, make_session_factory

logger = logging.getLogger(__name__)

DATABASE_EXTENSION = "carematix.database"


@dataclass(frozen=True)
class Database:
    """The engine and session factory opened for the life of the server."""

    engine: Engine
    sessions: sessionmaker[Session]


def create_app(test_config: dict[str, Any] | None = None) -> Quart:
    """Build the voice service from the environment (or `.env`), then apply `test_config`."""
    overrides = dict(test_config or {})
    settings: Settings = overrides.pop("SETTINGS", None) or Settings.from_env()

    app = Quart(__name__)
    app.config.from_mapping(SETTINGS=settings, DATABASE_URL=settings.database_url)
    app.config.update(overrides)

    @app.before_serving
    async def open_database() -> None:
        # Plain SQLAlchemy: Flask-SQLAlchemy does not work inside Quart.
        url = app.config["DATABASE_URL"]
        # Fail fast when PostgreSQL is unreachable, so /health answers 503 in good time.
        options = {"connect_args": {"connect_timeout": 10}} if url.startswith("postgresql") else {}
        engine = make_engine(url, **options)
        app.extensions[DATABASE_EXTENSION] = Database(engine, make_session_factory(engine))

    @app.after_serving
    async def close_database() -> None:
        database = app.extensions.pop(DATABASE_EXTENSION, None)
        if database is not None:
            database.engine.dispose()

    from voice import health

    app.register_blueprint(health.bp)
    return app


def get_database(app: Quart) -> Database | None:
    """The open database, or None before serving starts (or after it stops)."""
    return app.extensions.get(DATABASE_EXTENSION)
