"""A real browser (Debian's chromium via Playwright) against the real app on a loopback port.

Everything is function-scoped: a sync Playwright fixture that outlives one test clashes with
pytest-asyncio's event loop. Without /usr/bin/chromium the tests skip locally and fail on CI.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from werkzeug.serving import make_server

from core import security
from core.db import make_engine, make_session_factory, transaction
from core.models import Call, CallDirection, CallStatus, Patient
from core.seed import seed_demo
from webapp import create_app, db

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
PASSWORD = "e2e-demo-password"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true"}


def _unavailable(reason: str) -> None:
    if _on_ci():
        pytest.fail(f"{reason} (CI is set, so browser tests must run)", pytrace=False)
    pytest.skip(reason)


@dataclass
class LiveServer:
    """The running dashboard: its base URL, database URL and demo ids."""

    base_url: str
    database_url: str
    ids: dict[str, int]


@pytest.fixture
def live_server(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """The production app (no TESTING, so cookies are Secure) served from a thread."""
    # Cheap hashes for the demo logins: signing in stays fast, the code path is the same.
    monkeypatch.setattr(
        security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    engine = make_engine(sqlite_url)
    now = datetime.now(UTC)
    with transaction(make_session_factory(engine)) as session:
        seed_demo(session, now=now, password=PASSWORD)
        smith = session.scalar(select(Patient.id).where(Patient.last_name == "Smith"))
        davis = session.scalar(select(Patient.id).where(Patient.last_name == "Davis"))
        call = Call(
            direction=CallDirection.OUTBOUND,
            patient_id=smith,
            status=CallStatus.IN_PROGRESS,
            created_at=now,
            started_at=now,
            simulated=True,
        )
        session.add(call)
        session.flush()
        ids = {"patient": smith, "other_patient": davis, "call": call.id}
    engine.dispose()
    app = create_app({"SECRET_KEY": "e2e-secret", "SQLALCHEMY_DATABASE_URI": sqlite_url})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", sqlite_url, ids)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def page(live_server: LiveServer) -> Iterator[object]:
    """A fresh chromium page, closed with its browser after the test; fails the test if the
    Content-Security-Policy blocked anything on it or an asset it asked for was missing."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        context = browser.new_context(
            base_url=live_server.base_url, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        # Every browser test also checks the Content-Security-Policy: whatever it blocked
        # (an inline script or style, a stray eval) is a page that does not work as written.
        blocked: list[str] = []
        page.on(
            "console",
            lambda message: (
                blocked.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        # A page may be a deliberate 404 (a record out of reach); an asset it loads may not.
        missing: list[str] = []
        page.on(
            "response",
            lambda response: (
                missing.append(response.url)
                if response.status == 404 and response.request.resource_type != "document"
                else None
            ),
        )
        try:
            yield page
        finally:
            context.close()
            browser.close()
        assert not blocked, f"the Content-Security-Policy blocked: {blocked}"
        assert not missing, f"assets the page asked for are missing: {sorted(set(missing))}"


def sign_in(page, email: str) -> None:  # type: ignore[no-untyped-def]
    """Sign in through the login form."""
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Take a full-page screenshot; kept under docs/screenshots/ only with SAVE_SCREENSHOTS=1.

    The README shows those files, so they change only when someone means to (make screenshots),
    not on every test run. The shot is still taken, so a page that cannot render fails here.
    """
    image = page.screenshot(full_page=True)
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        (SCREENSHOTS / f"{name}.png").write_bytes(image)
