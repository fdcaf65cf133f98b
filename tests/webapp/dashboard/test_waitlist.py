"""The waitlist on the dashboard: joining from the patient's page, the list, a held time
accepted or declined on the patient's behalf, leaving, and roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core.db import make_engine, make_session_factory, transaction
from core.models import Appointment, AuditEvent, OfferStatus, WaitlistEntry, WaitlistOffer
from core.services import waitlist
from core.services.booking import free_slots
from tests.webapp.dashboard.conftest import Dashboard


def today() -> str:
    return datetime.now(ZoneInfo("America/New_York")).date().isoformat()


def in_days(days: int) -> str:
    return (datetime.now(ZoneInfo("America/New_York")).date() + timedelta(days=days)).isoformat()


def hold_next_free_time(dash: Dashboard) -> int:
    """Free the nurse's first open visit a week or more ahead; the offer it makes."""
    now = datetime.now(UTC)
    with transaction(make_session_factory(make_engine(dash.url))) as session:
        first = free_slots(
            session,
            dash.ids["nurse"],
            start=now + timedelta(days=7),
            end=now + timedelta(days=14),
            now=now,
        )[0]
        [offer] = waitlist.offer_freed_time(session, dash.ids["nurse"], first.start, first.end, now)
        return offer.id


def test_a_coordinator_puts_a_patient_on_the_waitlist_from_their_page(dash: Dashboard) -> None:
    patient = dash.ids["patient"]
    page = dash.client("coordinator").get(f"/patients/{patient}").get_data(as_text=True)
    assert 'id="waitlist-open"' in page and f'href="/waitlist/join/{patient}"' in page
    form = dash.client("coordinator").get(f"/waitlist/join/{patient}").get_data(as_text=True)
    assert 'id="waitlist-form"' in form

    response = dash.post(
        "coordinator",
        f"/waitlist/join/{patient}",
        {"until_date": in_days(20), "weekdays": ["mon", "tue"], "parts_of_day": ["morning"]},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    [entry] = dash.scalars(select(WaitlistEntry))
    assert (entry.patient_id, entry.weekdays, entry.parts_of_day) == (patient, [0, 1], ["morning"])
    page = dash.client("coordinator").get(f"/patients/{patient}").get_data(as_text=True)
    assert "Waiting since" in page and "Monday, Tuesday; morning" in page
    listed = dash.client("coordinator").get("/waitlist/").get_data(as_text=True)
    assert f'id="waitlist-row-{entry.id}"' in listed


def test_bad_input_shows_every_problem_and_writes_nothing(dash: Dashboard) -> None:
    patient = dash.ids["patient"]
    before = dash.count(WaitlistEntry), dash.count(AuditEvent)
    response = dash.post(
        "coordinator",
        f"/waitlist/join/{patient}",
        {"until_date": "soon", "parts_of_day": ["night"], "weekdays": ["someday"]},
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="until_date-error"' in html
    assert 'id="parts_of_day-error"' in html and 'id="weekdays-error"' in html
    past = dash.post(
        "coordinator",
        f"/waitlist/join/{patient}",
        {"from_date": in_days(-3), "until_date": today()},
    )
    assert past.status_code == 422 and "cannot start in the past" in past.get_data(as_text=True)
    assert (dash.count(WaitlistEntry), dash.count(AuditEvent)) == before


def test_a_held_time_is_accepted_for_the_patient_and_booked(dash: Dashboard) -> None:
    patient = dash.ids["patient"]
    dash.post("coordinator", f"/waitlist/join/{patient}", {"until_date": in_days(30)})
    offer_id = hold_next_free_time(dash)
    listed = dash.client("coordinator").get("/waitlist/").get_data(as_text=True)
    assert f"/waitlist/offers/{offer_id}/accept" in listed
    page = dash.client("coordinator").get(f"/patients/{patient}").get_data(as_text=True)
    assert f'id="offer-{offer_id}"' in page

    before = dash.count(Appointment)
    accepted = dash.post("coordinator", f"/waitlist/offers/{offer_id}/accept")
    assert accepted.status_code == 303
    offer = dash.scalar(select(WaitlistOffer).where(WaitlistOffer.id == offer_id))
    assert offer.status == OfferStatus.ACCEPTED
    assert accepted.headers["Location"].endswith(f"/appointments/{offer.appointment_id}")
    assert dash.count(Appointment) == before + 1
    again = dash.post("coordinator", f"/waitlist/offers/{offer_id}/decline", {"next": "/waitlist/"})
    assert again.status_code == 303
    assert dash.count(Appointment) == before + 1
    closed = dash.client("coordinator").get("/waitlist/?show=closed").get_data(as_text=True)
    assert f"/appointments/{offer.appointment_id}" in closed


def test_declining_and_leaving_the_waitlist(dash: Dashboard) -> None:
    patient = dash.ids["patient"]
    dash.post("coordinator", f"/waitlist/join/{patient}", {"until_date": in_days(30)})
    offer_id = hold_next_free_time(dash)
    declined = dash.post(
        "admin", f"/waitlist/offers/{offer_id}/decline", {"next": f"/patients/{patient}"}
    )
    assert declined.status_code == 303 and declined.headers["Location"].endswith(
        f"/patients/{patient}"
    )
    offer = dash.scalar(select(WaitlistOffer).where(WaitlistOffer.id == offer_id))
    assert offer.status == OfferStatus.DECLINED
    [entry] = dash.scalars(select(WaitlistEntry))
    assert entry.status == "waiting"
    left = dash.post("admin", f"/waitlist/{entry.id}/cancel", {"next": "//elsewhere.example"})
    assert left.headers["Location"].endswith("/waitlist/")
    assert dash.scalar(select(WaitlistEntry.status)) == "cancelled"


def test_only_coordinators_and_admins_see_the_waitlist(dash: Dashboard) -> None:
    assert dash.client("nurse").get("/waitlist/").status_code == 403
    nurse_nav = dash.client("nurse").get("/").get_data(as_text=True)
    assert 'href="/waitlist/"' not in nurse_nav
    assert 'href="/waitlist/"' in dash.client("coordinator").get("/").get_data(as_text=True)
    refused = dash.post("nurse", f"/waitlist/join/{dash.ids['patient']}", {"until_date": today()})
    assert refused.status_code == 403
    assert dash.count(WaitlistEntry) == 0


def test_coordinators_see_the_waitlist_in_the_audit_trail(dash: Dashboard) -> None:
    dash.post("coordinator", f"/waitlist/join/{dash.ids['patient']}", {"until_date": in_days(9)})
    trail = dash.client("coordinator").get("/audit/?entity_type=waitlist_entry")
    assert trail.status_code == 200
    assert "waitlist.joined" in trail.get_data(as_text=True)


def test_waiting_to_bring_a_visit_earlier_from_its_page(dash: Dashboard) -> None:
    patient = dash.ids["patient"]
    visit = dash.scalar(
        select(Appointment)
        .where(Appointment.patient_id == patient, Appointment.status == "scheduled")
        .where(Appointment.start_at > datetime.now(UTC))
        .order_by(Appointment.start_at)
    )
    page = dash.client("coordinator").get(f"/appointments/{visit.id}").get_data(as_text=True)
    link = f"/waitlist/join/{patient}?appointment_id={visit.id}"
    assert f'href="{link}"' in page
    form = dash.client("coordinator").get(link).get_data(as_text=True)
    assert f'<option value="{visit.id}" selected' in form
    visit_day = visit.start_at.astimezone(ZoneInfo("America/New_York")).date()
    too_late = dash.post(
        "coordinator",
        f"/waitlist/join/{patient}",
        {"until_date": (visit_day + timedelta(days=1)).isoformat(), "appointment_id": visit.id},
    )
    assert too_late.status_code == 422 and 'id="until_date-error"' in too_late.get_data(
        as_text=True
    )
    joined = dash.post(
        "coordinator",
        f"/waitlist/join/{patient}",
        {"until_date": visit_day.isoformat(), "appointment_id": visit.id},
    )
    assert joined.status_code == 303
    [entry] = dash.scalars(select(WaitlistEntry))
    assert entry.appointment_id == visit.id
    shown = dash.client("coordinator").get(f"/patients/{patient}").get_data(as_text=True)
    assert "Accepting moves their visit of" in shown


def test_a_visit_to_bring_earlier_must_be_the_patients_own_and_ahead(dash: Dashboard) -> None:
    patient = dash.ids["patient"]
    someone_elses = dash.scalar(
        select(Appointment.id).where(Appointment.patient_id != patient).limit(1)
    )
    for raw in (str(someone_elses), "0", "x", "9" * 20):
        response = dash.client("coordinator").get(f"/waitlist/join/{patient}?appointment_id={raw}")
        assert 400 <= response.status_code < 500, (raw, response.status_code)
