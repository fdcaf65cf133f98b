"""Shared fixtures: migrated, empty databases on SQLite and PostgreSQL, and a frozen clock.

Databases are created lazily: a test that requests none of these fixtures touches no database.
Safe under pytest-xdist: every worker has its own SQLite template and PostgreSQL database.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import Connection, Engine, create_engine, make_url, pool, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

import core.models  # noqa: F401  (registers every table on Base.metadata, for TRUNCATE)
from core import migrate
from core.db import Base, make_engine, make_session_factory

DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker carried by every PostgreSQL-backed parametrisation."""
    config.addinivalue_line(
        "markers", "postgresql: runs against PostgreSQL (deselect with -m 'not postgresql')"
    )


def _backend_params() -> list[object]:
    """The two backends, as pytest params with the ids "sqlite" and "postgresql"."""
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ]


def _worker() -> str:
    """This xdist worker's name ("gw0", ...), or "main" without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _sqlite_url(path: Path) -> str:
    """SQLAlchemy URL of a SQLite file at an absolute path."""
    return f"sqlite:///{path}"


# --- SQLite ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, built once per worker and copied for each test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate.upgrade(_sqlite_url(path))
    # The file is in WAL mode: fold the log into the main file so that copying the main file
    # alone copies everything (env.py has closed its connections; this makes sure of it).
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "template WAL was not checkpointed"
    return path


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """URL of a migrated, empty SQLite file of this test's own."""
    path = tmp_path / "carematix.db"
    shutil.copyfile(_sqlite_template, path)
    return _sqlite_url(path)


# --- PostgreSQL -----------------------------------------------------------------------------


def _postgres_unavailable(reason: str) -> NoReturn:
    """Skip locally; fail on CI, where PostgreSQL tests must never be silently skipped."""
    if os.environ.get("CI", "").strip().lower() in {"true", "1"}:
        pytest.fail(f"{reason} (CI is set, so PostgreSQL tests must run)", pytrace=False)
    pytest.skip(reason)


@dataclass
class _PgServer:
    """An AUTOCOMMIT connection to the base database, used to create and drop test databases."""

    base_url: URL
    admin: Connection
    prefix: str

    def url(self, name: str) -> str:
        """URL of database `name` on this server."""
        return self.base_url.set(database=name).render_as_string(hide_password=False)

    def recreate(self, name: str) -> str:
        """Drop database `name` if a crashed run left it behind, create it empty, give its URL."""
        self.drop(name)
        self.admin.exec_driver_sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop(self, name: str) -> None:
        """Drop database `name`, disconnecting whatever a test left connected."""
        self.admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _pg_server() -> Iterator[_PgServer]:
    """The PostgreSQL server named by TEST_DATABASE_URL; skipped (or failed on CI) if down."""
    base_url = make_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL))
    engine = create_engine(
        base_url,
        isolation_level="AUTOCOMMIT",
        poolclass=pool.NullPool,
        connect_args={"connect_timeout": 5},
    )
    try:
        admin = engine.connect()
    except OperationalError as exc:
        engine.dispose()
        _postgres_unavailable(
            f"PostgreSQL unreachable at {base_url.render_as_string(hide_password=True)} "
            f"(set TEST_DATABASE_URL): {exc.orig}"
        )
    prefix = f"carematix_test_{_worker()}"
    # Another pytest run on the same server (a colleague's, say) may be using this worker's
    # name; dropping its database would break that run, so take a different name instead.
    locked = admin.execute(text("SELECT pg_try_advisory_lock(hashtext(:name))"), {"name": prefix})
    if not locked.scalar():
        prefix = f"{prefix}_{os.getpid()}"
    try:
        yield _PgServer(base_url=base_url, admin=admin, prefix=prefix)
    finally:
        admin.close()  # also releases the advisory lock
        engine.dispose()


@dataclass
class _PgDatabase:
    """This worker's migrated database and what empties it between tests."""

    url: str
    engine: Engine
    truncate_sql: str


@pytest.fixture(scope="session")
def _pg_database(_pg_server: _PgServer) -> Iterator[_PgDatabase]:
    """This worker's PostgreSQL database, migrated once per session and dropped at the end."""
    name = _pg_server.prefix
    url = _pg_server.recreate(name)
    try:
        migrate.upgrade(url)
        tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
        engine = create_engine(url, poolclass=pool.NullPool)
        try:
            yield _PgDatabase(
                url=url,
                engine=engine,
                truncate_sql=f"TRUNCATE {tables} RESTART IDENTITY CASCADE",
            )
        finally:
            engine.dispose()
    finally:
        _pg_server.drop(name)


@pytest.fixture
def pg_url(_pg_database: _PgDatabase) -> str:
    """URL of the migrated PostgreSQL database, emptied (ids restarted) for this test."""
    with _pg_database.engine.begin() as connection:
        # A connection a previous test leaked mid-transaction would block TRUNCATE forever.
        connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        connection.exec_driver_sql(_pg_database.truncate_sql)
    return _pg_database.url


# --- Either backend -------------------------------------------------------------------------


@pytest.fixture(params=_backend_params())
def db_url(request: pytest.FixtureRequest) -> str:
    """URL of a migrated, empty database; the test runs once per backend."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(params=_backend_params())
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a database with no tables at all (for migration tests); once per backend."""
    if request.param == "sqlite":
        yield _sqlite_url(tmp_path / "empty.db")
        return
    server: _PgServer = request.getfixturevalue("_pg_server")
    name = f"{server.prefix}_empty"
    url = server.recreate(name)
    try:
        yield url
    finally:
        server.drop(name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on `db_url`, disposed after the test."""
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """The product's session factory bound to `engine`."""
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session on the test database, closed (uncommitted work rolled back) after the test."""
    with session_factory() as session:
        yield session


# --- Clock ----------------------------------------------------------------------------------


@pytest.fixture
def frozen_now() -> datetime:
    """A fixed "now" for every scheduling test: Monday 2025-03-03 08:00 UTC."""
    return datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
