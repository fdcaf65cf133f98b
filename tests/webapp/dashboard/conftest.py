"""A dashboard on a temporary SQLite database with the demo data, and a client per role."""

from __future__ import annotations

import dataclasses
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from core import security
from core.db import make_engine, make_session_factory, transaction
from core.models import (
    Appointment,
    Call,
    CallDirection,
    CallStatus,
    ConversationLog,
    LogRole,
    Nurse,
    Patient,
)
from core.notifications.settings import NotifySettings
from core.seed import ADMIN_EMAIL, COORDINATOR_EMAIL, seed_demo
from webapp import create_app, db

PASSWORD = "demo-password-123"
NURSE_EMAIL = "alice.wilson@carematix.local"  # Dr. Alice Wilson: primary of Smith and Johnson
OTHER_NURSE_EMAIL = "maria.garcia@carematix.local"  # Dr. Maria Garcia: primary of Davis only
EMAILS = {"admin": ADMIN_EMAIL, "coordinator": COORDINATOR_EMAIL, "nurse": NURSE_EMAIL}
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass
class Dashboard:
    """The app, its database URL, one client per role, and ids of the demo records."""

    app: Flask
    url: str
    ids: dict[str, int] = field(default_factory=dict)
    clients: dict[str | None, FlaskClient] = field(default_factory=dict)

    def client(self, role: str | None) -> FlaskClient:
        """A client signed in as `role` (None: anonymous), made once per test."""
        if role not in self.clients:
            client = self.app.test_client()
            if role is not None:
                response = login(client, EMAILS.get(role, role), PASSWORD)
                assert response.status_code == 302, response.get_data(as_text=True)
            self.clients[role] = client
        return self.clients[role]

    def post(
        self, role: str | None, path: str, data: dict[str, Any] | None = None, **kw: Any
    ) -> TestResponse:
        """POST a form as `role` with a valid CSRF token."""
        client = self.client(role)
        payload = dict(data or {})
        payload["csrf_token"] = csrf_token(client)
        return client.post(path, data=payload, **kw)

    def count(self, model: type, *where: Any) -> int:
        """Rows of `model` now in the database (a fresh read)."""
        with self.app.app_context():
            db.session.remove()
            return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    def scalar(self, stmt: Any) -> Any:
        """One value read in a fresh session."""
        with self.app.app_context():
            db.session.remove()
            return db.session.scalar(stmt)

    def scalars(self, stmt: Any) -> list[Any]:
        """Every value read in a fresh session."""
        with self.app.app_context():
            db.session.remove()
            return list(db.session.scalars(stmt))


def add_call(
    session: Session, patient_id: int, now: datetime, *, lines: list[str], live: bool = True
) -> int:
    """A call with `lines` alternating caller and agent, plus one booking tool action."""
    call = Call(
        direction=CallDirection.INBOUND,
        patient_id=patient_id,
        status=CallStatus.IN_PROGRESS if live else CallStatus.COMPLETED,
        created_at=now,
        started_at=now,
        simulated=True,
    )
    session.add(call)
    session.flush()
    for position, text in enumerate(lines):
        role = LogRole.USER if position % 2 == 0 else LogRole.ASSISTANT
        session.add(
            ConversationLog(
                call_id=call.id, position=position, role=role, text=text, created_at=now
            )
        )
    session.add(
        ConversationLog(
            call_id=call.id,
            position=len(lines),
            role=LogRole.TOOL,
            tool_name="check_availability",
            tool_arguments={},
            tool_result={"available": True},
            created_at=now,
        )
    )
    session.flush()
    return call.id


def no_channels(dash: Dashboard) -> None:
    """A fresh install: no Twilio, no SMTP, no public address, no OpenAI key."""
    dash.app.config["SETTINGS"] = dataclasses.replace(
        dash.app.config["SETTINGS"],
        public_base_url="",
        twilio_account_sid="",
        twilio_auth_token="",
        twilio_phone_number="",
        openai_api_key="",
    )
    dash.app.config["NOTIFY_SETTINGS"] = NotifySettings()


