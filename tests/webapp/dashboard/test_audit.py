"""The audit trail page: staff find who did what to a record, newest first, and what changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from core.db import make_engine, make_session_factory, transaction
from core.models import AuditEvent, Nurse
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


def _nurse_form(dash: Dashboard, nurse_id: int) -> dict[str, str]:
    """Every field of the nurse form as it would be sent back unchanged."""
    nurse = dash.scalar(select(Nurse).where(Nurse.id == nurse_id))
    form = {
        name: "" if getattr(nurse, name) is None else str(getattr(nurse, name))
        for name in (
            "title",
            "first_name",
            "last_name",
            "phone",
            "email",
            "time_zone",
            "visit_minutes",
            "buffer_before_minutes",
            "buffer_after_minutes",
            "min_notice_minutes",
            "horizon_days",
            "slot_step_minutes",
            "daily_cap",
        )
    }
    form["specializations"] = ", ".join(nurse.specializations)
    form["active"] = "on"
    return form


def _rows(html: str) -> list[str]:
    return [row.split("</tr>")[0] for row in html.split('<tr id="audit-')[1:]]


def test_editing_one_field_of_a_nurse_shows_only_that_change_old_and_new(
    dash: Dashboard,
) -> None:
    nurse_id = dash.ids["other_nurse"]
    form = _nurse_form(dash, nurse_id)
    old = form["visit_minutes"]
    saved = dash.post("coordinator", f"/nurses/{nurse_id}/edit", {**form, "visit_minutes": "50"})
    assert saved.status_code == 303, saved.get_data(as_text=True)[:500]

    event = dash.scalar(select(AuditEvent).where(AuditEvent.action == "nurse.updated"))
    assert event.details == {"changes": {"visit_minutes": [int(old), 50]}}
    html = dash.client("coordinator").get(f"/audit/?entity_type=nurse&entity_id={nurse_id}")
    [row] = [r for r in _rows(html.get_data(as_text=True)) if "nurse.updated" in r]
    assert (
        f'Visit length (minutes): <span class="old">{old}</span> &rarr; <span class="new">50</span>'
        in row
    )
    assert "First name" not in row and "None" not in row and "_" not in row.split("</td>")[-2]
    assert "Dr. Maria Garcia" in row  # the record by name


def test_a_coordinator_reads_the_trail_of_records_they_manage_but_not_of_staff_logins(
    dash: Dashboard,
) -> None:
    patient_id = dash.ids["patient"]
    dash.client("nurse").get(f"/patients/{patient_id}")
    staff_event = _add_event(dash, action="user.password_reset", entity_type="user", entity_id=1)

    coordinator = dash.client("coordinator")
    html = coordinator.get("/audit/").get_data(as_text=True)
    assert "patient.viewed" in html and f'id="audit-{staff_event}"' not in html
    assert '<option value="user"' not in html
    assert f'id="audit-{staff_event}"' in dash.client("admin").get("/audit/").get_data(as_text=True)
    assert 'href="/audit/"' in coordinator.get("/").get_data(as_text=True)  # in the nav
    assert dash.client("nurse").get("/audit/").status_code == 403


def _add_event(dash: Dashboard, **fields: Any) -> int:
    engine = make_engine(dash.url)
    try:
        with transaction(make_session_factory(engine)) as session:
            values: dict[str, Any] = {
                "at": datetime.now(UTC),
                "actor": "user:1",
                "source": "dashboard",
                "details": {},
            }
            event = AuditEvent(**{**values, **fields})
            session.add(event)
            session.flush()
            return event.id
    finally:
        engine.dispose()


def test_events_written_before_changes_were_recorded_still_read_in_words(dash: Dashboard) -> None:
    nurse_id, patient_id = dash.ids["nurse"], dash.ids["patient"]
    saved = _add_event(
        dash,
        action="nurse.updated",
        entity_type="nurse",
        entity_id=nurse_id,
        details={"fields": ["first_name", "visit_minutes"]},
    )
    assigned = _add_event(
        dash,
        action="assignment.created",
        entity_type="patient",
        entity_id=patient_id,
        details={"nurse_id": nurse_id, "role": "primary", "replaced_nurse_id": None},
    )
    html = dash.client("coordinator").get("/audit/").get_data(as_text=True)
    rows = {row.split('"')[0]: row for row in _rows(html)}
    assert "Fields saved:</span> First name, Visit length (minutes)" in rows[str(saved)]
    assigned_row = rows[str(assigned)]
    assert (
        "Nurse:</span> Dr. Alice Wilson" in assigned_row and "Role:</span> primary" in assigned_row
    )
    assert "None" not in assigned_row and "Replaced" not in assigned_row
    assert "John Smith" in assigned_row  # the record by name
