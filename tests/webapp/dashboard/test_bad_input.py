"""Bad input answers 4xx with a message a coordinator can act on, and changes nothing."""

from __future__ import annotations

from sqlalchemy import select

from core.models import Appointment, AuditEvent, NurseAvailabilityOverride, Patient
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
    assert "control%20characters" in response.headers["X-Problem"]
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


def test_a_calendar_date_it_cannot_show_is_refused_saying_which_dates_it_can(
    any_dash: Dashboard,
) -> None:
    client = any_dash.client("coordinator")
    for day in ("9999-12-31", "0001-01-01"):
        response = client.get(f"/nurses/{any_dash.ids['nurse']}/calendar?date={day}")
        assert response.status_code == 400
        assert "Date must be between 1970 and 2100." in response.get_data(as_text=True)
    nurse = any_dash.client("nurse").get("/my-schedule?date=9999-12-31")
    assert nurse.status_code == 400


def test_list_filters_out_of_range_are_refused(any_dash: Dashboard) -> None:
    client = any_dash.client("admin")
    listed = client.get("/appointments/?to=9999-12-31")
    assert listed.status_code == 422 and "To must be between" in listed.get_data(as_text=True)
    for path in (
        "/appointments/?page=9223372036854775808",
        "/notifications/?page=10001",
        "/audit/?entity_id=2147483648",
        f"/calls/{any_dash.ids['call']}/updates?after=2147483648",
    ):
        assert client.get(path).status_code == 400, path
    assert client.get("/appointments/?page=\u00b2").status_code == 200  # not a number: page 1


def test_a_booking_in_year_9999_is_refused_and_books_nothing(any_dash: Dashboard) -> None:
    before = any_dash.count(Appointment)
    form = {"patient_id": str(any_dash.ids["patient"]), "start_local": "9999-12-31T10:00"}
    response = any_dash.post("coordinator", "/appointments/new", form)
    assert response.status_code == 422
    assert "Start must be between 1970 and 2100." in response.get_data(as_text=True)
    assert any_dash.count(Appointment) == before


def test_time_off_in_year_1_is_refused_and_adds_nothing(any_dash: Dashboard) -> None:
    before = any_dash.count(NurseAvailabilityOverride)
    form = {"kind": "time_off", "start_date": "0001-01-01"}
    response = any_dash.post("coordinator", f"/nurses/{any_dash.ids['nurse']}/overrides", form)
    assert response.status_code == 422
    assert "First date must be between 1970 and 2100." in response.get_data(as_text=True)
    assert any_dash.count(NurseAvailabilityOverride) == before


def test_a_nurse_id_past_the_database_integer_is_no_such_nurse(any_dash: Dashboard) -> None:
    patient = any_dash.ids["patient"]
    form = {"nurse_id": "2147483648", "role": "backup"}
    response = any_dash.post("coordinator", f"/patients/{patient}/assign", form)
    assert response.status_code == 422
    assert "There is no such nurse" in response.get_data(as_text=True)


def test_an_offered_time_out_of_range_is_refused_and_books_nothing(any_dash: Dashboard) -> None:
    before = any_dash.count(Appointment)
    patient = str(any_dash.ids["patient"])
    for chosen in (
        f"{any_dash.ids['nurse']}/9999-12-31T10:00:00+00:00",
        "2147483648/2030-01-07T15:00:00+00:00",
    ):
        form = {"patient_id": patient, "start_with": chosen}
        response = any_dash.post("coordinator", "/appointments/new", form)
        assert response.status_code == 422, chosen
    assert any_dash.count(Appointment) == before
