"""Every response carries the browser security headers; pages are never cached."""

from __future__ import annotations

import logging

import pytest

from tests.webapp.dashboard.conftest import Dashboard

PAGES = ["/login", "/", "/patients/", "/calls/", "/api/v1/openapi.json", "/api/v1/docs", "/health",
         "/no-such-page"]  # fmt: skip


@pytest.mark.parametrize("path", PAGES)
def test_every_response_carries_the_security_headers(dash: Dashboard, path: str) -> None:
    response = dash.client("coordinator").get(path)
    csp = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in response.headers  # plain http


def test_static_files_may_be_cached(dash: Dashboard) -> None:
    response = dash.client(None).get("/static/app.css")
    assert response.status_code == 200
    assert response.headers.get("Cache-Control") != "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_hsts_is_sent_over_https(dash: Dashboard) -> None:
    response = dash.client(None).get("/login", base_url="https://dashboard.example.test")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_no_page_has_an_inline_script_or_style(dash: Dashboard) -> None:
    for path in ["/login", "/api/v1/docs"]:
        page = dash.client(None).get(path).get_data(as_text=True)
        assert "<style" not in page
        assert all("src=" in tag for tag in page.split("<script")[1:]), path


def test_a_crashing_view_logs_neither_its_message_nor_its_traceback(
    dash: Dashboard, caplog: pytest.LogCaptureFixture
) -> None:
    def crash() -> str:
        raise RuntimeError("patient John Smith +12025550101")  # as a SQL error's parameters

    dash.app.add_url_rule("/crash-for-test", view_func=crash)
    dash.app.testing = False  # answer 500 as in production instead of raising
    caplog.set_level(logging.INFO)
    response = dash.client(None).get("/crash-for-test")
    assert response.status_code == 500
    assert "Exception on /crash-for-test [GET] (RuntimeError)" in caplog.text
    assert "John Smith" not in caplog.text and "+12025550101" not in caplog.text
