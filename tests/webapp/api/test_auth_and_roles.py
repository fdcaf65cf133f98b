"""Tokens and roles: anonymous and bad tokens get 401; a nurse's token sees only its own."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.models import ApiToken, Appointment, AuditEvent, User
from tests.webapp.api.conftest import ApiWorld
from webapp import db
from webapp.api.openapi import openapi_path
from webapp.api.registry import REGISTRY, Operation

PROTECTED = [op for op in REGISTRY if op.auth]
# Writes on people, hours, care teams, the waitlist and callbacks; outbound calls; the OpenAI
# check: as in the dashboard, a nurse may not do them (every write is audited, so the counts
# show that nothing was changed).
STAFF_ONLY = [op for op in REGISTRY if op.roles is not None and "nurse" not in op.roles]


def _concrete(op: Operation) -> str:
    path = openapi_path(op).removeprefix("/api/v1")
    path = path.replace("{phone}", "+12025550101")
    return re.sub(r"\{[a-z_]+\}", "1", path)


def _assert_401(response: object) -> None:
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert response.mimetype == "application/problem+json"  # type: ignore[attr-defined]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")  # type: ignore[attr-defined]
    body = response.get_json()  # type: ignore[attr-defined]
    assert body["status"] == 401 and body["code"] == "unauthenticated" and body["detail"]


@pytest.mark.parametrize("op", PROTECTED, ids=lambda op: f"{op.method} {op.rule}")
def test_every_protected_operation_refuses_anonymous_callers(api: ApiWorld, op: Operation) -> None:
    before = api.counts()

    response = api.client.open(f"/api/v1{_concrete(op)}", method=op.method, json={})

    _assert_401(response)
    assert api.counts() == before


@pytest.mark.parametrize("op", STAFF_ONLY, ids=lambda op: f"{op.method} {op.rule}")
def test_a_nurse_token_is_refused_every_staff_operation_and_changes_nothing(
    api: ApiWorld, op: Operation
) -> None:
    before = api.counts()

    response = api.client.open(
        f"/api/v1{_concrete(op)}", method=op.method, json={}, headers=api.headers("nurse")
    )

    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"
    assert api.counts() == before


@pytest.mark.parametrize(
    "header",
    ["Bearer cmx_not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer ", "cmx_token-without-scheme"],
)
def test_bad_tokens_and_schemes_are_401(api: ApiWorld, header: str) -> None:
    _assert_401(api.client.get("/api/v1/nurses", headers={"Authorization": header}))


def test_a_revoked_token_is_401(api: ApiWorld) -> None:
    with api.app.app_context():
        token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == api.ids["admin_user"]))
        assert token is not None
        token.revoked_at = api.now
        db.session.commit()

    _assert_401(api.get("/nurses", "admin"))


def test_a_deactivated_users_token_is_401(api: ApiWorld) -> None:
    with api.app.app_context():
        user = db.session.get(User, api.ids["coordinator_user"])
        assert user is not None
        user.active = False
        db.session.commit()

    _assert_401(api.get("/nurses", "coordinator"))


def test_using_a_token_records_when_it_was_last_used(api: ApiWorld) -> None:
    assert api.get("/nurses", "coordinator").status_code == 200

    with api.app.app_context():
        token = db.session.scalar(
            select(ApiToken).where(ApiToken.user_id == api.ids["coordinator_user"])
        )
        assert token is not None and token.last_used_at == api.now


def test_health_and_documentation_need_no_token(api: ApiWorld) -> None:
    assert api.get("/health", None).get_json()["status"] == "ok"
    assert api.get("/openapi.json", None).status_code == 200
    assert api.get("/docs", None).status_code == 200


# Each: path with {} for the id, the id key a nurse owns, the key of another nurse's record.
OWNED = [
    ("/appointments/{}", "appointment", "foreign_appointment"),
    ("/calls/{}", "call", "foreign_call"),
    ("/calls/{}/transcript", "call", "foreign_call"),
    ("/nurses/{}", "nurse", "other_nurse"),
    ("/nurses/{}/availability", "nurse", "other_nurse"),
    (
        "/nurses/{}/slots?start=2025-03-04T00:00:00Z&end=2025-03-05T00:00:00Z",
        "nurse",
        "other_nurse",
    ),
]


@pytest.mark.parametrize("role", ["admin", "coordinator"])
@pytest.mark.parametrize(("path", "own", "foreign"), OWNED)
def test_staff_roles_see_every_record(
    api: ApiWorld, role: str, path: str, own: str, foreign: str
) -> None:
    for key in (own, foreign):
        assert api.get(path.format(api.ids[key]), role).status_code == 200


@pytest.mark.parametrize(("path", "own", "foreign"), OWNED)
def test_a_nurse_sees_her_own_records_and_gets_404_for_others(
    api: ApiWorld, path: str, own: str, foreign: str
) -> None:
    assert api.get(path.format(api.ids[own]), "nurse").status_code == 200

    response = api.get(path.format(api.ids[foreign]), "nurse")

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_a_nurse_looks_up_only_her_own_patients_by_phone(api: ApiWorld) -> None:
    own = api.get("/patients/by-phone/+12025550101/assigned-nurse", "nurse")
    foreign = api.get("/patients/by-phone/+12025550103/assigned-nurse", "nurse")
    staff = api.get("/patients/by-phone/+12025550103/assigned-nurse", "coordinator")

    assert own.status_code == 200 and own.get_json()["primary"]["id"] == api.ids["nurse"]
    assert foreign.status_code == 404
    assert staff.status_code == 200 and staff.get_json()["primary"]["id"] == api.ids["other_nurse"]


@pytest.mark.parametrize(
    ("path", "owner_field"),
    [("/appointments", "nurse_id"), ("/nurses", "id"), ("/calls", "patient_id")],
)
def test_a_nurses_lists_hold_only_her_own_records(
    api: ApiWorld, path: str, owner_field: str
) -> None:
    staff = api.get(path, "admin").get_json()["items"]
    mine = api.get(path, "nurse").get_json()["items"]

    allowed = {
        "nurse_id": {api.ids["nurse"]},
        "id": {api.ids["nurse"]},
        "patient_id": {api.ids["patient"], api.ids["second_patient"]},
    }[owner_field]
    assert mine and {item[owner_field] for item in mine} <= allowed
    assert len(staff) > len(mine)


def test_a_nurses_transcripts_and_availability_are_her_own(api: ApiWorld) -> None:
    transcripts = api.get("/transcripts", "nurse").get_json()["items"]
    available = api.get("/nurses/available?date=2025-03-04", "nurse").get_json()["items"]

    assert [t["call_id"] for t in transcripts] == [api.ids["call"]]
    assert [a["nurse"]["id"] for a in available] == [api.ids["nurse"]]


@pytest.mark.parametrize("action", ["cancel", "complete", "no-show", "reschedule"])
def test_a_nurse_cannot_change_another_nurses_appointment(api: ApiWorld, action: str) -> None:
    body = {"reason_code": "other"} if action == "cancel" else None
    if action == "reschedule":
        body = {"start": "2025-03-05T10:00:00-05:00"}
    before = api.counts()

    response = api.post(f"/appointments/{api.ids['foreign_appointment']}/{action}", "nurse", body)

    assert response.status_code == 404
    assert api.counts() == before


def test_a_nurse_cannot_book_for_another_nurses_patient_or_with_another_nurse(
    api: ApiWorld,
) -> None:
    start = "2025-03-05T10:00:00-05:00"
    foreign = api.post(
        "/appointments", "nurse", {"patient_id": api.ids["foreign_patient"], "start": start}
    )
    other_nurse = api.post(
        "/appointments",
        "nurse",
        {"patient_id": api.ids["patient"], "start": start, "nurse_id": api.ids["other_nurse"]},
    )

    assert foreign.status_code == 404
    assert other_nurse.status_code == 403
    assert api.count(Appointment) == 2


def test_a_nurse_books_her_own_patient_with_herself(api: ApiWorld) -> None:
    response = api.post(
        "/appointments",
        "nurse",
        {"patient_id": api.ids["patient"], "start": "2025-03-05T10:00:00-05:00"},
    )

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["nurse_id"] == api.ids["nurse"]
    assert response.get_json()["source"] == "api"


@pytest.mark.parametrize("role", ["coordinator", "nurse"])
def test_only_admins_may_check_the_openai_connection(api: ApiWorld, role: str) -> None:
    response = api.get("/openai-check", role)

    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"


def test_nurses_may_not_place_outbound_calls(api: ApiWorld) -> None:
    response = api.post("/calls", "nurse", {"patient_id": api.ids["patient"]})

    assert response.status_code == 403


def test_reading_a_transcript_is_audited_without_its_text(api: ApiWorld) -> None:
    assert api.get(f"/calls/{api.ids['call']}/transcript", "coordinator").status_code == 200

    with api.app.app_context():
        event = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "transcript.viewed")
        )
        assert event is not None
        assert event.entity_id == api.ids["call"]
        assert event.actor_user_id == api.ids["coordinator_user"]
        assert "visit" not in str(event.details)


def test_tokens_of_the_past_do_not_expire_by_time(api: ApiWorld) -> None:
    later = api.now + timedelta(days=400)
    api.app.config["API_CLOCK"] = lambda: later

    assert api.get("/nurses", "coordinator").status_code == 200


def test_a_failed_request_still_records_the_tokens_use(api: ApiWorld) -> None:
    assert api.get("/appointments?page=0", "coordinator").status_code == 422

    with api.app.app_context():
        token = db.session.scalar(
            select(ApiToken).where(ApiToken.user_id == api.ids["coordinator_user"])
        )
        assert token is not None and token.last_used_at == api.now


LISTS = [
    "/nurses",
    "/nurses/available?date=2025-03-04",
    "/appointments",
    "/calls",
    "/transcripts",
]


@pytest.mark.parametrize("role", ["admin", "coordinator", "nurse"])
@pytest.mark.parametrize("path", LISTS)
def test_every_role_may_read_the_lists(api: ApiWorld, role: str, path: str) -> None:
    response = api.get(path, role)

    assert response.status_code == 200
    assert response.get_json()["items"] is not None


@pytest.mark.parametrize("action", ["cancel", "reschedule"])
def test_a_nurse_may_change_her_own_appointment(api: ApiWorld, action: str) -> None:
    body = (
        {"reason_code": "nurse_unavailable"}
        if action == "cancel"
        else {"start": "2025-03-05T10:00:00-05:00"}
    )

    response = api.post(f"/appointments/{api.ids['appointment']}/{action}", "nurse", body)

    assert response.status_code == 200, response.get_json()


def test_a_nurse_schedules_from_her_own_patients_call_only(api: ApiWorld) -> None:
    body = {"start": "2025-03-05T10:00:00-05:00"}

    own = api.post(f"/calls/{api.ids['call']}/schedule", "nurse", body)
    foreign = api.post(f"/calls/{api.ids['foreign_call']}/schedule", "nurse", body)
    unknown_caller = api.post(f"/calls/{api.ids['unknown_call']}/schedule", "nurse", body)

    assert own.status_code == 201, own.get_json()
    assert foreign.status_code == 404
    assert unknown_caller.status_code == 404  # a call with no patient is no nurse's call


def test_an_unlinked_nurse_login_sees_nothing(api: ApiWorld) -> None:
    with api.app.app_context():
        user = db.session.get(User, api.ids["nurse_user"])
        assert user is not None
        user.nurse_id = None
        db.session.commit()

    assert api.get("/appointments", "nurse").get_json()["items"] == []
    assert api.get("/nurses", "nurse").get_json()["items"] == []
    assert api.get(f"/appointments/{api.ids['appointment']}", "nurse").status_code == 404
