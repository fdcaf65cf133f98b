"""The notifications page (filters, paging, retry) and each appointment's messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.db import make_engine, make_session_factory, transaction
from core.models import AuditEvent, Notification
from tests.webapp.dashboard.conftest import Dashboard

ROLES = ("admin", "coordinator", "nurse", None)
BODY = "Hi John, your visit with Alice is on Tuesday at 10:00. Reply R to reschedule."


def add_notification(dash: Dashboard, **fields: Any) -> int:
    """One outbox row (a failed SMS to the demo patient unless told otherwise)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "recipient_kind": "patient",
        "patient_id": dash.ids["patient"],
        "channel": "sms",
        "event": "booking_confirmed",
        "body": BODY,
        "status": "failed",
        "attempts": 5,
        "last_error": "21211: invalid 'To' phone number",
        "send_after": now,
        "created_at": now,
    }
    values.update(fields)
    engine = make_engine(dash.url)
    try:
        with transaction(make_session_factory(engine)) as session:
            row = Notification(**values)
            session.add(row)
            session.flush()
            return row.id
    finally:
        engine.dispose()


def _status(dash: Dashboard, notification_id: int) -> str:
    return str(dash.scalar(select(Notification.status).where(Notification.id == notification_id)))


def _expect(response: Any, expected: int | str) -> None:
    if expected == "login":
        assert response.status_code == 302 and response.location.startswith("/login")
    else:
        assert response.status_code == expected, response.get_data(as_text=True)[:300]


def test_the_page_answers_each_role(dash: Dashboard) -> None:
    add_notification(dash)
    for role, expected in zip(ROLES, (200, 200, 403, "login"), strict=True):
        _expect(dash.client(role).get("/notifications/"), expected)


def test_retry_answers_each_role(dash: Dashboard) -> None:
    for role, expected in zip(ROLES, (303, 303, 403, "login"), strict=True):
        row = add_notification(dash)
        _expect(dash.post(role, f"/notifications/{row}/retry"), expected)
        assert _status(dash, row) == ("queued" if expected == 303 else "failed")
    for role, expected in zip(ROLES, (404, 404, 403, "login"), strict=True):
        _expect(dash.post(role, "/notifications/9999/retry"), expected)


def test_the_nav_links_the_page_for_staff_only(dash: Dashboard) -> None:
    for role in ("admin", "coordinator"):
        assert 'href="/notifications/"' in dash.client(role).get("/").get_data(as_text=True)
    html = dash.client("nurse").get("/my-schedule").get_data(as_text=True)
    assert 'href="/notifications/"' not in html


def test_a_row_shows_recipient_channel_event_status_attempts_and_error_but_no_body(
    dash: Dashboard,
) -> None:
    row = add_notification(dash)
    html = dash.client("coordinator").get("/notifications/").get_data(as_text=True)
    assert f'id="notification-row-{row}"' in html
    assert f'href="/patients/{dash.ids["patient"]}"' in html and "John Smith" in html
    assert "sms" in html and "booking confirmed" in html
    assert '<span class="badge failed">failed</span>' in html
    assert "invalid &#39;To&#39; phone number" in html
    assert "Reply R to reschedule" not in html
    assert f'hx-post="/notifications/{row}/retry"' in html


def test_a_nurse_recipient_links_to_the_nurse(dash: Dashboard) -> None:
    add_notification(
        dash, recipient_kind="nurse", patient_id=None, nurse_id=dash.ids["nurse"], channel="email"
    )
    html = dash.client("admin").get("/notifications/").get_data(as_text=True)
    assert f'href="/nurses/{dash.ids["nurse"]}"' in html and "Alice Wilson" in html


