"""Session cookies: HttpOnly and SameSite always; Secure unless the settings say plain http."""

from __future__ import annotations

import dataclasses

import pytest

from core.config import Settings
from webapp import create_app, db


@pytest.mark.parametrize(("secure", "expected"), [(True, True), (False, False)])
def test_the_session_cookie_is_secure_unless_configured_for_plain_http(
    sqlite_url: str, secure: bool, expected: bool
) -> None:
    settings = dataclasses.replace(
        Settings.from_env(env={}),
        database_url=sqlite_url,
        secret_key="k" * 32,
        session_cookie_secure=secure,
    )
    app = create_app({"SETTINGS": settings, "SQLALCHEMY_DATABASE_URI": sqlite_url})
    try:
        assert app.config["SESSION_COOKIE_SECURE"] is expected
        response = app.test_client().get("/login")
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is expected
    finally:
        with app.app_context():
            db.engine.dispose()


def test_the_setting_reads_true_by_default_and_false_when_asked() -> None:
    assert Settings.from_env(env={}).session_cookie_secure is True
    assert Settings.from_env(env={"SESSION_COOKIE_SECURE": "false"}).session_cookie_secure is False
