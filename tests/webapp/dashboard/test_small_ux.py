"""Small things users meet on every page: search, filters, the nav, messages, dates."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core.db import make_engine, make_session_factory, transaction
from core.models import Appointment
from core.services.common import Actor
from core.services.people import update_nurse
from tests.webapp.dashboard.conftest import Dashboard
from tests.webapp.dashboard.test_nurses import NEW_NURSE

HX = {"HX-Request": "true"}


def _names(html: str) -> list[str]:
    return re.findall(r'id="patient-row-\d+"><td><a href="[^"]+">([^<]+)</a>', html)


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("555-0103", ["Robert Brown"]),
        ("(202) 555 0103", ["Robert Brown"]),
        ("+1-202-555-0103", ["Robert Brown"]),
        ("Brown Robert", ["Robert Brown"]),
        ("brown, rob", ["Robert Brown"]),
        ("Robert Brown", ["Robert Brown"]),
        ("Brown Sarah", []),
        ("50%", []),
    ],
)
def test_patient_search_finds_phone_fragments_and_names_in_either_order(
    any_dash: Dashboard, query: str, found: list[str]
) -> None:
    client = any_dash.client("coordinator")
    html = client.get("/patients/", query_string={"q": query}, headers=HX).get_data(as_text=True)
    assert _names(html) == found


def test_a_from_date_after_the_to_date_says_so(any_dash: Dashboard) -> None:
    client = any_dash.client("coordinator")
    response = client.get("/appointments/", query_string={"from": "2026-12-09", "to": "2026-12-01"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "is before “From” (Wed 9 Dec" in html
    assert 'id="appointment-row-' in html  # the list is still there, without the dates


def test_the_nav_marks_the_current_page(dash: Dashboard) -> None:
    coordinator = dash.client("coordinator")
    for path, label in [
        ("/patients/", "Patients"),
        (f"/patients/{dash.ids['patient']}", "Patients"),
        (f"/nurses/{dash.ids['nurse']}/calendar", "Nurses"),
        ("/", "Home"),
    ]:
        html = coordinator.get(path).get_data(as_text=True)
        current = re.findall(r'<a href="[^"]+" aria-current="page">([^<]+)</a>', html)
        assert current == [label], path
    html = dash.client("nurse").get("/my-schedule").get_data(as_text=True)
    assert re.findall(r'aria-current="page">([^<]+)</a>', html) == ["My schedule"]


def test_a_message_is_shown_once_and_cleared_by_the_next_action(dash: Dashboard) -> None:
    coordinator = dash.client("coordinator")
    added = dash.post(
        "coordinator",
        "/nurses/new",
        NEW_NURSE,
        headers=HX,
    )
    page = coordinator.get(added.headers["HX-Redirect"]).get_data(as_text=True)
    assert "Nurse added." in page
    nurse_path = added.headers["HX-Redirect"]
    day = (date.today() + timedelta(days=30)).isoformat()
    action = dash.post(
        "coordinator",
        f"{nurse_path}/overrides",
        {"kind": "time_off", "start_date": day, "reason": "Training"},
        headers=HX,
    )
    html = action.get_data(as_text=True)
    assert action.status_code == 200
    flashes = re.search(
        r'<div class="flashes" id="flashes" hx-swap-oob="true">(.*?)</div>', html, re.S
    )
    assert flashes is not None and "flash" not in flashes.group(1)
    assert "Nurse added." not in coordinator.get(nurse_path).get_data(as_text=True)


def test_time_off_dates_read_like_the_rest_and_times_name_their_zone(dash: Dashboard) -> None:
    nurse_path = f"/nurses/{dash.ids['nurse']}"
    response = dash.post(
        "coordinator",
        f"{nurse_path}/overrides",
        {
            "kind": "time_off",
            "start_date": "2030-01-09",
            "end_date": "2030-01-10",
            "start_time": "09:00",
            "end_time": "12:00",
        },
        headers=HX,
    )
    html = response.get_data(as_text=True)
    assert "Wed 9 Jan 2030 to Thu 10 Jan 2030" in html
    assert "2030-01-09" not in html.replace('value="2030-01-09"', "")
    assert '09:00\u201312:00 <span class="muted">(America/New_York)</span>' in html


def _move_nurse_to(dash: Dashboard, nurse_id: int, zone_name: str) -> None:
    engine = make_engine(dash.url)
    try:
        with transaction(make_session_factory(engine)) as session:
            update_nurse(
                session, nurse_id, actor=Actor.cli(), now=datetime.now(UTC), time_zone=zone_name
            )
    finally:
        engine.dispose()


def test_a_typed_time_is_read_in_the_zone_patient_and_nurse_share_and_says_so(
    any_dash: Dashboard,
) -> None:
    davis, garcia = any_dash.ids["other_patient"], any_dash.ids["other_nurse"]
    client = any_dash.client("coordinator")
    before = client.get("/appointments/new", query_string={"patient_id": davis})
    assert "Or type a time in <strong>America/New_York</strong></legend>" in before.get_data(
        as_text=True
    )

    _move_nurse_to(any_dash, garcia, "America/Los_Angeles")  # Emily Davis lives there too
    picked = client.get("/appointments/slots", query_string={"patient_id": davis}, headers=HX)
    assert re.search(
        r'<legend id="typed-zone" hx-swap-oob="true">Or type a time in '
        r"<strong>America/Los_Angeles</strong> <small[^>]*>\(the patient's and nurse's zone",
        picked.get_data(as_text=True),
    )
    day = date.today() + timedelta(days=14)
    day += timedelta(days=(7 - day.weekday()) % 7)  # a Monday: inside her hours
    booked = any_dash.post(
        "coordinator",
        "/appointments/new",
        {"patient_id": davis, "kind": "phone", "start_local": f"{day.isoformat()}T10:00"},
    )
    assert booked.status_code == 303, booked.get_data(as_text=True)
    start = any_dash.scalar(
        select(Appointment.start_at)
        .where(Appointment.patient_id == davis)
        .order_by(Appointment.id.desc())
    )
    local = start.astimezone(ZoneInfo("America/Los_Angeles"))
    assert (local.date(), local.hour, local.minute) == (day, 10, 0)