def every_channel(dash: Dashboard, *, email: bool = True) -> None:
    """Texts, calls and (unless told otherwise) email all set up."""
    twilio = {
        "twilio_account_sid": "AC" + "1" * 32,
        "twilio_auth_token": "twilio-token",
        "twilio_phone_number": "+12025550199",
    }
    dash.app.config["SETTINGS"] = dataclasses.replace(
        dash.app.config["SETTINGS"],
        public_base_url="https://voice.example.test",
        openai_api_key="sk-test",
        **twilio,
    )
    dash.app.config["NOTIFY_SETTINGS"] = NotifySettings(
        smtp_host="smtp.example.test" if email else "", **twilio
    )


def csrf_token(client: FlaskClient) -> str:
    """The CSRF token of the client's session, read from a page like a browser would."""
    page = client.get("/login").get_data(as_text=True)
    match = CSRF_META.search(page)
    if match is None:  # signed in: /login redirects, so read a page behind login
        page = client.get("/patients/").get_data(as_text=True)
        match = CSRF_META.search(page)
    assert match is not None
    return match.group(1)


def login(client: FlaskClient, email: str, password: str) -> TestResponse:
    """Sign in through the form."""
    token = csrf_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


# Argon2 at production cost takes ~0.3 s a hash; tests sign in often, so they use a cheap one.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "_hasher", CHEAP_HASHER)


def seed_world(url: str) -> dict[str, int]:
    """Load the demo data and two calls into the database at `url`; the ids tests refer to."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    original = security._hasher
    security._hasher = CHEAP_HASHER
    try:
        with transaction(make_session_factory(engine)) as session:
            seed_demo(session, now=now, password=PASSWORD)
        with transaction(make_session_factory(engine)) as session:
            ids = {
                "nurse": session.scalar(select(Nurse.id).where(Nurse.last_name == "Wilson")),
                "other_nurse": session.scalar(select(Nurse.id).where(Nurse.last_name == "Garcia")),
                "patient": session.scalar(select(Patient.id).where(Patient.last_name == "Smith")),
                "other_patient": session.scalar(
                    select(Patient.id).where(Patient.last_name == "Davis")
                ),
            }
            ids["appointment"] = session.scalar(
                select(Appointment.id).where(Appointment.nurse_id == ids["nurse"]).limit(1)
            )
            ids["other_appointment"] = session.scalar(
                select(Appointment.id).where(Appointment.nurse_id == ids["other_nurse"]).limit(1)
            )
            ids["call"] = add_call(session, ids["patient"], now, lines=["Hello", "I need a visit"])
            ids["other_call"] = add_call(session, ids["other_patient"], now, lines=["Hi"])
    finally:
        security._hasher = original
        engine.dispose()
    return ids


@pytest.fixture(scope="session")
def _seeded_template(
    _sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, int]]:
    """The demo world, seeded once per worker; each test gets a copy of the file."""
    path = tmp_path_factory.mktemp("dashboard-template") / "seeded.db"
    shutil.copyfile(_sqlite_template, path)
    ids = seed_world(f"sqlite:///{path}")
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return path, ids


def dashboard_app(url: str, ids: dict[str, int], **config: Any) -> Iterator[Dashboard]:
    """A dashboard app on the seeded database at `url` (`config` added to its settings)."""
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": url,
            "DEMO_PASSWORD": "",
            **config,
        }
    )
    yield Dashboard(app=app, url=url, ids=dict(ids))
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def dash(_seeded_template: tuple[Path, dict[str, int]], tmp_path: Path) -> Iterator[Dashboard]:
    """The demo world behind a fresh dashboard app."""
    template, ids = _seeded_template
    path = tmp_path / "dashboard.db"
    shutil.copyfile(template, path)
    yield from dashboard_app(f"sqlite:///{path}", ids)


@pytest.fixture
def any_dash(db_url: str) -> Iterator[Dashboard]:
    """The demo world on each backend, for queries whose SQL differs between them."""
    yield from dashboard_app(db_url, seed_world(db_url))
