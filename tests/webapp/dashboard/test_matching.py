"""Condition matching: coordinators keep which specialisations cover which conditions."""

from __future__ import annotations

from sqlalchemy import select

from core.models import AuditEvent, ConditionSpecialization
from tests.webapp.dashboard.conftest import Dashboard
from webapp import db


def _covering(dash: Dashboard, condition: str) -> set[str]:
    with dash.app.app_context():
        return set(
            db.session.scalars(
                select(ConditionSpecialization.specialization).where(
                    ConditionSpecialization.condition == condition
                )
            )
        )


def test_the_mapping_is_shown_and_a_condition_is_added_changed_and_removed(
    dash: Dashboard,
) -> None:
    page = dash.client("coordinator").get("/matching/").get_data(as_text=True)
    assert "<td>hypertension</td><td>cardiology, general care</td>" in page
    assert "Your nurses' specialisations:" in page and "mental health" in page
    before = dash.count(AuditEvent, AuditEvent.action == "condition_mapping.updated")

    added = dash.post(
        "coordinator",
        "/matching/",
        {"condition": " Wound Care ", "specializations": "General care, geriatrics"},
        headers={"HX-Request": "true"},
    )
    html = added.get_data(as_text=True)
    assert added.status_code == 200 and html.lstrip().startswith('<div id="condition-mapping">')
    assert "<td>wound care</td><td>general care, geriatrics</td>" in html
    assert _covering(dash, "wound care") == {"general care", "geriatrics"}

    dash.post("coordinator", "/matching/", {"condition": "wound care", "specializations": "x"})
    assert _covering(dash, "wound care") == {"x"}
    dash.post("coordinator", "/matching/", {"condition": "wound care", "specializations": ""})
    assert _covering(dash, "wound care") == set()
    after = dash.count(AuditEvent, AuditEvent.action == "condition_mapping.updated")
    assert after == before + 3


def test_a_mapping_without_a_condition_is_refused_and_changes_nothing(dash: Dashboard) -> None:
    before = dash.count(ConditionSpecialization)
    refused = dash.post("coordinator", "/matching/", {"condition": " ", "specializations": "x"})
    assert refused.status_code == 422 and "The condition is required." in refused.get_data(
        as_text=True
    )
    assert dash.count(ConditionSpecialization) == before
