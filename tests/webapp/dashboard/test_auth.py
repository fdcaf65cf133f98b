"""Signing in and out: server-side sessions, cookie flags, throttling, inactive logins, CSRF,
redirects."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import select, update

from core.config import Settings
from core.models import AuditEvent, StaffSession, User
from tests.webapp.dashboard.conftest import (
    CSRF_META,
    EMAILS,
    PASSWORD,
    Dashboard,
    csrf_token,
    dashboard_app,
    login,
)
from webapp import create_app, db
from webapp.auth import GENERIC_LOGIN_ERROR


def _user(dash: Dashboard, email: str) -> User:
    return dash.scalar(select(User).where(User.email == email))


def test_signing_in_sets_an_httponly_samesite_session_cookie_and_opens_home(
    dash: Dashboard,
) -> None:
    client = dash.app.test_client()
    response = login(client, EMAILS["coordinator"], PASSWORD)
    assert response.status_code == 302 and response.location == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/").status_code == 200
    assert _user(dash, EMAILS["coordinator"]).last_login_at is not None


def test_the_session_cookie_is_secure_outside_debug_and_testing(sqlite_url: str) -> None:
    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": sqlite_url})
    try:
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.config["SESSION_COOKIE_HTTPONLY"] is True
        assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    finally:
        with app.app_context():
            db.engine.dispose()


def _from(dash: Dashboard, address: str) -> FlaskClient:
    """An anonymous browser at client address `address`."""
    client = dash.app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_a_wrong_password_gets_the_generic_message_and_is_audited_without_it(
    dash: Dashboard,
) -> None:
    client = dash.app.test_client()
    response = login(client, EMAILS["coordinator"], "wrong-password!")
    assert response.status_code == 401
    assert GENERIC_LOGIN_ERROR in response.get_data(as_text=True)
    unknown = login(client, "nobody@carematix.local", "wrong-password!")
    assert unknown.status_code == 401 and GENERIC_LOGIN_ERROR in unknown.get_data(as_text=True)
    events = dash.scalars(
        select(AuditEvent).where(AuditEvent.action == "login.refused").order_by(AuditEvent.id)
    )
    coordinator_id = _user(dash, EMAILS["coordinator"]).id
    assert [(e.entity_id, e.details["reason"]) for e in events] == [
        (coordinator_id, "wrong_password"),
        (None, "unknown_login"),
    ]
    assert all("wrong-password!" not in str(e.details) for e in events)


def test_a_stranger_guessing_a_password_is_slowed_but_never_locks_its_owner_out(
    dash: Dashboard,
) -> None:
    stranger = _from(dash, "203.0.113.9")
    for _ in range(5):
        assert login(stranger, EMAILS["admin"], "guess-guess-guess").status_code == 401
    throttled = login(stranger, EMAILS["admin"], PASSWORD)  # even the right one, from there
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
    assert "Too many sign-in attempts" in throttled.get_data(as_text=True)
    # The admin, at her own desk, signs in at once.
    assert login(_from(dash, "198.51.100.4"), EMAILS["admin"], PASSWORD).status_code == 302
    reasons = [e.details["reason"] for e in dash.scalars(select(AuditEvent))
               if e.action == "login.refused"]  # fmt: skip
    assert reasons.count("throttled") == 1


def test_a_spray_over_many_logins_from_one_address_is_slowed(dash: Dashboard) -> None:
    sprayer = _from(dash, "203.0.113.10")
    answers = [
        login(sprayer, f"someone{n}@carematix.local", "Winter2026!").status_code for n in range(31)
    ]
    assert answers[:30] == [401] * 30
    assert answers[30] == 429
    # Another address is not affected.
    assert login(_from(dash, "198.51.100.5"), EMAILS["nurse"], PASSWORD).status_code == 302


def test_a_session_cookie_copied_before_signing_out_opens_nothing_after(
    dash: Dashboard,
) -> None:
    client = dash.client("coordinator")
    copied = client.get_cookie("session")
    assert copied is not None
    thief = dash.app.test_client()
    thief.set_cookie("session", copied.value)
    assert thief.get("/patients/").status_code == 200  # the copy works while signed in
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert thief.get("/patients/").status_code == 302
    [ended] = dash.scalars(select(StaffSession))
    assert ended.end_reason == "signed_out" and ended.ended_at is not None


@pytest.mark.parametrize(
    ("column", "age", "reason"),
    [
        ("last_seen_at", timedelta(minutes=31), "idle"),
        ("created_at", timedelta(hours=13), "expired"),
    ],
)
def test_a_session_ends_when_idle_or_too_old(
    dash: Dashboard, column: str, age: timedelta, reason: str
) -> None:
    client = dash.client("coordinator")
    assert client.get("/patients/").status_code == 200
    with dash.app.app_context():
        db.session.execute(update(StaffSession).values({column: datetime.now(UTC) - age}))
        db.session.commit()
    assert client.get("/patients/").status_code == 302
    [ended] = dash.scalars(select(StaffSession))
    assert ended.end_reason == reason


def test_using_a_session_keeps_it_alive(dash: Dashboard) -> None:
    client = dash.client("coordinator")
    with dash.app.app_context():
        db.session.execute(
            update(StaffSession).values(last_seen_at=datetime.now(UTC) - timedelta(minutes=20))
        )
        db.session.commit()
    assert client.get("/patients/").status_code == 200
    [alive] = dash.scalars(select(StaffSession))
    assert datetime.now(UTC) - alive.last_seen_at < timedelta(minutes=1)
    assert alive.ended_at is None


def test_an_inactive_login_cannot_sign_in_and_is_signed_out_when_deactivated(
    dash: Dashboard,
) -> None:
    coordinator = dash.client("coordinator")
    user_id = _user(dash, EMAILS["coordinator"]).id
    assert dash.post("admin", f"/staff/{user_id}/active").status_code == 200
    assert coordinator.get("/").status_code == 302  # the open session ends too
    response = login(dash.app.test_client(), EMAILS["coordinator"], PASSWORD)
    assert response.status_code == 401


def test_resetting_a_password_signs_out_that_logins_sessions(dash: Dashboard) -> None:
    nurse = dash.client("nurse")
    user_id = _user(dash, EMAILS["nurse"]).id
    response = dash.post("admin", f"/staff/{user_id}/password", {"password": "a-new-password-1"})
    assert response.status_code == 200 and "Password reset." in response.get_data(as_text=True)
    assert nurse.get("/my-schedule").status_code == 302
    assert login(dash.app.test_client(), EMAILS["nurse"], "a-new-password-1").status_code == 302


def test_signing_in_without_a_csrf_token_is_refused(dash: Dashboard) -> None:
    client = dash.app.test_client()
    response = client.post("/login", data={"email": EMAILS["admin"], "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_signing_out_needs_a_post_with_the_token(dash: Dashboard) -> None:
    client = dash.client("admin")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    response = client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302 and response.location == "/login"
    assert client.get("/").status_code == 302


def test_the_login_page_only_redirects_within_the_site(dash: Dashboard) -> None:
    for target, landing in [
        ("https://evil.example/x", "/"),
        ("//evil.example/x", "/"),
        ("/%5Cevil.example/x", "/"),
        ("/patients/", "/patients/"),
    ]:
        client = dash.app.test_client()
        token = csrf_token(client)
        response = client.post(
            f"/login?next={target}",
            data={"email": EMAILS["admin"], "password": PASSWORD, "csrf_token": token},
        )
        assert response.location == landing, target


def test_an_anonymous_visit_is_sent_to_sign_in_and_back(dash: Dashboard) -> None:
    response = dash.app.test_client().get("/appointments/")
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")


def test_htmx_requests_carry_the_csrf_token_in_a_header(dash: Dashboard) -> None:
    client = dash.client("coordinator")
    page = client.get("/").get_data(as_text=True)
    assert 'hx-headers=\'{"X-CSRFToken": "' in page
    response = client.post(
        f"/nurses/{dash.ids['nurse']}/active",
        headers={"HX-Request": "true", "X-CSRFToken": csrf_token(client)},
    )
    assert response.status_code == 200  # accepted: she has visits, so to the hand-over page
    assert response.headers["HX-Redirect"] == f"/nurses/{dash.ids['nurse']}/deactivate"


def test_with_redis_configured_the_counts_are_shared_through_it(
    _seeded_template: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    store = redis.Redis.from_url(redis_url)
    try:
        store.ping()
    except redis.ConnectionError:
        if os.environ.get("CI", "").lower() in {"1", "true"}:
            pytest.fail("Redis is not reachable (CI is set, so this test must run)")
        pytest.skip("Redis is not reachable")
    template, ids = _seeded_template
    path = tmp_path / "dashboard.db"
    shutil.copyfile(template, path)
    address = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    email = f"redis-{uuid.uuid4().hex[:8]}@carematix.local"
    settings = replace(Settings.from_env({}), redis_url=redis_url)
    try:
        for dash in dashboard_app(f"sqlite:///{path}", ids, SETTINGS=settings):
            client = _from(dash, address)
            for _ in range(5):
                login(client, email, "guess-guess-guess")
            # Another process reading the same Redis sees the five failures.
            keys = [key.decode() for key in store.scan_iter(match=f"*{email}*")]
            assert keys, "no rate-limit counter in Redis"
            assert login(client, email, "guess-guess-guess").status_code == 429
    finally:
        for key in store.scan_iter(match=f"*{email}*"):
            store.delete(key)
        for key in store.scan_iter(match=f"*{address}*"):
            store.delete(key)
        store.close()


def test_the_session_cookie_is_secure_whenever_the_request_came_over_https(
    dash: Dashboard,
) -> None:
    assert dash.app.config["SESSION_COOKIE_SECURE"] is False  # as under make run
    client = dash.app.test_client()
    token = csrf_token(client)
    over_http = client.post(
        "/login", data={"email": EMAILS["admin"], "password": PASSWORD, "csrf_token": token}
    )
    assert "Secure" not in over_http.headers["Set-Cookie"]
    https = dash.app.test_client()
    page = https.get("/login", base_url="https://dashboard.example.test")
    found = CSRF_META.search(page.get_data(as_text=True))
    assert found is not None
    response = https.post(
        "/login",
        base_url="https://dashboard.example.test",
        data={"email": EMAILS["admin"], "password": PASSWORD, "csrf_token": found.group(1)},
        headers={"Referer": "https://dashboard.example.test/login"},
    )
    assert response.status_code == 302
    assert "; Secure" in response.headers["Set-Cookie"]
