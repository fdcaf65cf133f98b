"""Database plumbing shared by the dashboard, the voice service, the CLI and the tests."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any, TypeAlias, TypeVar

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    MetaData,
    Select,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A select of any columns (SQLAlchemy 2.1 types a select by each of its columns).
AnySelect: TypeAlias = Select[*tuple[Any, ...]]


class Base(DeclarativeBase):
    """Declarative base for every model; Flask-SQLAlchemy is given this class too."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: refuses naive datetimes, stores UTC, always returns aware UTC datetimes.

    On SQLite the value is stored in SQLAlchemy's fixed-width text format in UTC, so text
    comparisons order instants correctly; on PostgreSQL it is a `timestamptz`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused: instants need a time zone")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


@event.listens_for(Engine, "connect")
def _configure_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL, a busy timeout and enforced foreign keys on every SQLite connection."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Let SQLAlchemy's "begin" hook below emit BEGIN itself (pysqlite's own is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Execution option marking an engine whose SQLite transactions only read (see read_only).
SQLITE_READ_ONLY = "carematix_sqlite_read_only"


@event.listens_for(Engine, "begin")
def _begin_sqlite_immediately(conn: Any) -> None:
    """Start SQLite transactions with BEGIN IMMEDIATE, unless the engine is marked read-only.

    A deferred transaction that reads and then writes fails with "database is locked" when
    another writer got there first; taking the write lock up front makes racing bookings queue
    on busy_timeout and then re-check, which is how one wins and the others get a clean conflict.
    Read-only work (pages that only look, live transcript polling) opts out with `read_only`,
    so it never holds the write lock and WAL lets it read beside a writer.
    """
    if conn.dialect.name == "sqlite":
        read_only_work = conn.get_execution_options().get(SQLITE_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only_work else "BEGIN IMMEDIATE")


def read_only_options(dialect_name: str) -> dict[str, Any]:
    """Execution options for a connection whose work only reads.

    SQLite: a deferred BEGIN, so the reader never takes the write lock. PostgreSQL: autocommit,
    which saves the BEGIN and ROLLBACK round trips; each statement reads its own snapshot.
    The pool resets both when the connection is returned.
    """
    if dialect_name == "sqlite":
        return {SQLITE_READ_ONLY: True}
    if dialect_name == "postgresql":
        return {"isolation_level": "AUTOCOMMIT"}
    return {}


def read_only(engine: Engine) -> Engine:
    """The same engine (and pool) for work that never writes (see `read_only_options`).

    A write through it may fail under contention on SQLite, and is not atomic with the
    statements around it on PostgreSQL: use the plain engine.
    """
    return engine.execution_options(**read_only_options(engine.dialect.name))


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for a resolved URL (see core.config.resolve_database_url)."""
    options: dict[str, Any] = {}
    if url.startswith("postgresql") and "poolclass" not in kwargs:
        options.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    options.update(kwargs)
    return create_engine(url, **options)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def read_only_sessions(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions like `factory`'s for work that only reads (see `read_only`)."""
    engine = factory.kw["bind"]
    return make_session_factory(read_only(engine))


_sqlite_writer_locks: dict[str, threading.RLock] = {}
_sqlite_writer_locks_guard = threading.Lock()


def _sqlite_writer_lock(factory: sessionmaker[Session]) -> threading.RLock | None:
    """The in-process lock serialising this SQLite database's writers (None elsewhere).

    SQLite lets one writer in at a time and makes the others poll with growing sleeps (up to
    tens of milliseconds each), so under load a writer can sleep long after the lock freed.
    Threads of one process queue on this lock instead and start the moment it is released;
    other processes still meet at SQLite's own lock and busy timeout.
    """
    engine = factory.kw.get("bind")
    if not isinstance(engine, Engine) or engine.dialect.name != "sqlite":
        return None
    if engine.get_execution_options().get(SQLITE_READ_ONLY, False):
        return None
    key = str(engine.url)
    with _sqlite_writer_locks_guard:
        return _sqlite_writer_locks.setdefault(key, threading.RLock())


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session, commit on success, roll back on error: the entry point's unit of work."""
    with _sqlite_writer_lock(factory) or nullcontext():
        session = factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


@contextmanager
def connection_transaction(factory: sessionmaker[Session]) -> Iterator[Connection]:
    """Like `transaction`, on a plain connection: for bulk statements that need no ORM
    session (a third less CPU per commit for a line of conversation)."""
    with _sqlite_writer_lock(factory) or nullcontext(), factory.kw["bind"].begin() as connection:
        yield connection


T = TypeVar("T")

# How long to keep trying work that must not be lost through a database blip (a PostgreSQL
# restart or failover, a dropped connection): about half a minute in all.
RETRY_DELAYS_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


def transient_failure(error: BaseException) -> bool:
    """Whether a database error may pass if the same work is tried again (the server went
    away or refused connections, or the connection broke), as opposed to bad data."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError)


def retry_transient(
    work: Callable[[int], T],
    delays: Sequence[float] = RETRY_DELAYS_SECONDS,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """`work(attempt)`, tried again after each delay while it fails transiently (blocking).

    `attempt` is 0 the first time: a retry may follow a commit that succeeded although its
    answer was lost, so work that inserts must check what is already stored when it is not 0.
    """
    for attempt, delay in enumerate((*delays, None)):
        try:
            return work(attempt)
        except Exception as error:
            if delay is None or not transient_failure(error):
                raise
            if on_retry is not None:
                on_retry(error)
            time.sleep(delay)
    raise AssertionError("unreachable")
