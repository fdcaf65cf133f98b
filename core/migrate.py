"""Run the Alembic migrations in migrations/ without Flask (tests, scripts, the voice service)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config

from core.db import UTCDateTime

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# The double-booking backstop is written by hand in 0001_initial: autogenerate cannot reflect
# SQLite triggers, and on PostgreSQL it reflects only the exclusion constraint's backing index,
# which it would then propose to drop. Autogenerate and schema comparisons must skip these.
BACKSTOP_OBJECT_NAMES = frozenset(
    {
        "ex_appointments_no_overlap",
        "trg_appointments_no_overlap_insert",
        "trg_appointments_no_overlap_update",
    }
)


def make_config(database_url: str) -> Config:
    """An Alembic config for migrations/ that targets `database_url` (env.py reads it)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute rather than the "sqlalchemy.url" option, which would
    # interpolate any "%" in a password.
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database at `database_url` up to `revision`."""
    command.upgrade(make_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Migrate the database at `database_url` down to `revision` ("base" removes everything)."""
    command.downgrade(make_config(database_url), revision)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Autogenerate filter: leave the hand-written backstop objects alone."""
    return name not in BACKSTOP_OBJECT_NAMES


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render UTCDateTime as its storage type, so revisions never import application code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False
