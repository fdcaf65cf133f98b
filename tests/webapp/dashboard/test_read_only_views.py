"""Pages that only read run on read-only connections, and writes after them stay transactional."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, make_url, select

from core.models import Appointment
from tests.webapp.dashboard.conftest import Dashboard, dashboard_app, seed_world
from webapp import db


@pytest.fixture
def one_connection_dash(db_url: str) -> Iterator[Dashboard]:
    """The demo world on each backend, its app held to a single pooled connection."""
    yield from dashboard_app(
        db_url,
        seed_world(db_url),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0},
    )


def _record_statements(dash: Dashboard) -> list[tuple[str, bool]]:
    """Each statement the app sends from now on, with whether its connection was autocommit."""
    seen: list[tuple[str, bool]] = []
    with dash.app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        autocommit = bool(getattr(conn.connection.dbapi_connection, "autocommit", False))
        seen.append((" ".join(statement.split())[:40], autocommit))

    return seen


def test_a_list_page_reads_without_a_write_transaction_and_the_next_write_has_one(
    one_connection_dash: Dashboard,
) -> None:
    dash = one_connection_dash
    client = dash.client("coordinator")
    postgres = make_url(dash.url).get_backend_name() == "postgresql"
    seen = _record_statements(dash)
    assert client.get("/appointments/").status_code == 200
    statements = [text for text, _ in seen]
    if postgres:  # autocommit: no BEGIN, no ROLLBACK, no transaction at all
        assert seen and all(autocommit for _, autocommit in seen)
    else:  # a deferred BEGIN, which leaves the write lock to writers
        assert "BEGIN" in statements and "BEGIN IMMEDIATE" not in statements

    seen.clear()
    appointment_id = dash.ids["appointment"]
    cancelled = dash.post(
        "coordinator", f"/appointments/{appointment_id}/cancel", {"reason_code": "clinical"}
    )
    assert cancelled.status_code == 303
    writes = [(text, autocommit) for text, autocommit in seen if text.startswith("UPDATE")]
    assert writes, seen
    if postgres:  # the same single connection, back in transactional mode
        assert not any(autocommit for _, autocommit in writes)
    else:
        assert "BEGIN IMMEDIATE" in [text for text, _ in seen]
    row = dash.scalar(select(Appointment).where(Appointment.id == appointment_id))
    assert row.status == "cancelled"


def test_pages_that_only_read_answer_while_another_process_holds_the_sqlite_write_lock(
    dash: Dashboard,
) -> None:
    client = dash.client("coordinator")
    writer = sqlite3.connect(make_url(dash.url).database, isolation_level=None)
    answers: dict[str, int] = {}

    def read_pages() -> None:
        for path in ("/", "/appointments/", f"/nurses/{dash.ids['nurse']}/calendar", "/calls/"):
            answers[path] = client.get(path).status_code

    try:
        writer.execute("BEGIN IMMEDIATE")  # as the voice service does while it stores a line
        reader = threading.Thread(target=read_pages)
        reader.start()
        # A page that took the write lock would wait out SQLite's 30-second busy timeout.
        reader.join(timeout=10)
        assert not reader.is_alive(), f"pages blocked behind the writer; answered: {answers}"
    finally:
        writer.rollback()
        writer.close()
    assert set(answers.values()) == {200}
