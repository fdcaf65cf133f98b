"""Placing a call from the dashboard and the API, across the real processes.

gunicorn serves the dashboard and `python -m voice.server` the voice service, as `make run`
starts them, on one database; Twilio's REST API is a loopback fake. An in-process test client
cannot see a transaction one process holds while it waits on the other: these tests can.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from core.db import make_engine, make_session_factory
from core.models import Call, Patient
from tests.processes import (
    Product,
    free_port,
    running_product,
    served_in_thread,
    wait_for,
)
from tests.voice.fakes import FakeTwilioRest

PASSWORD = "cross-process-demo-password"
COORDINATOR = "coordinator@carematix.local"
# Far below the dashboard's 10 s wait for the voice service: placing a call is one insert,
# one Twilio request and one update.
PLACED_WITHIN_SECONDS = 5.0

pytestmark = pytest.mark.slow


def _twilio_settings(twilio_base: str) -> dict[str, str]:
    """Twilio fully configured, its REST API at the loopback fake; the demo password."""
    return {
        "DEMO_PASSWORD": PASSWORD,
        "PUBLIC_BASE_URL": "https://voice.example.test",
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "twilio-auth-token-for-tests",
        "TWILIO_PHONE_NUMBER": "+12025550199",
        "TWILIO_API_BASE_URL": twilio_base,
    }


@pytest.fixture
def twilio() -> Iterator[tuple[FakeTwilioRest, str]]:
    """Twilio's REST API on loopback, and its base URL."""
    rest = FakeTwilioRest()
    with served_in_thread(rest.app) as base:
        yield rest, base


@pytest.fixture
def product(db_url: str, tmp_path: Path, twilio: tuple[FakeTwilioRest, str]) -> Iterator[Product]:
    """Dashboard and voice service on `db_url`, Twilio configured against the fake, seeded."""
    _, twilio_base = twilio
    with running_product(
        db_url,
        tmp_path,
        **_twilio_settings(twilio_base),
        # The fake Twilio never answers the call, so no model socket is ever opened.
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
    ) as running:
        running.cli("seed-demo")
        yield running


def _patient_id(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            patient_id = session.scalar(select(Patient.id).order_by(Patient.id).limit(1))
            assert patient_id is not None
            return patient_id
    finally:
        engine.dispose()


def _call_sid(database_url: str, call_id: int) -> str | None:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return session.scalar(select(Call.call_sid).where(Call.id == call_id))
    finally:
        engine.dispose()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def test_call_patient_button_dials_through_twilio_at_once(
    product: Product, db_url: str, twilio: tuple[FakeTwilioRest, str]
) -> None:
    rest, _ = twilio
    patient_id = _patient_id(db_url)
    with httpx.Client(base_url=product.dashboard_url, timeout=30) as browser:
        login = browser.get("/login")
        signed_in = browser.post(
            "/login",
            data={"csrf_token": _csrf(login.text), "email": COORDINATOR, "password": PASSWORD},
        )
        assert signed_in.status_code == 302, signed_in.text
        patient_page = browser.get(f"/patients/{patient_id}")
        assert "Call patient" in patient_page.text

        started = time.monotonic()
        pressed = browser.post(
            f"/patients/{patient_id}/call", data={"csrf_token": _csrf(patient_page.text)}
        )
        elapsed = time.monotonic() - started

    assert pressed.status_code == 303, product.logs()
    location = pressed.headers["location"]
    assert re.fullmatch(r"/calls/\d+", location), (location, product.logs())
    assert elapsed < PLACED_WITHIN_SECONDS, f"placing the call took {elapsed:.1f} s"
    assert len(rest.created) == 1, "Twilio received no Calls create"
    call_id = int(location.rsplit("/", 1)[1])
    assert _call_sid(db_url, call_id) == rest.created[0]


def test_api_places_a_call_that_twilio_dials_at_once(
    product: Product, db_url: str, twilio: tuple[FakeTwilioRest, str]
) -> None:
    rest, _ = twilio
    patient_id = _patient_id(db_url)
    token = product.cli("create-token", COORDINATOR).strip().splitlines()[-1]

    started = time.monotonic()
    answer = httpx.post(
        f"{product.dashboard_url}/api/v1/calls",
        json={"patient_id": patient_id},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    elapsed = time.monotonic() - started

    assert answer.status_code == 202, (answer.text, product.logs())
    body = answer.json()
    assert elapsed < PLACED_WITHIN_SECONDS, f"placing the call took {elapsed:.1f} s"
    assert rest.created == [body["call_sid"]]
    assert body["status"] == "initiated"  # Twilio has the call, not just our queue
    stored = wait_for(lambda: _call_sid(db_url, body["call_id"]), 5, "the stored CallSid")
    assert stored == body["call_sid"]


def test_make_simulate_call_simulates_with_twilio_configured_and_no_openai_key(
    db_url: str, tmp_path: Path, twilio: tuple[FakeTwilioRest, str]
) -> None:
    rest, twilio_base = twilio
    with running_product(
        db_url, tmp_path, **_twilio_settings(twilio_base), OPENAI_API_KEY=""
    ) as product:
        product.cli("seed-demo")
        done = product.simulate_call("book")

    assert done.returncode == 0, (done.stdout, done.stderr, product.logs())
    assert done.stdout.startswith("Calling as ") and "will ask to book a nurse visit" in done.stdout
    assert "(simulated)" in done.stdout and "[book_appointment: ok]" in done.stdout
    # Every demo patient has visits: the agent looked first, and mentioned the next one.
    assert "[list_appointments: ok]" in done.stdout and "already have" in done.stdout
    assert rest.requests == []  # nothing went to Twilio for a simulated call
