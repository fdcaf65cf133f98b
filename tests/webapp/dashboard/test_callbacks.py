"""Callback requests: coordinators see who waits for a call back and mark each one done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from core.db import make_engine, make_session_factory, transaction
from core.models import AuditEvent, CallbackRequest, User
from core.services.calls import record_callback_request
from tests.webapp.dashboard.conftest import EMAILS, Dashboard


def _requests(dash: Dashboard) -> tuple[int, int]:
    """An older request from a verified patient on a call, a newer one from an unknown number."""
    engine = make_engine(dash.url)
    now = datetime.now(UTC)
    try:
        with transaction(make_session_factory(engine)) as session:
            older = record_callback_request(
                session,
                call_id=dash.ids["call"],
                patient_id=dash.ids["patient"],
                phone="+12025550101",
                reason="caller pressed 0",
                now=now - timedelta(minutes=30),
            )
            newer = record_callback_request(
                session,
                call_id=None,
                patient_id=None,
                phone="+12025550999",
                reason="voice agent connection lost",
                now=now,
            )
            session.flush()
            return older.id, newer.id
    finally:
        engine.dispose()


def test_waiting_callers_are_listed_oldest_first_and_counted_on_home(dash: Dashboard) -> None:
    older, newer = _requests(dash)
    html = dash.client("coordinator").get("/callbacks/").get_data(as_text=True)
    assert html.index(f'id="callback-row-{older}"') < html.index(f'id="callback-row-{newer}"')
    assert "John Smith" in html and "caller pressed 0" in html and "Not verified" in html
    assert f'href="/calls/{dash.ids["call"]}"' in html
    home = dash.client("coordinator").get("/").get_data(as_text=True)
    assert 'id="callbacks"' in home and '<p class="big">2</p>' in home
    assert "No callback has been marked done yet." in (
        dash.client("coordinator").get("/callbacks/?status=done").get_data(as_text=True)
    )


def test_marking_a_request_done_records_who_and_when_once(dash: Dashboard) -> None:
    older, newer = _requests(dash)
    before = dash.count(AuditEvent)
    done = dash.post("coordinator", f"/callbacks/{older}/done", headers={"HX-Request": "true"})
    assert done.status_code == 200 and "Marked as called back." in done.get_data(as_text=True)
    row = dash.scalar(select(CallbackRequest).where(CallbackRequest.id == older))
    coordinator = dash.scalar(select(User.id).where(User.email == EMAILS["coordinator"]))
    assert row.status == "done" and row.resolved_at is not None
    assert row.resolved_by_user_id == coordinator
    assert dash.count(AuditEvent) == before + 1

    again = dash.post("coordinator", f"/callbacks/{older}/done", headers={"HX-Request": "true"})
    assert again.status_code == 422 and "already done" in again.get_data(as_text=True)
    assert dash.count(AuditEvent) == before + 1
    waiting = dash.client("coordinator").get("/callbacks/").get_data(as_text=True)
    assert f"callback-row-{older}" not in waiting and f"callback-row-{newer}" in waiting
    finished = dash.client("coordinator").get("/callbacks/?status=done").get_data(as_text=True)
    assert f"callback-row-{older}" in finished


def test_marking_done_needs_a_csrf_token(dash: Dashboard) -> None:
    older, _ = _requests(dash)
    refused = dash.client("admin").post(f"/callbacks/{older}/done")
    assert refused.status_code == 400
    row = dash.scalar(select(CallbackRequest).where(CallbackRequest.id == older))
    assert row.status == "open"


def test_home_counts_waiting_callers_beside_its_call_lists_on_each_backend(
    any_dash: Dashboard,
) -> None:
    home = any_dash.client("coordinator").get("/").get_data(as_text=True)
    assert '<p class="big">0</p>' in home.split('id="callbacks"')[1].split("</section>")[0]
    _requests(any_dash)
    home = any_dash.client("coordinator").get("/").get_data(as_text=True)
    waiting = home.split('id="callbacks"')[1].split("</section>")[0]
    assert '<p class="big">2</p>' in waiting
    assert f'href="/calls/{any_dash.ids["call"]}"' in home  # the call lists still read
