"""Signing in and out: sessions, cookie flags, throttling, inactive logins, CSRF, redirects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from core.models import User
from tests.webapp.dashboard.conftest import (
    EMAILS,
    PASSWORD,
    Dashboard,
    csrf_token,
    login,
)
from webapp import create_app, db
from webapp.auth import GENERIC_LOGIN_ERROR, MAX_FAILED_LOGINS


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


def test_a_wrong_password_gets_the_generic_message_and_counts_a_failure(dash: Dashboard) -> None:
    client = dash.app.test_client()
    response = login(client, EMAILS["coordinator"], "wrong-password!")
    assert response.status_code == 401
    assert GENERIC_LOGIN_ERROR in response.get_data(as_text=True)
    assert _user(dash, EMAILS["coordinator"]).failed_logins == 1
    unknown = login(client, "nobody@carematix.local", "wrong-password!")
    assert unknown.status_code == 401 and GENERIC_LOGIN_ERROR in unknown.get_data(as_text=True)


def test_repeated_failures_lock_the_login_even_against_the_right_password(
    dash: Dashboard,
) -> None:
    client = dash.app.test_client()
    for _ in range(MAX_FAILED_LOGINS):
        login(client, EMAILS["coordinator"], "wrong-password!")
    locked = _user(dash, EMAILS["coordinator"]).locked_until
    assert locked is not None and locked > datetime.now(UTC) + timedelta(minutes=14)
    response = login(client, EMAILS["coordinator"], PASSWORD)
    assert response.status_code == 401
    assert GENERIC_LOGIN_ERROR in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


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
    assert response.status_code == 200
    assert f'id="nurse-row-{dash.ids["nurse"]}"' in response.get_data(as_text=True)
