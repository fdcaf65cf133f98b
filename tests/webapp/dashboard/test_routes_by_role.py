"""Every dashboard route, for every role: allowed, forbidden, hidden (404) or sent to sign in."""

from __future__ import annotations

import pytest

from tests.webapp.dashboard.conftest import Dashboard

ROLES = ("admin", "coordinator", "nurse", None)
OK, FORBIDDEN, MISSING, LOGIN, REDIRECT = 200, 403, 404, "login", 302


def _expect(response, expected) -> None:  # type: ignore[no-untyped-def]
    if expected == LOGIN:
        assert response.status_code == 302
        assert response.location.startswith("/login")
    else:
        assert response.status_code == expected, response.get_data(as_text=True)[:500]


# path template -> expected for admin, coordinator, nurse, anonymous
GET_ROUTES = [
    ("/", (OK, OK, REDIRECT, LOGIN)),
    ("/nurses/", (OK, OK, FORBIDDEN, LOGIN)),
    ("/nurses/new", (OK, OK, FORBIDDEN, LOGIN)),
    ("/nurses/{nurse}", (OK, OK, FORBIDDEN, LOGIN)),
    ("/nurses/{nurse}/edit", (OK, OK, FORBIDDEN, LOGIN)),
    ("/nurses/{nurse}/calendar", (OK, OK, FORBIDDEN, LOGIN)),
    ("/nurses/{nurse}/calendar?view=day", (OK, OK, FORBIDDEN, LOGIN)),
    ("/nurses/9999", (MISSING, MISSING, FORBIDDEN, LOGIN)),
    ("/patients/", (OK, OK, OK, LOGIN)),
    ("/patients/new", (OK, OK, FORBIDDEN, LOGIN)),
    ("/patients/{patient}", (OK, OK, OK, LOGIN)),
    ("/patients/{other_patient}", (OK, OK, MISSING, LOGIN)),
    ("/patients/9999", (MISSING, MISSING, MISSING, LOGIN)),
    ("/patients/{patient}/edit", (OK, OK, FORBIDDEN, LOGIN)),
    ("/appointments/", (OK, OK, OK, LOGIN)),
    ("/appointments/new", (OK, OK, FORBIDDEN, LOGIN)),
    ("/appointments/new?patient_id={patient}", (OK, OK, FORBIDDEN, LOGIN)),
    ("/appointments/slots?patient_id={patient}", (OK, OK, FORBIDDEN, LOGIN)),
    ("/appointments/{appointment}", (OK, OK, OK, LOGIN)),
    ("/appointments/{other_appointment}", (OK, OK, MISSING, LOGIN)),
    ("/appointments/{appointment}/reschedule", (OK, OK, FORBIDDEN, LOGIN)),
    ("/my-schedule", (FORBIDDEN, FORBIDDEN, OK, LOGIN)),
    ("/my-schedule?view=day", (FORBIDDEN, FORBIDDEN, OK, LOGIN)),
    ("/calls/", (OK, OK, FORBIDDEN, LOGIN)),
    ("/calls/{call}", (OK, OK, FORBIDDEN, LOGIN)),
    ("/calls/{call}/updates?after=0", (OK, OK, FORBIDDEN, LOGIN)),
    ("/calls/9999", (MISSING, MISSING, FORBIDDEN, LOGIN)),
    ("/staff/", (OK, FORBIDDEN, FORBIDDEN, LOGIN)),
    ("/callbacks/", (OK, OK, FORBIDDEN, LOGIN)),
    ("/callbacks/?status=done", (OK, OK, FORBIDDEN, LOGIN)),
    ("/audit/", (OK, OK, FORBIDDEN, LOGIN)),
    ("/matching/", (OK, OK, FORBIDDEN, LOGIN)),
    ("/audit/?entity_type=call&entity_id=1&action=x&actor=y", (OK, OK, FORBIDDEN, LOGIN)),
]

