"""A small world behind the API: two nurses with their own patients, appointments and calls,
and one token per role. Users are inserted directly (the API never checks passwords), so no
slow password hashing runs."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from core.db import make_engine, make_session_factory
from core.models import (
    Appointment,
    AuditEvent,
    Call,
    CallTranscript,
    ConversationLog,
    Notification,
    User,
)
from core.services.api_tokens import create_token
from core.services.assignments import assign_nurse
from core.services.booking import book_appointment
from core.services.common import Actor
from core.services.people import create_patient
from tests.services.world import build_world, local
from webapp import create_app, db

ROLES = ("admin", "coordinator", "nurse")
TUESDAY = date(2025, 3, 4)
ACTOR = Actor.cli()


@dataclass
class ApiWorld:
    """The app, a client, a token per role and the ids of what was created."""

    app: Flask
    client: FlaskClient
    url: str
    now: datetime
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def headers(self, role: str | None, **extra: str) -> dict[str, str]:
        """Authorization for `role` (none for anonymous) plus `extra` headers."""
        headers = dict(extra)
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return headers

    def get(self, path: str, role: str | None = "admin", **kwargs: Any) -> TestResponse:
        """GET /api/v1{path} as `role`."""
        return self.client.get(f"/api/v1{path}", headers=self.headers(role), **kwargs)

    def post(
        self,
        path: str,
        role: str | None = "admin",
        json: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> TestResponse:
        """POST /api/v1{path} as `role`, with a JSON body when given."""
        return self.client.post(
            f"/api/v1{path}",
            headers=self.headers(role, **(headers or {})),
            json=json,
            **kwargs,
        )

    def send(
        self,
        method: str,
        path: str,
        role: str | None = "admin",
        json: Any = None,
        key: str | None = None,
    ) -> TestResponse:
        """Any method on /api/v1{path} as `role`, with a JSON body and an Idempotency-Key."""
        extra = {"Idempotency-Key": key} if key is not None else {}
        return self.client.open(
            f"/api/v1{path}", method=method, headers=self.headers(role, **extra), json=json
        )

    def audit_trail(self) -> list[tuple[str, str, int | None]]:
        """(action, actor, entity id) of every audit event, oldest first."""
        with self.app.app_context():
            rows = db.session.execute(
                select(AuditEvent.action, AuditEvent.actor, AuditEvent.entity_id).order_by(
                    AuditEvent.id
                )
            ).all()
            db.session.rollback()
            return [(row.action, row.actor, row.entity_id) for row in rows]

    def count(self, model: type) -> int:
        """Rows of `model` in the database, read in a fresh transaction."""
        with self.app.app_context():
            value = db.session.scalar(select(func.count()).select_from(model)) or 0
            db.session.rollback()
            return value

    def counts(self) -> tuple[int, int, int]:
        """Appointments, notifications and audit events: what a failed write must not change."""
        return self.count(Appointment), self.count(Notification), self.count(AuditEvent)


def build_api_world(url: str, now: datetime, **config: Any) -> ApiWorld:
    """Create the world in the database at `url` and an app whose clock is `now`."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    world = build_world(factory, now)
    ids: dict[str, int] = {
        "nurse": world.nurse_id,
        "other_nurse": world.other_nurse_id,
        "patient": world.patient_id,
        "second_patient": world.other_patient_id,
    }
    tokens: dict[str, str] = {}
    with factory() as session:
        foreign = create_patient(
            session,
            actor=ACTOR,
            now=now,
            first_name="Robert",
            last_name="Davis",
            date_of_birth=date(1940, 1, 2),
            phone="+12025550103",
            time_zone="America/New_York",
        )
        assign_nurse(
            session, patient_id=foreign.id, nurse_id=world.other_nurse_id, actor=ACTOR, now=now
        )
        ids["foreign_patient"] = foreign.id
        own = book_appointment(
            session, patient_id=world.patient_id, start=local(TUESDAY, 10), actor=ACTOR, now=now
        )
        theirs = book_appointment(
            session,
            patient_id=foreign.id,
            start=local(TUESDAY, 10),
            actor=ACTOR,
            now=now,
            nurse_id=world.other_nurse_id,
        )
        ids["appointment"], ids["foreign_appointment"] = own.id, theirs.id
        for key, patient_id in (
            ("call", world.patient_id),
            ("foreign_call", foreign.id),
            ("unknown_call", None),
        ):
            call = Call(
                direction="inbound",
                from_number="+12025550199",
                to_number="+12025550100",
                patient_id=patient_id,
                status="completed",
                created_at=now - timedelta(hours=1),
                call_sid=f"CA{key}",
            )
            session.add(call)
            session.flush()
            ids[key] = call.id
            session.add_all(
                [
                    ConversationLog(
                        call_id=call.id,
                        position=0,
                        role="assistant",
                        text="Hello, this is Carematix.",
                        created_at=now,
                    ),
                    ConversationLog(
                        call_id=call.id,
                        position=1,
                        role="user",
                        text="I need a visit.",
                        created_at=now,
                    ),
                    ConversationLog(
                        call_id=call.id, position=2, role="system", text="internal", created_at=now
                    ),
                ]
            )
            if patient_id is not None:
                session.add(
                    CallTranscript(
                        call_id=call.id,
                        text="Hello. I need a visit.",
                        summary="Asked for a visit.",
                        created_at=now,
                    )
                )
        for role, nurse_id in (
            ("admin", None),
            ("coordinator", None),
            ("nurse", world.nurse_id),
            ("other_nurse", world.other_nurse_id),
        ):
            user = User(
                email=f"{role}@example.test",
                password_hash="not-used",
                created_at=now,
                role="nurse" if role == "other_nurse" else role,
                nurse_id=nurse_id,
            )
            session.add(user)
            session.flush()
            ids[f"{role}_user"] = user.id
            _, tokens[role] = create_token(session, user.id, f"{role} token", ACTOR, now)
        session.commit()
    engine.dispose()
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": url,
            "API_CLOCK": lambda: now,
            "API_RAISE_ERRORS": True,
            **config,
        }
    )
    return ApiWorld(app=app, client=app.test_client(), url=url, now=now, tokens=tokens, ids=ids)


