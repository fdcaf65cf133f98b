"""SQLite transactions: writers take the lock up front; read-only work never holds it."""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy import make_url, text

from core.db import make_engine, read_only


@pytest.fixture
def sqlite_engine(sqlite_url):
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


def _write_from_another_process_view(sqlite_url: str) -> float:
    """A plain sqlite3 writer that gives up after one second; returns how long it took."""
    started = time.monotonic()
    connection = sqlite3.connect(make_url(sqlite_url).database, timeout=1, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO condition_specializations (condition, specialization, weight) "
            "VALUES ('asthma', 'general care', 1)"
        )
        connection.execute("COMMIT")
    finally:
        connection.close()
    return time.monotonic() - started


def test_a_read_only_transaction_does_not_block_a_writer(sqlite_engine, sqlite_url):
    with read_only(sqlite_engine).connect() as reader, reader.begin():
        reader.execute(text("SELECT count(*) FROM nurses")).scalar()
        assert _write_from_another_process_view(sqlite_url) < 0.5


def test_an_ordinary_transaction_takes_the_write_lock_at_its_start(sqlite_engine, sqlite_url):
    with sqlite_engine.connect() as holder, holder.begin():
        holder.execute(text("SELECT count(*) FROM nurses")).scalar()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            _write_from_another_process_view(sqlite_url)
