"""The audit trail page: admins find who did what to a record, newest first."""

from __future__ import annotations

from sqlalchemy import func, select

from core.models import AuditEvent
from tests.webapp.dashboard.conftest import EMAILS, Dashboard


def test_an_admin_finds_who_read_a_calls_transcript(dash: Dashboard) -> None:
    call_id = dash.ids["call"]
    assert dash.client("coordinator").get(f"/calls/{call_id}").status_code == 200
    admin = dash.client("admin")
    html = admin.get(f"/audit/?entity_type=call&entity_id={call_id}").get_data(as_text=True)
    [row] = html.split('<tr id="audit-')[1:]
    assert "transcript.viewed" in row and EMAILS["coordinator"] in row
    assert f'href="/calls/{call_id}"' in row
    fragment = admin.get(
        f"/audit/?entity_type=call&entity_id={call_id}&action=appointment.",
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="audit-table">') and "No events match." in fragment


def test_the_trail_is_newest_first_and_narrowed_by_actor(dash: Dashboard) -> None:
    dash.client("coordinator").get(f"/calls/{dash.ids['call']}")
    dash.client("admin").get(f"/calls/{dash.ids['other_call']}")
    html = dash.client("admin").get("/audit/").get_data(as_text=True)
    newest = dash.scalar(select(func.max(AuditEvent.id)))
    assert html.index(f'id="audit-{newest}"') < html.index(f'id="audit-{newest - 1}"')
    mine = dash.client("admin").get("/audit/?actor=admin@").get_data(as_text=True)
    assert f'id="audit-{newest}"' in mine and f'id="audit-{newest - 1}"' not in mine


def test_opening_a_patient_is_recorded_for_admins_without_patient_details(
    dash: Dashboard,
) -> None:
    patient_id = dash.ids["patient"]
    assert dash.client("nurse").get(f"/patients/{patient_id}").status_code == 200
    event = dash.scalar(select(AuditEvent).where(AuditEvent.action == "patient.viewed"))
    assert (event.entity_type, event.entity_id, event.details) == ("patient", patient_id, {})
    html = dash.client("admin").get(f"/audit/?entity_type=patient&entity_id={patient_id}")
    assert "patient.viewed" in html.get_data(as_text=True)