def test_sent_rows_have_no_retry_button(dash: Dashboard) -> None:
    row = add_notification(dash, status="sent", sent_at=datetime.now(UTC), last_error=None)
    html = dash.client("coordinator").get("/notifications/").get_data(as_text=True)
    assert f'id="notification-row-{row}"' in html
    assert f"/notifications/{row}/retry" not in html


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("status=failed", "failed_row", "sent_row"),
        ("status=sent", "sent_row", "failed_row"),
        ("channel=email", "sent_row", "failed_row"),
        ("recipient_kind=nurse", "sent_row", "failed_row"),
        ("event=daily_agenda", "sent_row", "failed_row"),
    ],
)
def test_filters_narrow_the_list(dash: Dashboard, query: str, shown: str, hidden: str) -> None:
    rows = {
        "failed_row": add_notification(dash),
        "sent_row": add_notification(
            dash,
            recipient_kind="nurse",
            patient_id=None,
            nurse_id=dash.ids["nurse"],
            channel="email",
            event="daily_agenda",
            status="sent",
            last_error=None,
        ),
    }
    response = dash.client("coordinator").get(
        f"/notifications/?{query}", headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="notification-table">')
    assert "HX-Request" in response.headers["Vary"]
    assert f'id="notification-row-{rows[shown]}"' in html
    assert f'id="notification-row-{rows[hidden]}"' not in html


def test_unknown_filter_values_are_ignored(dash: Dashboard) -> None:
    row = add_notification(dash)
    client = dash.client("coordinator")
    for query in ("status=bogus", "channel=fax", "recipient_kind=cat", "event=nope", "page=x"):
        response = client.get(f"/notifications/?{query}")
        assert response.status_code == 200
        assert f'id="notification-row-{row}"' in response.get_data(as_text=True)


def test_the_list_is_paged(dash: Dashboard) -> None:
    start = datetime.now(UTC)
    ids = [
        add_notification(dash, event="paging_test", created_at=start + timedelta(seconds=i))
        for i in range(30)
    ]
    client = dash.client("coordinator")
    first = client.get("/notifications/?event=paging_test").get_data(as_text=True)
    assert f'id="notification-row-{ids[-1]}"' in first
    assert f'id="notification-row-{ids[0]}"' not in first
    assert "Page 1 of 2" in first
    second = client.get("/notifications/?event=paging_test&page=2").get_data(as_text=True)
    assert f'id="notification-row-{ids[0]}"' in second and "Page 2 of 2" in second
    beyond = client.get("/notifications/?event=paging_test&page=9").get_data(as_text=True)
    assert "Page 2 of 2" in beyond


@pytest.mark.parametrize("status", ["failed", "unknown"])
def test_retry_requeues_in_place_and_is_audited(dash: Dashboard, status: str) -> None:
    row = add_notification(dash, status=status)
    response = dash.post(
        "coordinator", f"/notifications/{row}/retry", headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="notification-row-{row}"')
    assert '<span class="badge queued">queued</span>' in html
    assert "Queued for another attempt." in html
    assert _status(dash, row) == "queued"
    event = dash.scalar(select(AuditEvent).where(AuditEvent.action == "notification.retried"))
    assert (event.entity_type, event.entity_id) == ("notification", row)


@pytest.mark.parametrize("status", ["sent", "delivered", "queued", "cancelled"])
def test_a_message_that_cannot_be_retried_says_so_and_changes_nothing(
    dash: Dashboard, status: str
) -> None:
    row = add_notification(dash, status=status, last_error=None)
    before = dash.count(AuditEvent)
    response = dash.post(
        "coordinator", f"/notifications/{row}/retry", headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert "Only failed, unknown or not configured messages can be retried" in response.get_data(
        as_text=True
    )
    assert _status(dash, row) == status
    assert dash.count(AuditEvent) == before
    # without htmx: back to the list with the reason flashed
    plain = dash.post("coordinator", f"/notifications/{row}/retry")
    assert plain.status_code == 303
    page = dash.client("coordinator").get(plain.location).get_data(as_text=True)
    assert "Only failed, unknown or not configured messages can be retried" in page


def test_retry_without_a_csrf_token_is_refused(dash: Dashboard) -> None:
    row = add_notification(dash)
    response = dash.client("admin").post(f"/notifications/{row}/retry")
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    assert _status(dash, row) == "failed"


def test_an_appointment_lists_what_was_sent_about_it(dash: Dashboard) -> None:
    appointment = dash.ids["appointment"]
    sent = add_notification(
        dash, appointment_id=appointment, status="delivered", sent_at=datetime.now(UTC)
    )
    add_notification(
        dash,
        appointment_id=appointment,
        recipient_kind="nurse",
        patient_id=None,
        nurse_id=dash.ids["nurse"],
        channel="email",
        event="booking_confirmed_nurse",
        status="queued",
        last_error=None,
    )
    unrelated = add_notification(dash, event="unrelated_event")
    for role in ("admin", "coordinator", "nurse"):
        html = dash.client(role).get(f"/appointments/{appointment}").get_data(as_text=True)
        assert 'id="appointment-messages"' in html
        assert f'id="message-{sent}"' in html and f'id="message-{unrelated}"' not in html
        assert "booking confirmed nurse" in html and "Alice Wilson" in html
        assert '<span class="badge delivered">delivered</span>' in html
        assert "Reply R to reschedule" not in html
    nurse_view = dash.client("nurse").get(f"/appointments/{appointment}").get_data(as_text=True)
    assert f'href="/nurses/{dash.ids["nurse"]}"' not in nurse_view  # a nurse cannot open it


def test_an_appointment_without_messages_says_so(dash: Dashboard) -> None:
    engine = make_engine(dash.url)
    with engine.begin() as connection:
        connection.execute(
            Notification.__table__.delete().where(
                Notification.appointment_id == dash.ids["appointment"]
            )
        )
    engine.dispose()
    html = dash.client("coordinator").get(f"/appointments/{dash.ids['appointment']}")
    assert "Nothing sent about this appointment." in html.get_data(as_text=True)
