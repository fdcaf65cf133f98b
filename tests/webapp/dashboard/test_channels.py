"""Channels without settings: one banner for admins, "not configured" messages, Call patient."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from core.models import Call, Notification
from tests.webapp.dashboard.conftest import Dashboard, every_channel, no_channels
from tests.webapp.dashboard.test_notifications import add_notification

BANNER = 'id="channels-banner"'


def test_admins_see_one_banner_naming_each_missing_channel_and_its_settings(
    dash: Dashboard,
) -> None:
    no_channels(dash)
    for path in ("/", "/patients/", "/notifications/"):
        html = dash.client("admin").get(path).get_data(as_text=True)
        assert html.count(BANNER) == 1, path
    banner = html[html.index(BANNER) : html.index("</section>", html.index(BANNER))]
    for words in (
        "Text messages: set <code>TWILIO_ACCOUNT_SID</code>",
        "Email: set <code>SMTP_HOST</code>",
        "Phone calls: set <code>PUBLIC_BASE_URL</code>",
        "<code>OPENAI_API_KEY</code>",
        "<code>.env.example</code>",
    ):
        assert words in banner
    # A fragment swapped into a page does not repeat it.
    partial = dash.client("admin").get("/notifications/", headers={"HX-Request": "true"})
    assert BANNER not in partial.get_data(as_text=True)


@pytest.mark.parametrize("role", ["coordinator", "nurse"])
def test_only_admins_see_the_banner(dash: Dashboard, role: str) -> None:
    no_channels(dash)
    html = dash.client(role).get("/", follow_redirects=True).get_data(as_text=True)
    assert BANNER not in html


def test_the_banner_names_only_what_is_missing_and_goes_once_all_is_set_up(
    dash: Dashboard,
) -> None:
    every_channel(dash, email=False)
    html = dash.client("admin").get("/").get_data(as_text=True)
    assert "Email: set <code>SMTP_HOST</code>" in html
    assert "Text messages:" not in html and "Phone calls:" not in html
    every_channel(dash)
    assert BANNER not in dash.client("admin").get("/").get_data(as_text=True)


def _waiting_on_home(dash: Dashboard) -> int:
    html = dash.client("coordinator").get("/").get_data(as_text=True)
    found = re.search(r'id="notifications">\s*<h2>[^<]*</h2>\s*<p class="big">(\d+)</p>', html)
    assert found, html
    return int(found.group(1))


def _queued(dash: Dashboard, *channels: str) -> int:
    return dash.count(
        Notification, Notification.status == "queued", Notification.channel.in_(channels)
    )


def test_home_counts_as_waiting_only_messages_whose_channel_can_send(any_dash: Dashboard) -> None:
    dash = any_dash
    for channel in ("sms", "email", "in_app"):
        add_notification(dash, channel=channel, status="queued", attempts=0, last_error=None)
    assert _queued(dash, "sms") and _queued(dash, "email") and _queued(dash, "in_app")

    no_channels(dash)
    assert _waiting_on_home(dash) == _queued(dash, "in_app")
    every_channel(dash, email=False)
    assert _waiting_on_home(dash) == _queued(dash, "in_app", "sms")
    every_channel(dash)
    assert _waiting_on_home(dash) == _queued(dash, "in_app", "sms", "email")


def _set_aside_text(dash: Dashboard) -> int:
    return add_notification(
        dash,
        status="unconfigured",
        attempts=0,
        last_error="Text messages: not configured (set TWILIO_ACCOUNT_SID).",
    )


def test_a_message_set_aside_reads_not_configured_and_is_not_retried_while_it_still_is(
    dash: Dashboard,
) -> None:
    no_channels(dash)
    row = _set_aside_text(dash)
    html = dash.client("coordinator").get("/notifications/").get_data(as_text=True)
    assert '<span class="badge unconfigured">not configured</span>' in html
    note = re.search(r'<p class="muted" id="not-configured-note">(.*?)</p>', html)
    assert note and note.group(1).startswith("Not configured: Text messages, Email.")
    assert f"/notifications/{row}/retry" not in html

    response = dash.post(
        "coordinator", f"/notifications/{row}/retry", headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert "Not queued: Text messages: not configured" in response.get_data(as_text=True)
    assert dash.scalar(select(Notification.status).where(Notification.id == row)) == "unconfigured"


def test_once_texts_are_set_up_an_older_set_aside_message_can_be_retried(dash: Dashboard) -> None:
    every_channel(dash)
    row = _set_aside_text(dash)
    html = dash.client("coordinator").get("/notifications/").get_data(as_text=True)
    assert f'hx-post="/notifications/{row}/retry"' in html
    assert "They are not sent on their own now that it has" in html

    response = dash.post(
        "coordinator", f"/notifications/{row}/retry", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert dash.scalar(select(Notification.status).where(Notification.id == row)) == "queued"


def test_call_patient_is_disabled_with_the_reason_and_refused_without_asking_anyone(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_channels(dash)
    asked: list[Any] = []
    monkeypatch.setattr("webapp.dashboard.calls.httpx.post", lambda *a, **kw: asked.append(a))
    patient = dash.ids["patient"]
    html = dash.client("coordinator").get(f"/patients/{patient}").get_data(as_text=True)
    assert re.search(r'<button type="submit" id="call-patient" disabled[^>]*>Call patient<', html)
    assert (
        "Phone calls: not configured (set PUBLIC_BASE_URL, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,"
        " TWILIO_PHONE_NUMBER and OPENAI_API_KEY)." in html
    )

    # A form posted anyway (an old page, a script) is refused with the same reason.
    calls_before = dash.count(Call)
    response = dash.post("coordinator", f"/patients/{patient}/call")
    assert response.status_code == 303
    page = dash.client("coordinator").get(response.location).get_data(as_text=True)
    assert "The call was not placed. Phone calls: not configured" in page
    assert asked == []
    assert dash.count(Call) == calls_before


def test_call_patient_is_offered_once_calls_are_set_up(dash: Dashboard) -> None:
    every_channel(dash)
    html = dash.client("coordinator").get(f"/patients/{dash.ids['patient']}").get_data(as_text=True)
    assert '<button type="submit" id="call-patient">Call patient</button>' in html
    assert "not configured" not in html