def calls_set_up(api: ApiWorld) -> ApiWorld:
    """The world with Twilio, a public address and the OpenAI key configured."""
    api.app.config["SETTINGS"] = dataclasses.replace(
        api.app.config["SETTINGS"],
        public_base_url="https://voice.example.test",
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token="twilio-token",
        twilio_phone_number="+12025550199",
        openai_api_key="sk-test",
    )
    return api


def _dispose(world: ApiWorld) -> None:
    with world.app.app_context():
        db.engine.dispose()


@pytest.fixture
def api(sqlite_url: str, frozen_now: datetime) -> Iterator[ApiWorld]:
    """The API world on SQLite (fast; most behaviour does not depend on the database)."""
    world = build_api_world(sqlite_url, frozen_now)
    yield world
    _dispose(world)


@pytest.fixture
def api_any_db(db_url: str, frozen_now: datetime) -> Iterator[ApiWorld]:
    """The API world on each backend, for what touches database-specific behaviour."""
    world = build_api_world(db_url, frozen_now)
    yield world
    _dispose(world)


# --- a tiny loopback HTTP server, standing in for the voice service or OpenAI ------------


class Recorder(BaseHTTPRequestHandler):
    """A loopback server's handler: answers by path from `answers`, records each request."""

    answers: dict[str, tuple[int, dict[str, Any]]] = {}
    seen: list[dict[str, Any]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).seen.append(
            {
                "method": self.command,
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "json": json.loads(body) if body else None,
            }
        )
        status, payload = type(self).answers.get(self.path, (404, {"error": "no"}))
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        """Silence the default stderr logging."""


@pytest.fixture
def loopback() -> Iterator[tuple[str, type[Recorder]]]:
    """A throwaway HTTP server on 127.0.0.1 recording what it was sent."""
    handler = type("Handler", (Recorder,), {"answers": {}, "seen": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
