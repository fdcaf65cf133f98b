"""Bad input answers 4xx with a message a coordinator can act on, and changes nothing."""

from __future__ import annotations

from sqlalchemy import select

from core.models import AuditEvent, Patient
from tests.webapp.dashboard.conftest import Dashboard

# John Smith, as the edit form sends him back.
PATIENT_FORM = {
    "first_name": "John",
    "last_name": "Smith",
    "date_of_birth": "1958-04-12",
    "phone": "+12025550101",
    "time_zone": "America/New_York",
    "preferred_language": "en",
}


def test_an_id_past_the_database_integer_is_not_found(any_dash: Dashboard) -> None:
    client = any_dash.client("admin")
    for path in ("/patients/2147483648", "/nurses/9223372036854775808/calendar"):
        assert client.get(path).status_code == 404, path
    refused = any_dash.post("admin", "/appointments/2147483648/cancel", {"reason_code": "other"})
    assert refused.status_code == 404


def test_a_nul_byte_in_a_form_is_refused_and_nothing_is_stored(any_dash: Dashboard) -> None:
    patient = any_dash.ids["patient"]
    before = any_dash.count(AuditEvent)
    response = any_dash.post(
        "coordinator", f"/patients/{patient}/edit", {**PATIENT_FORM, "notes": "a\x00b"}
    )
    assert response.status_code == 400
    assert "control characters" in response.get_data(as_text=True)
    assert "control characters" in response.headers["X-Problem"]
    assert any_dash.count(AuditEvent) == before


def test_line_breaks_and_tabs_in_a_text_area_are_kept(dash: Dashboard) -> None:
    patient = dash.ids["patient"]
    form = {**PATIENT_FORM, "notes": "Gate code 1234\r\n\tKnock twice"}
    assert dash.post("coordinator", f"/patients/{patient}/edit", form).status_code == 303
    notes = dash.scalar(select(Patient.notes).where(Patient.id == patient))
    assert "\tKnock twice" in notes


def test_a_nul_byte_in_a_search_or_sign_in_is_refused(any_dash: Dashboard) -> None:
    assert any_dash.client("coordinator").get("/patients/?q=a%00b").status_code == 400
    signed_out = any_dash.post(None, "/login", {"email": "a\x00b", "password": "x"})
    assert signed_out.status_code == 400