# POSTs with a valid CSRF token but no form data: what matters is who gets past the gate.
# "BAD" = the role may act, so the empty form is refused with 422 (nothing written).
BAD = 422
POST_ROUTES = [
    ("/nurses/new", (BAD, BAD, FORBIDDEN, LOGIN)),
    ("/nurses/{nurse}/edit", (BAD, BAD, FORBIDDEN, LOGIN)),
    ("/nurses/{nurse}/overrides", (BAD, BAD, FORBIDDEN, LOGIN)),
    ("/patients/new", (BAD, BAD, FORBIDDEN, LOGIN)),
    ("/patients/{patient}/edit", (BAD, BAD, FORBIDDEN, LOGIN)),
    ("/patients/{patient}/assign", (BAD, BAD, FORBIDDEN, LOGIN)),
    ("/patients/{other_patient}/assign", (BAD, BAD, FORBIDDEN, LOGIN)),
    ("/patients/{patient}/assignments/9999/end", (MISSING, MISSING, FORBIDDEN, LOGIN)),
    ("/appointments/new", (BAD, BAD, FORBIDDEN, LOGIN)),
    ("/appointments/{appointment}/cancel", (BAD, BAD, FORBIDDEN, LOGIN)),
    ("/appointments/{appointment}/reschedule", (BAD, BAD, FORBIDDEN, LOGIN)),
    ("/appointments/{appointment}/complete", (BAD, BAD, BAD, LOGIN)),  # not started yet
    ("/appointments/{other_appointment}/complete", (BAD, BAD, MISSING, LOGIN)),
    ("/appointments/{other_appointment}/no-show", (BAD, BAD, MISSING, LOGIN)),
    ("/staff/", (BAD, FORBIDDEN, FORBIDDEN, LOGIN)),
    ("/staff/1/password", (BAD, FORBIDDEN, FORBIDDEN, LOGIN)),
    ("/staff/9999/active", (MISSING, FORBIDDEN, FORBIDDEN, LOGIN)),
    ("/callbacks/9999/done", (MISSING, MISSING, FORBIDDEN, LOGIN)),
    ("/matching/", (BAD, BAD, FORBIDDEN, LOGIN)),
]


@pytest.mark.parametrize(("path", "expected"), GET_ROUTES, ids=[r[0] for r in GET_ROUTES])
def test_every_page_answers_each_role_as_it_should(
    dash: Dashboard, path: str, expected: tuple
) -> None:
    url = path.format(**dash.ids)
    for role, outcome in zip(ROLES, expected, strict=True):
        _expect(dash.client(role).get(url), outcome)


@pytest.mark.parametrize(("path", "expected"), POST_ROUTES, ids=[r[0] for r in POST_ROUTES])
def test_every_change_answers_each_role_as_it_should(
    dash: Dashboard, path: str, expected: tuple
) -> None:
    url = path.format(**dash.ids)
    for role, outcome in zip(ROLES, expected, strict=True):
        _expect(dash.post(role, url, {}), outcome)


@pytest.mark.parametrize(
    "path",
    ["/nurses/new", "/patients/new", "/appointments/new", "/staff/", "/nurses/{nurse}/active"],
)
def test_a_change_without_a_csrf_token_is_refused_and_writes_nothing(
    dash: Dashboard, path: str
) -> None:
    from core.models import AuditEvent

    before = dash.count(AuditEvent)
    response = dash.client("admin").post(
        path.format(**dash.ids), data={"first_name": "X", "email": "x@example.test"}
    )
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert dash.count(AuditEvent) == before


def test_an_htmx_request_gets_the_fragment_and_a_page_load_the_whole_page(
    dash: Dashboard,
) -> None:
    client = dash.client("coordinator")
    page = client.get("/patients/")
    fragment = client.get("/patients/", headers={"HX-Request": "true"})
    boosted = client.get("/patients/", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in page.get_data(as_text=True)
    assert fragment.get_data(as_text=True).lstrip().startswith('<div id="patient-table">')
    assert "<html" in boosted.get_data(as_text=True)
    assert all("HX-Request" in r.headers.get("Vary", "") for r in (page, fragment, boosted))
