"""Alembic environment, run by Flask-Migrate (`flask db ...`) or by core.migrate without Flask."""

from __future__ import annotations

import logging
import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Engine, create_engine, pool

import core.models  # noqa: F401  (importing the models registers every table on the metadata)
from core.config import resolve_database_url
from core.db import Base
from core.migrate import include_object, render_item

config = context.config
logger = logging.getLogger("alembic.env")

# Only when nothing configured logging yet (the `flask db` CLI): under pytest or inside an
# app, fileConfig would replace the process's handlers and levels.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _flask_migrate() -> Any | None:
    """Flask-Migrate's extension when run by `flask db` inside an app context, else None."""
    try:
        from flask import current_app, has_app_context
    except ImportError:
        return None
    if not has_app_context():
        return None
    return current_app.extensions.get("migrate")


def _prevent_empty_revision(migration_context: Any, revision: Any, directives: list[Any]) -> None:
    """Write no revision file when autogenerate finds no change."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def _engine_and_options() -> tuple[Engine, dict[str, Any], bool]:
    """The engine to migrate, extra context options, and whether this module owns the engine."""
    # An explicit URL (core.migrate) wins, even when called inside a Flask app context.
    url = config.attributes.get("database_url")
    migrate_extension = None if url else _flask_migrate()
    if migrate_extension is not None:
        return migrate_extension.db.engine, dict(migrate_extension.configure_args), False
    if not url:
        # Plain `alembic -c migrations/alembic.ini ...`.
        url = resolve_database_url(
            config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
        )
    # NullPool: the connection really closes afterwards, so SQLite checkpoints its WAL and a
    # freshly migrated file can be copied (the test template relies on this).
    return create_engine(url, poolclass=pool.NullPool), {}, True


def _context_options(dialect_name: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Options shared by online and offline runs; Flask-Migrate's own arguments take precedence."""
    options = dict(extra)
    options.setdefault("compare_type", True)
    # SQLite cannot ALTER most things: let autogenerate emit batch (copy-and-move) operations.
    options.setdefault("render_as_batch", dialect_name == "sqlite")
    options.setdefault("include_object", include_object)
    options.setdefault("render_item", render_item)
    options.setdefault("process_revision_directives", _prevent_empty_revision)
    return options


def run_migrations_offline() -> None:
    """Emit the migration SQL as a script (`flask db upgrade --sql`) instead of running it."""
    engine, extra, _ = _engine_and_options()
    context.configure(
        url=engine.url,
        target_metadata=target_metadata,
        literal_binds=True,
        **_context_options(engine.dialect.name, extra),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a live connection."""
    engine, extra, owned = _engine_and_options()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            **_context_options(engine.dialect.name, extra),
        )
        with context.begin_transaction():
            context.run_migrations()
    if owned:  # Flask-SQLAlchemy's engine stays with the app.
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
