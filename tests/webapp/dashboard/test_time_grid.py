"""Time grids, the team day board, booking from a free time, Move, and the route sheet."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from core.db import make_engine
from core.models import Appointment, AuditEvent, Nurse
from tests.webapp.dashboard.conftest import Dashboard
from webapp.dashboard.grid import placement_css

NY = ZoneInfo("America/New_York")
STYLESHEET = Path(__file__).resolve().parents[3] / "static" / "app.css"
FREE_LINK = re.compile(r'class="gr-free [^"]*" href="([^"]+)"[^>]*><span>Book (\d\d:\d\d)</span>')


def _tuesday() -> date:
    """A Tuesday two to three weeks ahead: inside every demo nurse's horizon, past notice."""
    day = datetime.now(NY).date() + timedelta(days=14)
    return day + timedelta(days=(1 - day.weekday()) % 7)


def _add_visit(
    dash: Dashboard,
    start: datetime,
    *,
    nurse: str = "nurse",
    kind: str = "phone",
    reason: str = "",
    status: str = "scheduled",
) -> int:
    engine = make_engine(dash.url)
    try:
        with engine.begin() as connection:
            return int(
                connection.execute(
                    insert(Appointment)
                    .values(
                        nurse_id=dash.ids[nurse],
                        patient_id=dash.ids["patient" if nurse == "nurse" else "other_patient"],
                        start_at=start,
                        end_at=start + timedelta(minutes=30),
                        status=status,
                        kind=kind,
                        reason=reason,
                        source="dashboard",
                        created_by="test",
                        created_at=datetime.now(UTC),
                        sequence=0,
                    )
                    .returning(Appointment.id)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _at(day: date, hour: int, minute: int = 0, tz: ZoneInfo = NY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)


# ------------------------------------------------------------------ pages and roles


@pytest.mark.parametrize("role", ["admin", "coordinator"])
def test_staff_see_a_nurses_week_grid_and_the_team_day(dash: Dashboard, role: str) -> None:
    client = dash.client(role)
    page = client.get(f"/nurses/{dash.ids['nurse']}/grid").get_data(as_text=True)
    assert 'id="time-grid"' in page and "times in America/New_York" in page
    assert page.count('class="gr-head ') == 7
    board = client.get("/team-day")
    assert board.status_code == 200
    assert "Dr. Alice Wilson" in board.get_data(as_text=True)


def test_a_nurse_sees_her_own_grid_only(dash: Dashboard) -> None:
    tuesday = _tuesday()
    mine = _add_visit(dash, _at(tuesday, 10))
    theirs = _add_visit(dash, _at(tuesday, 11), nurse="other_nurse")
    nurse = dash.client("nurse")
    page = nurse.get(f"/my-schedule/grid?week={tuesday}").get_data(as_text=True)
    assert f'id="grid-visit-{mine}"' in page and f'id="grid-visit-{theirs}"' not in page
    # Neither booking links nor Move: a nurse does not book or move visits.
    assert "gr-free" not in page and "gr-move" not in page and "data-move" not in page
    assert nurse.get(f"/nurses/{dash.ids['other_nurse']}/grid").status_code == 403
    assert nurse.get(f"/nurses/{dash.ids['nurse']}/grid").status_code == 403
    assert nurse.get("/team-day").status_code == 403
    assert dash.client("coordinator").get("/my-schedule/grid").status_code == 403


def test_the_grid_draws_visits_where_they_are_in_the_chosen_zone(dash: Dashboard) -> None:
    tuesday = _tuesday()
    visit = _add_visit(dash, _at(tuesday, 10))
    cancelled = _add_visit(dash, _at(tuesday, 12), status="cancelled")
    client = dash.client("coordinator")
    url = f"/nurses/{dash.ids['nurse']}/grid?week={tuesday}"
    ny = client.get(url).get_data(as_text=True)
    block = re.search(rf'<div class="(gr-visit [^"]+)" id="grid-visit-{visit}"', ny)
    assert block is not None
    # 07:00 is line 2: 10:00 is three hours (12 rows) later; Tuesday is the second day column.
    assert block.group(1) == "gr-visit scheduled gr-c3 gr-r14 gr-s2"
    assert "10:00\u201310:30" in ny
    assert f'id="grid-visit-{cancelled}"' not in ny  # a cancelled visit holds no time
    move = f"/appointments/{visit}/reschedule?day={tuesday}"
    assert f'class="gr-move" href="{move}"' in ny
    # Dragging it posts to the same reschedule form (static/app.js).
    assert f'draggable="true" data-move="/appointments/{visit}/reschedule"' in ny

    la = client.get(url + "&tz=America/Los_Angeles").get_data(as_text=True)
    assert "times in America/Los_Angeles" in la and "07:00\u201307:30" in la
    # The zone switch is a select offering the nurse's zone, the viewer's and common ones.
    assert '<option value="America/Los_Angeles" selected>' in la

    day = client.get(f"/nurses/{dash.ids['nurse']}/grid?day={tuesday}")
    assert day.get_data(as_text=True).count('class="gr-head ') == 1


def test_an_htmx_request_gets_the_grid_alone(dash: Dashboard) -> None:
    response = dash.client("coordinator").get(
        f"/nurses/{dash.ids['nurse']}/grid?week={_tuesday()}", headers={"HX-Request": "true"}
    )
    text = response.get_data(as_text=True)
    assert text.lstrip().startswith('<section id="time-grid"') and "<nav" in text
    assert "<html" not in text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("tz=Mars/Olympus_Mons", "Unknown time zone"),
        ("week=2026-13-40", "Week must be a date"),
        ("day=9999-12-31", "Day must be between"),
    ],
)
def test_bad_grid_parameters_are_refused_with_a_message(
    dash: Dashboard, query: str, message: str
) -> None:
    client = dash.client("coordinator")
    for path in (f"/nurses/{dash.ids['nurse']}/grid", "/team-day"):
        response = client.get(f"{path}?{query}")
        if "week" in query and path == "/team-day":
            continue  # the board takes a day, not a week
        assert response.status_code == 400, path
        assert message in html.unescape(response.get_data(as_text=True))
    assert client.get(f"/nurses/{2**31}/grid").status_code == 404
    too_long = client.get("/team-day?specialization=" + "x" * 101)
    assert too_long.status_code == 400


