"""API tokens on /account/tokens (own only) and nurses' calendar subscription links."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from core.config import Settings
from core.db import make_engine, make_session_factory, transaction
from core.models import ApiToken, AuditEvent, Nurse, User
from core.notifications.feeds import hash_calendar_token
from core.services.api_tokens import create_token, hash_token
from core.services.common import Actor
from tests.webapp.dashboard.conftest import EMAILS, Dashboard, dashboard_app

ROLES = ("admin", "coordinator", "nurse", None)
FEED_URL = re.compile(r'value="(http://localhost/calendar/([^"/]+)\.ics)"')
TOKEN_VALUE = re.compile(r'id="new-token-value" type="text" value="(cmx_[^"]+)"')


def _expect(response: Any, expected: int | str) -> None:
    if expected == "login":
        assert response.status_code == 302 and response.location.startswith("/login")
    else:
        assert response.status_code == expected, response.get_data(as_text=True)[:300]


def _user_id(dash: Dashboard, role: str) -> int:
    return int(dash.scalar(select(User.id).where(User.email == EMAILS[role])))


def _token_for(dash: Dashboard, role: str, name: str = "someone else's") -> int:
    engine = make_engine(dash.url)
    try:
        with transaction(make_session_factory(engine)) as session:
            user_id = _user_id(dash, role)
            token, _ = create_token(
                session, user_id, name, actor=Actor.user(user_id), now=datetime.now(UTC)
            )
            return token.id
    finally:
        engine.dispose()


def _calendar_hash(dash: Dashboard, nurse_id: int) -> str | None:
    return dash.scalar(select(Nurse.calendar_token_hash).where(Nurse.id == nurse_id))  # type: ignore[no-any-return]


# ------------------------------------------------------------------ API tokens


def test_the_tokens_page_answers_every_signed_in_role(dash: Dashboard) -> None:
    for role, expected in zip(ROLES, (200, 200, 200, "login"), strict=True):
        _expect(dash.client(role).get("/account/tokens"), expected)
    for role, expected in zip(ROLES, (422, 422, 422, "login"), strict=True):
        _expect(dash.post(role, "/account/tokens", {}), expected)
    for role, expected in zip(ROLES, (404, 404, 404, "login"), strict=True):
        _expect(dash.post(role, "/account/tokens/9999/revoke"), expected)


def test_the_header_links_the_tokens_page_for_every_role(dash: Dashboard) -> None:
    for role, page in (("admin", "/"), ("coordinator", "/"), ("nurse", "/my-schedule")):
        html = dash.client(role).get(page).get_data(as_text=True)
        assert 'href="/account/tokens"' in html


@pytest.mark.parametrize("role", ["admin", "coordinator", "nurse"])
def test_creating_a_token_shows_it_once_and_stores_only_its_hash(
    dash: Dashboard, role: str
) -> None:
    response = dash.post(
        role, "/account/tokens", {"name": "billing export"}, headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<div id="api-tokens">')
    assert response.headers["Cache-Control"] == "no-store"
    match = TOKEN_VALUE.search(html)
    assert match is not None and "shown only this once" in html
    plaintext = match.group(1)
    stored = dash.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(plaintext)))
    assert stored.user_id == _user_id(dash, role) and stored.name == "billing export"
    later = dash.client(role).get("/account/tokens").get_data(as_text=True)
    assert "billing export" in later and stored.prefix in later and plaintext not in later
    assert dash.count(AuditEvent, AuditEvent.action == "api_token.created") == 1


def test_a_new_token_works_against_the_api(dash: Dashboard) -> None:
    html = dash.post("coordinator", "/account/tokens", {"name": "script"}).get_data(as_text=True)
    match = TOKEN_VALUE.search(html)
    assert match is not None and "<html" in html  # without htmx: the whole page
    api = dash.app.test_client().get(
        "/api/v1/nurses", headers={"Authorization": f"Bearer {match.group(1)}"}
    )
    assert api.status_code == 200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Give the token a name"),
        ({"name": "   "}, "Give the token a name"),
        ({"name": "x" * 101}, "too long"),
    ],
)
def test_bad_token_input_is_422_next_to_the_field_and_writes_nothing(
    dash: Dashboard, data: dict[str, str], message: str
) -> None:
    before = dash.count(ApiToken)
    response = dash.post("nurse", "/account/tokens", data, headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="name-error"' in html and message in html
    assert dash.count(ApiToken) == before


def test_a_user_sees_and_revokes_only_their_own_tokens(dash: Dashboard) -> None:
    theirs = _token_for(dash, "admin", "admin's secret script")
    mine = _token_for(dash, "nurse", "my phone")
    html = dash.client("nurse").get("/account/tokens").get_data(as_text=True)
    assert "my phone" in html and "admin&#39;s secret script" not in html
    assert f'id="token-row-{theirs}"' not in html
    refused = dash.post("nurse", f"/account/tokens/{theirs}/revoke")
    assert refused.status_code == 404
    revoked_at = select(ApiToken.revoked_at).where(ApiToken.id == theirs)
    assert dash.scalar(revoked_at) is None
    response = dash.post("nurse", f"/account/tokens/{mine}/revoke", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="token-row-{mine}"') and "revoked" in html
    assert dash.scalar(select(ApiToken.revoked_at).where(ApiToken.id == mine)) is not None
    again = dash.post("nurse", f"/account/tokens/{mine}/revoke")  # idempotent, no htmx
    assert again.status_code == 303 and again.location == "/account/tokens"


@pytest.mark.parametrize("path", ["/account/tokens", "/account/tokens/{token}/revoke"])
def test_token_changes_without_a_csrf_token_are_refused(dash: Dashboard, path: str) -> None:
    token = _token_for(dash, "coordinator", "keep me")
    before = dash.count(ApiToken)
    response = dash.client("coordinator").post(path.format(token=token), data={"name": "x"})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    assert dash.count(ApiToken) == before
    assert dash.scalar(select(ApiToken.revoked_at).where(ApiToken.id == token)) is None


# ------------------------------------------------------------------ calendar links


def test_calendar_link_routes_answer_each_role(dash: Dashboard) -> None:
    nurse = dash.ids["nurse"]
    table = [
        ("/my-schedule/calendar-link", (403, 403, 200, "login")),
        ("/my-schedule/calendar-link/off", (403, 403, 200, "login")),
        (f"/nurses/{nurse}/calendar-link", (200, 200, 403, "login")),
        (f"/nurses/{nurse}/calendar-link/off", (200, 200, 403, "login")),
        ("/nurses/9999/calendar-link", (404, 404, 403, "login")),
        ("/nurses/9999/calendar-link/off", (404, 404, 403, "login")),
    ]
    for path, expected in table:
        for role, outcome in zip(ROLES, expected, strict=True):
            _expect(dash.post(role, path, {}), outcome)


def test_my_schedule_offers_a_calendar_subscription(dash: Dashboard) -> None:
    html = dash.client("nurse").get("/my-schedule").get_data(as_text=True)
    assert 'id="calendar-link"' in html and "Calendar subscription" in html
    assert "No subscription link" in html and "Turn off" not in html
    assert 'hx-post="/my-schedule/calendar-link"' in html


def test_a_nurse_creates_rotates_and_turns_off_their_feed_link(dash: Dashboard) -> None:
    nurse = dash.ids["nurse"]
    feed = dash.app.test_client()
    response = dash.post("nurse", "/my-schedule/calendar-link", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith(
        '<section class="card" id="calendar-link">'
    )
    assert response.headers["Cache-Control"] == "no-store"
    match = FEED_URL.search(html)
    assert match is not None and "shown only this once" in html
    first_url, first_token = match.groups()
    assert _calendar_hash(dash, nurse) == hash_calendar_token(first_token)
    answer = feed.get(first_url)
    assert answer.status_code == 200 and answer.mimetype == "text/calendar"
    page = dash.client("nurse").get("/my-schedule").get_data(as_text=True)
    assert "A subscription link is active" in page and first_token not in page
    assert "Turn off" in page
    rotated = dash.post("nurse", "/my-schedule/calendar-link", headers={"HX-Request": "true"})
    second = FEED_URL.search(rotated.get_data(as_text=True))
    assert second is not None and second.group(2) != first_token
    assert feed.get(first_url).status_code == 404  # the old link stopped working
    assert feed.get(second.group(1)).status_code == 200
    off = dash.post("nurse", "/my-schedule/calendar-link/off", headers={"HX-Request": "true"})
    assert off.status_code == 200 and "Calendar link turned off." in off.get_data(as_text=True)
    assert _calendar_hash(dash, nurse) is None
    assert feed.get(second.group(1)).status_code == 404
    actions = {
        row
        for row in (
            dash.scalar(select(AuditEvent.action).where(AuditEvent.action == action).limit(1))
            for action in ("nurse.calendar_token_rotated", "nurse.calendar_token_revoked")
        )
    }
    assert actions == {"nurse.calendar_token_rotated", "nurse.calendar_token_revoked"}


def test_without_htmx_the_new_link_is_shown_on_a_page(dash: Dashboard) -> None:
    response = dash.post("nurse", "/my-schedule/calendar-link")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html and FEED_URL.search(html)


FORWARDED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "care.example.org",
    # A browser sends it; over https, CSRF protection requires a same-origin Referer.
    "Referer": "https://care.example.org/my-schedule",
}


@pytest.mark.parametrize(
    ("hops", "link"),
    [(0, "http://localhost/calendar/"), (1, "https://care.example.org/calendar/")],
)
def test_feed_links_carry_the_proxys_address_only_behind_a_trusted_proxy(
    dash: Dashboard, hops: int, link: str
) -> None:
    settings = replace(Settings.from_env(env={}), database_url=dash.url, trusted_proxy_hops=hops)
    apps = dashboard_app(dash.url, dash.ids, SETTINGS=settings)
    proxied = next(apps)
    try:
        response = proxied.post(
            "nurse", "/my-schedule/calendar-link", headers={"HX-Request": "true", **FORWARDED}
        )
        feed_url = re.search(r'value="([^"]+\.ics)"', response.get_data(as_text=True))
        assert response.status_code == 200 and feed_url is not None
        assert feed_url.group(1).startswith(link)
    finally:
        next(apps, None)


def test_a_coordinator_manages_a_nurses_link_from_the_nurse_page(dash: Dashboard) -> None:
    nurse = dash.ids["nurse"]
    page = dash.client("coordinator").get(f"/nurses/{nurse}").get_data(as_text=True)
    assert 'id="calendar-link"' in page and f'hx-post="/nurses/{nurse}/calendar-link"' in page
    response = dash.post(
        "coordinator", f"/nurses/{nurse}/calendar-link", headers={"HX-Request": "true"}
    )
    match = FEED_URL.search(response.get_data(as_text=True))
    assert match is not None
    assert _calendar_hash(dash, nurse) == hash_calendar_token(match.group(2))
    dash.post("coordinator", f"/nurses/{nurse}/calendar-link/off")
    assert _calendar_hash(dash, nurse) is None


@pytest.mark.parametrize("path", ["/my-schedule/calendar-link", "/my-schedule/calendar-link/off"])
def test_calendar_link_changes_without_a_csrf_token_are_refused(dash: Dashboard, path: str) -> None:
    nurse = dash.ids["nurse"]
    dash.post("nurse", "/my-schedule/calendar-link")
    before = _calendar_hash(dash, nurse)
    assert before is not None
    response = dash.client("nurse").post(path)
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    assert _calendar_hash(dash, nurse) == before
