"""Recurring visits through the API: booked all or free-only, read, cancelled, by role."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from core.models import Appointment, AppointmentSeries
from tests.webapp.api.conftest import ApiWorld

TAKEN = "2025-03-04T10:00:00-05:00"  # the world's own appointment with nurse 1, a Tuesday
FREE = "2025-03-04T11:00:00-05:00"


def rule(api: ApiWorld, **changes: Any) -> dict[str, Any]:
    """Tuesdays and Thursdays at 11:00 New York, four visits, for the world's patient."""
    body: dict[str, Any] = {
        "patient_id": api.ids["patient"],
        "nurse_id": api.ids["nurse"],
        "start": FREE,
        "weekdays": ["tue", "thu"],
        "interval_weeks": 1,
        "count": 4,
    }
    body.update(changes)
    return body


def test_a_free_series_is_201_with_every_visit_and_can_be_read_back(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    before = api.count(Appointment)

    response = api.post("/appointment-series", "coordinator", rule(api, kind="video"))

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["weekdays"] == ["tue", "thu"] and body["time"] == "11:00"
    assert [a["start_local"] for a in body["appointments"]] == [
        "2025-03-04T11:00:00-05:00",
        "2025-03-06T11:00:00-05:00",
        "2025-03-11T11:00:00-04:00",  # daylight time: the wall clock stays at 11:00
        "2025-03-13T11:00:00-04:00",
    ]
    assert {a["series_id"] for a in body["appointments"]} == {body["id"]}
    assert {a["kind"] for a in body["appointments"]} == {"video"}
    assert body["refused"] == []
    assert api.count(Appointment) == before + 4

    read = api.get(f"/appointment-series/{body['id']}", "coordinator")
    assert read.status_code == 200
    assert [a["id"] for a in read.get_json()["appointments"]] == [
        a["id"] for a in body["appointments"]
    ]
    one = api.get(f"/appointments/{body['appointments'][0]['id']}").get_json()
    assert (one["series_id"], one["series_index"]) == (body["id"], 0)


def test_a_refused_visit_is_409_listing_refused_and_free_and_books_nothing(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    before = api.counts()

    response = api.post("/appointment-series", "admin", rule(api, start=TAKEN))

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "series_refused"
    assert [(o["index"], o["reason"]) for o in problem["refused"]] == [(0, "conflict")]
    assert problem["refused"][0]["alternatives"]
    assert [o["index"] for o in problem["free"]] == [1, 2, 3]
    assert api.counts() == before


def test_free_only_books_the_free_visits_and_lists_the_refused(api: ApiWorld) -> None:
    response = api.post("/appointment-series", "admin", rule(api, start=TAKEN, book="free_only"))

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert [a["series_index"] for a in body["appointments"]] == [1, 2, 3]
    assert [o["index"] for o in body["refused"]] == [0]
    assert body["refused"][0]["message"]


def test_a_retried_key_returns_the_first_series(api: ApiWorld) -> None:
    headers = {"Idempotency-Key": "series-1"}
    first = api.post("/appointment-series", "admin", rule(api), headers=headers)
    again = api.post("/appointment-series", "admin", rule(api), headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert api.count(AppointmentSeries) == 1


def test_cancelling_one_visit_then_this_and_following(api: ApiWorld) -> None:
    series = api.post("/appointment-series", "admin", rule(api)).get_json()
    visits = [a["id"] for a in series["appointments"]]
    path = f"/appointment-series/{series['id']}/cancel"

    one = api.post(path, "coordinator", {"appointment_id": visits[1], "reason_code": "clinical"})
    assert one.status_code == 200, one.get_json()
    statuses = [a["status"] for a in one.get_json()["appointments"]]
    assert statuses == ["scheduled", "cancelled", "scheduled", "scheduled"]

    rest = api.post(
        path,
        "coordinator",
        {"appointment_id": visits[2], "scope": "following", "reason_code": "patient_request"},
    )
    body = rest.get_json()
    assert [a["status"] for a in body["appointments"]] == [
        "scheduled",
        "cancelled",
        "cancelled",
        "cancelled",
    ]
    assert body["ends_on"] == "2025-03-10"

    again = api.post(path, "coordinator", {"appointment_id": visits[2], "reason_code": "other"})
    assert again.status_code == 409


def test_a_moved_visit_stays_in_its_series(api: ApiWorld) -> None:
    series = api.post("/appointment-series", "admin", rule(api)).get_json()
    visit = series["appointments"][1]["id"]

    moved = api.post(
        f"/appointments/{visit}/reschedule", "admin", {"start": "2025-03-07T14:00:00-05:00"}
    )

    assert moved.status_code == 200, moved.get_json()
    assert (moved.get_json()["series_id"], moved.get_json()["series_index"]) == (series["id"], 1)
    read = api.get(f"/appointment-series/{series['id']}").get_json()
    assert len(read["appointments"]) == 5  # the moved visit's old row, cancelled, is kept


def test_a_visit_of_another_series_or_none_is_404(api: ApiWorld) -> None:
    series = api.post("/appointment-series", "admin", rule(api)).get_json()

    response = api.post(
        f"/appointment-series/{series['id']}/cancel",
        "admin",
        {"appointment_id": api.ids["appointment"], "reason_code": "other"},
    )

    assert response.status_code == 404
    assert api.get("/appointment-series/999").status_code == 404


def test_a_nurse_books_her_own_series_and_sees_no_other_nurses(api: ApiWorld) -> None:
    own = api.post("/appointment-series", "nurse", rule(api))
    assert own.status_code == 201, own.get_json()
    series_id = own.get_json()["id"]

    assert api.get(f"/appointment-series/{series_id}", "other_nurse").status_code == 404
    other = api.post(
        "/appointment-series",
        "other_nurse",
        rule(api, nurse_id=api.ids["nurse"]),
    )
    assert other.status_code in (403, 404)
    foreign = api.post(
        "/appointment-series", "nurse", rule(api, patient_id=api.ids["foreign_patient"])
    )
    assert foreign.status_code == 404
    assert api.post("/appointment-series", None, rule(api)).status_code == 401


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"weekdays": ["xx"]}, "body.weekdays.0"),
        ({"weekdays": []}, "body.weekdays"),
        ({"until": "2025-04-01"}, "body.count"),  # both count and until
        ({"count": 105}, "body.count"),
        ({"interval_weeks": 0}, "body.interval_weeks"),
        ({"start": "2025-03-04T11:00:00"}, "body.start"),  # no offset
        ({"book": "some"}, "body.book"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_books_nothing(
    api: ApiWorld, changes: dict[str, Any], field: str
) -> None:
    before = api.counts()

    response = api.post("/appointment-series", "admin", rule(api, **changes))

    assert response.status_code == 422, response.get_json()
    assert field in [e["field"] for e in response.get_json()["errors"]]
    assert api.counts() == before


def test_a_first_visit_off_the_chosen_weekdays_is_422(api: ApiWorld) -> None:
    response = api.post("/appointment-series", "admin", rule(api, weekdays=["mon"]))

    assert response.status_code == 422
    assert "Tuesday" in response.get_json()["detail"]


def test_a_bad_cancel_scope_is_422(api: ApiWorld) -> None:
    series = api.post("/appointment-series", "admin", rule(api)).get_json()
    response = api.post(
        f"/appointment-series/{series['id']}/cancel",
        "admin",
        {
            "appointment_id": series["appointments"][0]["id"],
            "scope": "everything",
            "reason_code": "other",
        },
    )
    assert response.status_code == 422


def test_moving_one_visit_then_this_and_following(api_any_db: ApiWorld) -> None:
    api = api_any_db
    series = api.post("/appointment-series", "coordinator", rule(api)).get_json()
    visits = [a["id"] for a in series["appointments"]]

    one = api.post(
        f"/appointment-series/{series['id']}/move",
        "coordinator",
        {"appointment_id": visits[0], "start": "2025-03-04T14:00:00-05:00"},
    )
    assert one.status_code == 200, one.get_json()
    kept = [a for a in one.get_json()["appointments"] if a["status"] == "scheduled"]
    assert kept[0]["start_local"] == "2025-03-04T14:00:00-05:00"
    assert {a["series_id"] for a in kept} == {series["id"]}

    # Thursday 6 March and after, a day later at 09:30: Thursdays become Fridays, Tuesdays
    # Wednesdays, and the wall-clock time holds across the change to daylight time.
    following = api.post(
        f"/appointment-series/{series['id']}/move",
        "coordinator",
        {"appointment_id": visits[1], "scope": "following", "start": "2025-03-07T09:30:00-05:00"},
    )
    assert following.status_code == 200, following.get_json()
    body = following.get_json()
    assert body["id"] != series["id"]
    assert body["weekdays"] == ["wed", "fri"] and body["time"] == "09:30"
    assert [a["start_local"] for a in body["appointments"]] == [
        "2025-03-07T09:30:00-05:00",
        "2025-03-12T09:30:00-04:00",
        "2025-03-14T09:30:00-04:00",
    ]
    old = api.get(f"/appointment-series/{series['id']}", "coordinator").get_json()
    assert old["ends_on"] == "2025-03-05"


def test_moving_following_onto_a_taken_time_is_409_and_moves_nothing(api: ApiWorld) -> None:
    series = api.post("/appointment-series", "coordinator", rule(api)).get_json()
    first = series["appointments"][0]["id"]
    before = api.counts()
    # An hour earlier: Tuesday 4 March at 10:00 is the world's own appointment.
    refused = api.post(
        f"/appointment-series/{series['id']}/move",
        "coordinator",
        {"appointment_id": first, "scope": "following", "start": "2025-03-04T10:00:00-05:00"},
    )
    assert refused.status_code == 409
    problem = refused.get_json()
    assert problem["code"] == "series_move_refused"
    assert [(o["index"], o["reason"]) for o in problem["refused"]] == [(0, "conflict")]
    assert problem["refused"][0]["alternatives"]
    assert [o["index"] for o in problem["free"]] == [1, 2, 3]
    assert api.counts() == before
    bad = api.post(
        f"/appointment-series/{series['id']}/move",
        "coordinator",
        {"appointment_id": first, "scope": "all", "start": "2025-03-04T10:00:00-05:00"},
    )
    assert bad.status_code == 422 and api.counts() == before


def test_an_offered_alternative_or_a_skip_books_the_series_whole(api_any_db: ApiWorld) -> None:
    api = api_any_db
    refused = api.post("/appointment-series", "coordinator", rule(api, start=TAKEN)).get_json()
    alternative = refused["refused"][0]["alternatives"][0]["start"]
    before = api.count(Appointment)

    for bad in (
        {"moves": [{"index": 7, "start": alternative}]},
        {"moves": [{"index": 0, "start": alternative}, {"index": 0, "start": alternative}]},
        {"skip": [-1]},
        {"skip": [4]},
    ):
        response = api.post("/appointment-series", "coordinator", rule(api, start=TAKEN, **bad))
        assert response.status_code == 422, (bad, response.get_json())
    assert api.count(Appointment) == before

    moved = api.post(
        "/appointment-series",
        "coordinator",
        rule(api, start=TAKEN, moves=[{"index": 0, "start": alternative}]),
    )
    assert moved.status_code == 201, moved.get_json()
    starts = [datetime.fromisoformat(a["start"]) for a in moved.get_json()["appointments"]]
    assert len(starts) == 4 and starts[0] == datetime.fromisoformat(alternative)

    skipped = api.post(
        "/appointment-series", "coordinator", rule(api, start=TAKEN, count=5, skip=[0, 1, 2, 3])
    )
    assert skipped.status_code == 201, skipped.get_json()
    assert [a["series_index"] for a in skipped.get_json()["appointments"]] == [4]


def test_a_series_past_the_horizon_books_whole_with_a_reason(api: ApiWorld) -> None:
    long = rule(api, count=20)  # ten weeks: the last visits are past the 60-day horizon
    refused = api.post("/appointment-series", "coordinator", long)
    assert refused.status_code == 409
    assert {o["reason"] for o in refused.get_json()["refused"]} == {"beyond_horizon"}
    nurse = api.post("/appointment-series", "nurse", {**long, "override_reason": "Care plan"})
    assert nurse.status_code == 403
    booked = api.post("/appointment-series", "coordinator", {**long, "override_reason": "Plan"})
    assert booked.status_code == 201, booked.get_json()
    assert len(booked.get_json()["appointments"]) == 20
