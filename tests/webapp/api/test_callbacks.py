"""Callback requests through the API: the coordinators' queue, asking for one, resolving it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from core.models import AuditEvent, CallbackRequest
from tests.webapp.api.conftest import ApiWorld


def callbacks_and_audit(api: ApiWorld) -> tuple[int, int]:
    """What a refused callback write must leave as it was."""
    return api.count(CallbackRequest), api.count(AuditEvent)


def test_a_request_for_a_patient_is_queued_at_their_phone_then_resolved_once(
    api_any_db: ApiWorld,
) -> None:
    api = api_any_db
    body = {"patient_id": api.ids["patient"], "call_id": api.ids["call"], "reason": "Wants a call"}

    asked = api.send("POST", "/callback-requests", "coordinator", body, key="cb-1")
    assert asked.status_code == 201, asked.get_json()
    request = asked.get_json()
    assert (request["phone"], request["status"], request["call_id"]) == (
        "+12025550101",
        "open",
        api.ids["call"],
    )
    coordinator = f"user:{api.ids['coordinator_user']}"
    assert api.audit_trail()[-1] == ("callback.requested", coordinator, request["id"])
    assert api.send("POST", "/callback-requests", "coordinator", body, key="cb-1").get_json() == (
        request
    )
    assert api.count(CallbackRequest) == 1

    queue = api.get("/callback-requests", "admin").get_json()
    assert [r["id"] for r in queue["items"]] == [request["id"]]
    resolved = api.post(f"/callback-requests/{request['id']}/resolve", "admin")
    assert resolved.status_code == 200, resolved.get_json()
    assert resolved.get_json()["resolved_by_user_id"] == api.ids["admin_user"]
    again = api.post(f"/callback-requests/{request['id']}/resolve", "admin")
    assert again.status_code == 409 and again.get_json()["code"] == "invalid_state"
    assert api.get("/callback-requests", "admin").get_json()["items"] == []
    done = api.get("/callback-requests?status=done", "admin").get_json()
    assert [r["status"] for r in done["items"]] == ["done"]
    assert api.audit_trail()[-1][0] == "callback_request.resolved"


def test_a_phone_alone_is_enough_and_is_normalised(api: ApiWorld) -> None:
    asked = api.post("/callback-requests", "admin", {"phone": "(202) 555-0150", "reason": "x"})

    assert asked.status_code == 422  # a national number without its country code is not one
    asked = api.post("/callback-requests", "admin", {"phone": "+1 202 555 0150", "reason": "x"})
    assert asked.status_code == 201 and asked.get_json()["phone"] == "+12025550150"
    assert asked.get_json()["patient_id"] is None


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"reason": "Call me"}, 422, "phone"),
        ({"phone": "+1202", "reason": "Call me"}, 422, "phone"),
        ({"patient_id": 999999, "reason": "Call me"}, 404, None),
        ({"phone": "+12025550150", "call_id": 999999, "reason": "x"}, 404, None),
        ({"phone": "+12025550150", "reason": "  "}, 422, "body.reason"),
        ({"phone": "+12025550150"}, 422, "body.reason"),
    ],
)
def test_a_request_without_someone_to_call_is_refused_and_queues_nothing(
    api: ApiWorld, body: dict[str, Any], status: int, field: str | None
) -> None:
    before = callbacks_and_audit(api)

    response = api.post("/callback-requests", "coordinator", body)

    assert response.status_code == status, response.get_json()
    if field is not None:
        assert response.get_json()["errors"][0]["field"] == field
    assert callbacks_and_audit(api) == before


def test_a_key_reused_a_day_later_is_a_new_request(api: ApiWorld) -> None:
    body = {"phone": "+12025550150", "reason": "Call me"}
    first = api.send("POST", "/callback-requests", "admin", body, key="daily")
    later = api.now + timedelta(hours=24)
    api.app.config["API_CLOCK"] = lambda: later

    again = api.send("POST", "/callback-requests", "admin", body, key="daily")

    assert again.status_code == 201
    assert again.get_json()["id"] != first.get_json()["id"]
    assert api.count(CallbackRequest) == 2
