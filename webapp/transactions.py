"""The request's unit of work around calls to other services (the voice service, OpenAI)."""

from __future__ import annotations

from core.db import read_only_options
from webapp import db


def end_unit_of_work() -> None:
    """Commit the request's database work and release its connection: call before any
    request to another service.

    A transaction held while waiting on the network keeps its locks for as long as the other
    service takes (on SQLite, BEGIN IMMEDIATE holds the whole database's write lock), and the
    voice service writes to the same database: it would wait for us while we wait for it.
    """
    db.session.commit()


def read_afresh() -> None:
    """End the unit of work and continue on a read-only one, which sees what other processes
    committed meanwhile and never takes SQLite's write lock (for polling their progress)."""
    end_unit_of_work()
    db.session.connection(execution_options=read_only_options(db.engine.dialect.name))