# ------------------------------------------------------------------ team board


def test_the_team_board_filters_by_specialisation(dash: Dashboard) -> None:
    client = dash.client("coordinator")
    everyone = client.get("/team-day").get_data(as_text=True)
    assert everyone.count('class="gr-head ') == 5  # the five demo nurses
    cardiology = client.get("/team-day?specialization=cardiology").get_data(as_text=True)
    assert cardiology.count('class="gr-head ') == 1 and "Michael Chen" in cardiology
    nobody = client.get("/team-day?specialization=Dermatology").get_data(as_text=True)
    assert "No active nurse with the specialisation “Dermatology”" in nobody


def test_the_team_board_shows_twenty_nurses_a_page(dash: Dashboard) -> None:
    engine = make_engine(dash.url)
    with engine.begin() as connection:
        for n in range(18):
            connection.execute(
                insert(Nurse).values(
                    first_name=f"Extra{n:02d}",
                    last_name="Zulu",
                    time_zone="America/Chicago",
                    specializations=["General Care"],
                    created_at=datetime.now(UTC),
                )
            )
    engine.dispose()
    client = dash.client("coordinator")
    first = client.get("/team-day").get_data(as_text=True)
    assert first.count('class="gr-head ') == 20
    assert "Nurses 1\u201320 of 23 (20 to a page)" in first and "Next nurses" in first
    second = client.get("/team-day?page=2").get_data(as_text=True)
    assert second.count('class="gr-head ') == 3 and "Previous nurses" in second


# ------------------------------------------------------------------ booking and moving


def test_a_free_time_opens_the_booking_form_with_nurse_and_start_and_books_it(
    dash: Dashboard,
) -> None:
    tuesday = _tuesday()
    client = dash.client("coordinator")
    page = client.get(f"/nurses/{dash.ids['nurse']}/grid?day={tuesday}").get_data(as_text=True)
    links = {shown: html.unescape(href) for href, shown in FREE_LINK.findall(page)}
    assert "08:45" not in links and "16:45" not in links  # before hours; would run past them
    link = links["09:00"]
    query = parse_qs(urlsplit(link).query)
    assert query["nurse_id"] == [str(dash.ids["nurse"])] and query["day"] == [str(tuesday)]
    assert datetime.fromisoformat(query["at"][0]) == _at(tuesday, 9)

    form = client.get(link).get_data(as_text=True)
    assert 'id="chosen-time"' in form and "with Dr. Alice Wilson" in form
    button = re.search(r'name="start_with" value="([^"]+)" id="book-chosen"', form)
    assert button is not None
    response = dash.post(
        "coordinator",
        "/appointments/new",
        {
            "patient_id": dash.ids["patient"],
            "kind": "phone",
            "reason": "Check-in",
            "nurse_id": query["nurse_id"][0],
            "at": query["at"][0],
            "start_with": html.unescape(button.group(1)),
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    booked = dash.scalar(select(Appointment).where(Appointment.reason == "Check-in"))
    assert booked.nurse_id == dash.ids["nurse"] and booked.start_at == _at(tuesday, 9)
    after = client.get(f"/nurses/{dash.ids['nurse']}/grid?day={tuesday}").get_data(as_text=True)
    assert f'id="grid-visit-{booked.id}"' in after
    assert "Book 09:00" not in after  # taken now


def test_a_chosen_time_for_a_patient_the_nurse_does_not_care_for_is_refused(
    dash: Dashboard,
) -> None:
    start = _at(_tuesday(), 9).isoformat()
    response = dash.post(
        "coordinator",
        "/appointments/new",
        {
            "patient_id": dash.ids["other_patient"],  # Garcia's patient, not Wilson's
            "kind": "phone",
            "nurse_id": dash.ids["nurse"],
            "at": start,
            "start_with": f"{dash.ids['nurse']}/{start}",
        },
    )
    assert response.status_code == 422
    text = html.unescape(response.get_data(as_text=True))
    assert "is not assigned to this patient" in text and 'id="chosen-time"' in text
    assert dash.count(Appointment, Appointment.start_at == _at(_tuesday(), 9)) == 0


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("nurse_id=1&at=tomorrow", 400),
        ("nurse_id=1&at=2026-12-08T09:00", 400),  # no offset: which 09:00?
        ("nurse_id=1", 400),
        ("at=2026-12-08T09:00:00%2B00:00", 400),
        ("nurse_id=1&at=9999-12-31T09:00:00%2B00:00", 400),
        (f"nurse_id={2**31}&at=2026-12-08T09:00:00%2B00:00", 400),
        ("nurse_id=999999&at=2026-12-08T09:00:00%2B00:00", 404),
    ],
)
def test_a_bad_booking_prefill_is_refused(dash: Dashboard, query: str, status: int) -> None:
    assert dash.client("coordinator").get(f"/appointments/new?{query}").status_code == status


