"""Admin staff logins; the calls list, transcripts (audited) and live updates."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.db import make_engine, make_session_factory, transaction
from core.models import AuditEvent, Call, CallStatus, ConversationLog, LogRole, Nurse, User
from core.services.calls import finish_call
from tests.webapp.dashboard.conftest import PASSWORD, Dashboard, login


def test_an_admin_creates_a_nurse_login_that_can_sign_in(dash: Dashboard) -> None:
    nurse = dash.scalar(select(Nurse.id).where(Nurse.last_name == "Chen"))
    engine = make_engine(dash.url)
    with engine.begin() as connection:  # free Dr. Chen's demo login first
        connection.execute(User.__table__.delete().where(User.nurse_id == nurse))
    engine.dispose()
    response = dash.post(
        "admin",
        "/staff/",
        {
            "email": "m.chen@example.test",
            "role": "nurse",
            "nurse_id": str(nurse),
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303
    signed_in = login(dash.app.test_client(), "m.chen@example.test", PASSWORD)
    assert signed_in.status_code == 302


def test_bad_staff_input_is_422_next_to_the_field_and_writes_nothing(dash: Dashboard) -> None:
    before = dash.count(User)
    for data, field in [
        ({"email": "x@example.test", "role": "coordinator", "password": "short"}, "password"),
        ({"email": "admin@carematix.local", "role": "coordinator", "password": PASSWORD}, "email"),
        ({"email": "y@example.test", "role": "nurse", "password": PASSWORD}, "nurse_id"),
        ({"email": "z@example.test", "role": "boss", "password": PASSWORD}, "role"),
    ]:
        response = dash.post("admin", "/staff/", data, headers={"HX-Request": "true"})
        html = response.get_data(as_text=True)
        assert response.status_code == 422, data
        assert f'id="{field}-error"' in html and html.lstrip().startswith('<form id="staff-create"')
    assert dash.count(User) == before


def test_an_admin_cannot_deactivate_their_own_login(dash: Dashboard) -> None:
    admin_id = dash.scalar(select(User.id).where(User.role == "admin"))
    response = dash.post("admin", f"/staff/{admin_id}/active")
    assert response.status_code == 422 and "your own login" in response.get_data(as_text=True)


def test_linking_a_nurse_already_linked_elsewhere_is_refused(dash: Dashboard) -> None:
    coordinator = dash.scalar(select(User.id).where(User.role == "coordinator"))
    response = dash.post(
        "admin", f"/staff/{coordinator}/nurse", {"nurse_id": str(dash.ids["nurse"])}
    )
    assert response.status_code == 422 and "already has a login" in response.get_data(as_text=True)


def test_the_calls_list_shows_direction_patient_status_and_kind(dash: Dashboard) -> None:
    html = dash.client("coordinator").get("/calls/").get_data(as_text=True)
    assert "John Smith" in html and "inbound" in html and "simulated" in html


def test_viewing_a_transcript_shows_lines_and_tool_actions_and_is_audited(dash: Dashboard) -> None:
    call_id = dash.ids["call"]
    html = dash.client("coordinator").get(f"/calls/{call_id}").get_data(as_text=True)
    assert "I need a visit" in html and "check availability" in html
    assert 'hx-trigger="every 500ms"' in html
    assert dash.count(AuditEvent, AuditEvent.action == "transcript.viewed") == 1
    event = dash.scalar(select(AuditEvent).where(AuditEvent.action == "transcript.viewed"))
    assert (event.entity_type, event.entity_id, event.details) == ("call", call_id, {})


def test_the_poll_returns_only_new_lines_and_the_next_poller(dash: Dashboard) -> None:
    call_id = dash.ids["call"]
    client = dash.client("coordinator")
    last = dash.scalar(select(ConversationLog.id).order_by(ConversationLog.id.desc()))
    quiet = client.get(f"/calls/{call_id}/updates?after={last}", headers={"HX-Request": "true"})
    assert 'hx-swap-oob="beforeend:#transcript"' not in quiet.get_data(as_text=True)
    engine = make_engine(dash.url)
    with transaction(make_session_factory(engine)) as session:
        session.add(
            ConversationLog(
                call_id=call_id,
                position=99,
                role=LogRole.ASSISTANT,
                text="Tuesday at ten works.",
                created_at=datetime.now(UTC),
            )
        )
    engine.dispose()
    fresh = client.get(f"/calls/{call_id}/updates?after={last}", headers={"HX-Request": "true"})
    html = fresh.get_data(as_text=True)
    assert "Tuesday at ten works." in html and "I need a visit" not in html
    assert f"after={last + 1}" in html
    assert dash.count(AuditEvent, AuditEvent.action == "transcript.viewed") == 0


def test_placing_a_call_with_calls_set_up_but_no_internal_token_says_so(
    dash: Dashboard,
) -> None:
    _voice_configured(dash)
    settings = dash.app.config["SETTINGS"]
    dash.app.config["SETTINGS"] = dataclasses.replace(settings, internal_api_token="")
    response = dash.post("coordinator", f"/patients/{dash.ids['patient']}/call")
    assert response.status_code == 303
    page = dash.client("coordinator").get(response.location).get_data(as_text=True)
    assert "Calling is not configured" in page


def test_the_poll_carries_status_changes_and_stops_once_the_call_is_over(dash: Dashboard) -> None:
    call_id = dash.ids["call"]
    engine = make_engine(dash.url)
    with engine.begin() as connection:
        connection.execute(
            Call.__table__.update()
            .where(Call.id == call_id)
            .values(status=CallStatus.COMPLETED, outcome="booked", duration_seconds=95)
        )
    engine.dispose()
    last = dash.scalar(select(ConversationLog.id).order_by(ConversationLog.id.desc()))
    response = dash.client("coordinator").get(
        f"/calls/{call_id}/updates?after={last}", headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert 'id="call-facts" hx-swap-oob="true"' in html
    assert "completed" in html and "booked" in html
    assert "hx-trigger" not in html  # the poller stops
    assert response.headers["Cache-Control"] == "no-store"


def test_a_nurse_gets_a_readable_403_page(dash: Dashboard) -> None:
    response = dash.client("nurse").get("/calls/")
    assert response.status_code == 403
    assert "Your role does not give access" in response.get_data(as_text=True)


def _voice_configured(dash: Dashboard) -> None:
    settings = dash.app.config["SETTINGS"]
    dash.app.config["SETTINGS"] = dataclasses.replace(
        settings,
        internal_api_token="internal-token",
        voice_service_url="http://voice.test",
        public_base_url="https://voice.example.test",
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token="twilio-token",
        twilio_phone_number="+12025550199",
        openai_api_key="sk-test",
    )


def test_call_patient_asks_the_voice_service_and_opens_the_live_call(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    _voice_configured(dash)
    seen: dict[str, Any] = {}

    def fake_post(url: str, **kwargs: Any) -> httpx.Response:
        seen.update(url=url, **kwargs)
        return httpx.Response(201, json={"call_id": dash.ids["call"], "call_sid": "CA1"})

    monkeypatch.setattr("webapp.dashboard.calls.httpx.post", fake_post)
    response = dash.post("coordinator", f"/patients/{dash.ids['patient']}/call")
    assert response.status_code == 303
    assert response.location == f"/calls/{dash.ids['call']}"
    assert seen["url"] == "http://voice.test/make-call"
    assert seen["json"]["patient_id"] == dash.ids["patient"]
    assert seen["headers"]["Authorization"] == "Bearer internal-token"


def test_call_patient_reports_the_voice_services_refusal(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    _voice_configured(dash)
    monkeypatch.setattr(
        "webapp.dashboard.calls.httpx.post",
        lambda url, **kw: httpx.Response(
            503, json={"error": "not_configured", "message": "Twilio is not configured."}
        ),
    )
    response = dash.post("coordinator", f"/patients/{dash.ids['patient']}/call")
    page = dash.client("coordinator").get(response.location).get_data(as_text=True)
    assert "The call was not placed: Twilio is not configured." in page


def test_a_finished_calls_page_shows_its_summary(dash: Dashboard) -> None:
    call_id = dash.ids["call"]
    live = dash.client("coordinator").get(f"/calls/{call_id}").get_data(as_text=True)
    assert 'id="call-summary"' not in live  # nothing to sum up while the call goes on
    engine = make_engine(dash.url)
    try:
        with transaction(make_session_factory(engine)) as session:
            finish_call(session, call_id, now=datetime.now(UTC))
    finally:
        engine.dispose()
    html = dash.client("coordinator").get(f"/calls/{call_id}").get_data(as_text=True)
    assert 'id="call-summary"' in html
    assert "<li>No scheduling change.</li><li>Outcome: completed.</li>" in html


def _end(dash: Dashboard, call_id: int) -> None:
    engine = make_engine(dash.url)
    with engine.begin() as connection:
        connection.execute(
            Call.__table__.update()
            .where(Call.id == call_id)
            .values(status=CallStatus.NO_ANSWER, outcome="no-answer")
        )
    engine.dispose()


def test_a_live_call_page_follows_its_transcript_with_no_inline_script(dash: Dashboard) -> None:
    html = dash.client("coordinator").get(f"/calls/{dash.ids['call']}").get_data(as_text=True)
    assert '<ol id="transcript" class="transcript" data-follow>' in html
    assert '<div class="flashes" id="flashes">' in html  # what the call's end replaces
    assert "The call has ended." not in html
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(" src=" in tag for tag in scripts), scripts


def test_the_last_poll_of_a_finished_call_says_it_ended_and_does_not_poll_again(
    dash: Dashboard,
) -> None:
    call_id = dash.ids["call"]
    client = dash.client("coordinator")
    live = client.get(f"/calls/{call_id}/updates?after=0", headers={"HX-Request": "true"})
    assert "The call has ended." not in live.get_data(as_text=True)
    _end(dash, call_id)
    last = dash.scalar(select(ConversationLog.id).order_by(ConversationLog.id.desc()))

    html = client.get(
        f"/calls/{call_id}/updates?after={last}", headers={"HX-Request": "true"}
    ).get_data(as_text=True)

    assert '<div class="flashes" id="flashes" hx-swap-oob="true">' in html
    assert "The call has ended." in html
    assert "hx-trigger" not in html


def test_arriving_at_a_call_that_already_ended_says_so_instead_of_in_progress(
    dash: Dashboard,
) -> None:
    call_id = dash.ids["call"]
    client = dash.client("coordinator")
    _end(dash, call_id)
    with client.session_transaction() as session:
        session["_flashes"] = [("success", "Simulated call in progress.")]

    html = client.get(f"/calls/{call_id}").get_data(as_text=True)

    assert "The call has ended." in html and "in progress." not in html
    assert "hx-trigger" not in html


def test_a_call_page_says_an_answering_machine_picked_up(dash: Dashboard) -> None:
    call_id = dash.ids["call"]
    page = dash.client("coordinator").get(f"/calls/{call_id}").get_data(as_text=True)
    assert "Answered by" not in page  # inbound, or not yet known
    engine = make_engine(dash.url)
    with engine.begin() as connection:
        connection.execute(
            Call.__table__.update()
            .where(Call.id == call_id)
            .values(answered_by="machine", outcome="voicemail")
        )
    engine.dispose()
    page = dash.client("coordinator").get(f"/calls/{call_id}").get_data(as_text=True)
    assert "<dt>Answered by</dt><dd>Answering machine</dd>" in page
