"""The Flask + HTMX dashboard and JSON API: app factory and extensions."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask_htmx import HTMX
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import make_url
from werkzeug.middleware.proxy_fix import ProxyFix

from core.config import PROJECT_ROOT, Settings, development_secret_key, with_shared_secrets
from core.db import Base
from core.notifications.settings import NotifySettings

logger = logging.getLogger(__name__)

# Same session behaviour as core.db.make_session_factory, so services see one contract.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
# Reads htmx's request headers (is this a fragment request, a boosted link, a history restore).
htmx = HTMX()

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
DEV_SECRET_KEY_FILE = "dev-secret-key"


class CarematixFlask(Flask):
    """Flask, logging a view's crash without its message or traceback above DEBUG: they can
    carry SQL parameters (names, phone numbers), and logs must never hold patient data."""

    def log_exception(self, exc_info: Any) -> None:
        """The failing request's method and path, and the exception's class (Flask's hook)."""
        error = exc_info[1] if isinstance(exc_info, tuple) else None
        self.logger.error(
            "Exception on %s [%s] (%s)",
            request.path,
            request.method,
            type(error).__name__ if error is not None else "unknown",
        )
        self.logger.debug("traceback of the failure above", exc_info=exc_info)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the dashboard app from the environment (or `.env`), then apply `test_config`."""
    overrides = dict(test_config or {})
    settings: Settings = overrides.pop("SETTINGS", None) or Settings.from_env()

    app = CarematixFlask(
        __name__,
        instance_path=str(PROJECT_ROOT / "instance"),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_mapping(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        DEMO_PASSWORD=settings.demo_password,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.config.update(overrides)
    if "NOTIFY_SETTINGS" not in app.config:
        # The worker's channel settings, so the dashboard can say which channels are missing.
        app.config["NOTIFY_SETTINGS"] = NotifySettings.from_env(settings)
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS", _engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    )

    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = development_secret_key(
            Path(app.instance_path) / DEV_SECRET_KEY_FILE
        )
    if not app.testing:
        # The voice service derives the same internal token from the same key.
        settings = with_shared_secrets(
            replace(app.config["SETTINGS"], secret_key=app.config["SECRET_KEY"])
        )
        app.config["SETTINGS"] = settings
    _ensure_sqlite_directory(app.config["SQLALCHEMY_DATABASE_URI"])

    hops = app.config["SETTINGS"].trusted_proxy_hops
    if hops:
        # Behind a TLS-terminating proxy, links the dashboard hands out (calendar feeds) must
        # carry the public scheme and host. Only as many X-Forwarded-* values as there are
        # trusted proxies are believed; without one, a client could set them at will.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )

    db.init_app(app)
    # migrations/env.py picks batch mode (SQLite) and the comparison options per dialect.
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    htmx.init_app(app)

    from webapp import cli, feeds, headers, health, metrics
    from webapp.api import register as register_api  # REST API (issue 5)
    from webapp.dashboard import register as register_dashboard  # staff dashboard (issue 4)
    from webapp.fhir import register as register_fhir  # FHIR R4B facade (issue 20)

    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(feeds.bp)
    cli.register(app)
    register_api(app)  # REST API under /api/v1 and `create-token` (issue 5)
    register_fhir(app)  # FHIR R4B scheduling facade under /fhir/R4B, same tokens
    register_dashboard(app)  # sign-in, CSRF and the HTMX dashboard (issue 4)
    headers.init_app(app)  # after sign-in has chosen the cookie flags
    return app


def _engine_options(url: str) -> dict[str, Any]:
    """Pool settings for long-lived server processes (PostgreSQL drops idle connections)."""
    if url.startswith("postgresql"):
        return {
            "pool_pre_ping": True,
            "pool_size": 10,
            "max_overflow": 20,
            # Fail fast when the server is unreachable, so /health answers 503 in good time.
            "connect_args": {"connect_timeout": 10},
        }
    return {}


def _ensure_sqlite_directory(url: str) -> None:
    """Create the SQLite file's folder so a fresh checkout can start without setup."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    folder = Path(database).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # Not fatal here: /health reports the database as unreachable instead.
        logger.warning("cannot create the SQLite folder %s: %s", folder, exc.strerror)