# ------------------------------------------------------------------ route sheet


def test_the_route_sheet_lists_the_day_in_order_and_its_csv_is_a_private_download(
    dash: Dashboard,
) -> None:
    tuesday = _tuesday()
    late = _add_visit(dash, _at(tuesday, 14), kind="home_visit", reason="Wound care")
    early = _add_visit(dash, _at(tuesday, 9, 30), reason='=HYPERLINK("x")')
    client = dash.client("coordinator")
    url = f"/nurses/{dash.ids['nurse']}/route-sheet?day={tuesday}"
    page = client.get(url).get_data(as_text=True)
    assert page.index(f'id="stop-{early}"') < page.index(f'id="stop-{late}"')
    assert "412 Maple Avenue, Arlington, VA 22201" in page and "Wound care" in page

    response = client.get(f"/nurses/{dash.ids['nurse']}/route-sheet.csv?day={tuesday}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="route-sheet-nurse-{dash.ids["nurse"]}-{tuesday}.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["Time", "Minutes", "Patient", "Address", "Phone", "Kind", "Reason"]
    assert [r[0][:5] for r in rows[1:]] == ["09:30", "14:00"]
    assert rows[1][2] == "John Smith" and rows[1][4] == "+12025550101"
    assert rows[1][6] == '\'=HYPERLINK("x")'  # never run as a formula by a spreadsheet
    assert rows[2][1:4] == ["30", "John Smith", "412 Maple Avenue, Arlington, VA 22201"]
    assert rows[2][5:] == ["Home visit", "Wound care"]

    events = dash.scalars(select(AuditEvent).where(AuditEvent.action.like("route_sheet.%")))
    assert [e.action for e in events] == ["route_sheet.viewed", "route_sheet.exported"]
    assert events[1].entity_id == dash.ids["nurse"]
    assert events[1].details["appointment_ids"] == [early, late]


def test_a_nurse_prints_her_own_route_sheet_but_no_one_elses(dash: Dashboard) -> None:
    nurse = dash.client("nurse")
    assert nurse.get(f"/nurses/{dash.ids['nurse']}/route-sheet").status_code == 200
    assert nurse.get(f"/nurses/{dash.ids['other_nurse']}/route-sheet").status_code == 404
    assert nurse.get(f"/nurses/{dash.ids['other_nurse']}/route-sheet.csv").status_code == 404
    assert dash.count(AuditEvent, AuditEvent.action == "route_sheet.exported") == 0


# ------------------------------------------------------------------ both databases, styles


def test_grid_and_board_on_each_database(any_dash: Dashboard) -> None:
    tuesday = _tuesday()
    visit = _add_visit(any_dash, _at(tuesday, 10))
    client = any_dash.client("coordinator")
    page = client.get(f"/nurses/{any_dash.ids['nurse']}/grid?week={tuesday}")
    assert f'id="grid-visit-{visit}"' in page.get_data(as_text=True)
    board = client.get(f"/team-day?day={tuesday}&specialization=General+Care")
    text = board.get_data(as_text=True)
    assert text.count('class="gr-head ') == 1 and f'id="grid-visit-{visit}"' in text


def test_the_stylesheet_has_every_placement_class_the_grid_uses() -> None:
    assert placement_css() in STYLESHEET.read_text()


def test_the_nurse_pages_link_to_the_grid_and_keep_their_lists(dash: Dashboard) -> None:
    nurse_id = dash.ids["nurse"]
    shown = dash.client("coordinator").get(f"/nurses/{nurse_id}").get_data(as_text=True)
    assert f'href="/nurses/{nurse_id}/grid" id="nurse-time-grid"' in shown
    mine = dash.client("nurse").get("/my-schedule").get_data(as_text=True)
    assert 'href="/my-schedule/grid" id="my-time-grid"' in mine and 'id="calendar"' in mine
    nav = dash.client("coordinator").get("/").get_data(as_text=True)
    assert '<a href="/team-day">Team day</a>' in nav
    assert "/team-day" not in dash.client("nurse").get("/").get_data(as_text=True)
