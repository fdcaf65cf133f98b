"""Migrations are the only way tables are made: they round-trip and match the models exactly."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, pool, text
from sqlalchemy.exc import IntegrityError

import core.models  # noqa: F401  (registers every table on Base.metadata)
from core import migrate
from core.db import Base

APP_TABLES = frozenset(table.name for table in Base.metadata.sorted_tables)
BACKSTOP = {
    "postgresql": frozenset({"btree_gist", "ex_appointments_no_overlap"}),
    "sqlite": frozenset(
        {"trg_appointments_no_overlap_insert", "trg_appointments_no_overlap_update"}
    ),
}


@dataclass(frozen=True)
class SchemaState:
    tables: frozenset[str]
    backstop: frozenset[str]
    revision: str | None


@contextmanager
def connect(url: str) -> Iterator[Connection]:
    """A short-lived connection that really closes afterwards."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision in migrations/."""
    head = ScriptDirectory.from_config(migrate.make_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def schema_state(url: str) -> SchemaState:
    """Which app tables and backstop objects exist, and the recorded revision."""
    with connect(url) as connection:
        tables = frozenset(inspect(connection).get_table_names()) - {"alembic_version"}
        if connection.dialect.name == "postgresql":
            backstop_sql = (
                "SELECT conname FROM pg_constraint WHERE contype = 'x' "
                "UNION SELECT extname FROM pg_extension WHERE extname = 'btree_gist'"
            )
        else:
            backstop_sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        backstop: frozenset[str] = frozenset(connection.execute(text(backstop_sql)).scalars())
        revision = MigrationContext.configure(connection).get_current_revision()
    return SchemaState(tables=tables, backstop=backstop, revision=revision)


def test_migrations_form_a_single_line_of_history() -> None:
    script = ScriptDirectory.from_config(migrate.make_config("sqlite://"))

    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


def test_upgrade_downgrade_upgrade_round_trips(empty_db_url: str) -> None:
    dialect = "sqlite" if empty_db_url.startswith("sqlite") else "postgresql"
    migrated = SchemaState(tables=APP_TABLES, backstop=BACKSTOP[dialect], revision=head_revision())
    empty = SchemaState(tables=frozenset(), backstop=frozenset(), revision=None)

    migrate.upgrade(empty_db_url)
    assert schema_state(empty_db_url) == migrated

    migrate.downgrade(empty_db_url, "base")
    assert schema_state(empty_db_url) == empty

    migrate.upgrade(empty_db_url)
    assert schema_state(empty_db_url) == migrated


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    with connect(db_url) as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                # The hand-written backstop is invisible to (or misread by) autogenerate.
                "include_object": migrate.include_object,
            },
        )
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "sqlite:///never-created.db",
            ["CREATE TRIGGER trg_appointments_no_overlap_insert", "BEFORE UPDATE OF nurse_id"],
            id="sqlite",
        ),
        pytest.param(
            "postgresql+psycopg://nobody@127.0.0.1:1/never-connected",
            ["CREATE EXTENSION IF NOT EXISTS btree_gist", "EXCLUDE USING gist"],
            id="postgresql",
        ),
    ],
)
def test_offline_sql_script_includes_the_backstop(url: str, expected: list[str]) -> None:
    config = migrate.make_config(url)
    config.output_buffer = io.StringIO()

    command.upgrade(config, "head", sql=True)

    script = config.output_buffer.getvalue()
    assert "CREATE TABLE appointments" in script
    for fragment in expected:
        assert fragment in script


def test_flask_migrate_upgrades_the_apps_own_database(tmp_path: Path) -> None:
    from flask import Flask
    from flask_migrate import Migrate
    from flask_migrate import upgrade as flask_db_upgrade
    from flask_sqlalchemy import SQLAlchemy

    url = f"sqlite:///{tmp_path / 'flask.db'}"
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    db = SQLAlchemy(model_class=Base)
    db.init_app(app)
    Migrate(app, db, directory=str(migrate.MIGRATIONS_DIR))

    with app.app_context():
        assert db.metadata is Base.metadata
        flask_db_upgrade()
        db.engine.dispose()

    assert schema_state(url) == SchemaState(
        tables=APP_TABLES, backstop=BACKSTOP["sqlite"], revision=head_revision()
    )


NOTIFICATION = (
    "INSERT INTO notifications (recipient_kind, channel, event, subject, body, status, attempts,"
    " send_after, created_at) VALUES ('user', 'email', 'test', '', 'hello', :status, 0,"
    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


def test_not_configured_messages_survive_the_migration_and_become_failed_when_undone(
    empty_db_url: str,
) -> None:
    migrate.upgrade(empty_db_url)
    with connect(empty_db_url) as connection:
        connection.execute(text(NOTIFICATION), {"status": "unconfigured"})
        connection.commit()

    migrate.downgrade(empty_db_url, "0007_status_actions")
    with connect(empty_db_url) as connection:
        status, error = connection.execute(
            text("SELECT status, last_error FROM notifications")
        ).one()
        assert (status, error) == ("failed", "channel not configured")
        with pytest.raises(IntegrityError):
            connection.execute(text(NOTIFICATION), {"status": "unconfigured"})
        connection.rollback()

    migrate.upgrade(empty_db_url)
    with connect(empty_db_url) as connection:
        connection.execute(text(NOTIFICATION), {"status": "unconfigured"})
        with pytest.raises(IntegrityError):
            connection.execute(text(NOTIFICATION), {"status": "lost"})
