"""Appointments through the FHIR facade: read, search, and booking a Slot found by search
through the same path as /api/v1 (engine, Idempotency-Key, audit, role rules)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from core.models import Appointment, AuditEvent
from tests.webapp.fhir.conftest import FhirWorld, booking, diagnostics, outcome, parsed
from webapp import db

TUESDAY_NY = "start=ge2025-03-04T00:00:00-05:00&start=lt2025-03-05T00:00:00-05:00"


def free_slot_ids(world: FhirWorld, nurse_key: str = "nurse", role: str = "admin") -> list[str]:
    """The ids of the nurse's free Slots on Tuesday."""
    query = f"/Slot?schedule=Schedule/{world.ids[nurse_key]}&{TUESDAY_NY}&_count=500"
    return [entry.resource.id for entry in parsed(world.get(query, role), Bundle).entry or []]


def found_ids(world: FhirWorld, query: str, role: str = "admin") -> list[str]:
    """The ids of the Appointments a search finds."""
    found = parsed(world.get(f"/Appointment{query}", role), Bundle)
    assert found.total == len(found.entry or [])
    return [entry.resource.id for entry in found.entry or []]


def test_an_appointment_reads_as_booked_between_patient_and_nurse(fhir_any_db: FhirWorld) -> None:
    ids = fhir_any_db.ids

    visit = parsed(fhir_any_db.get(f"/Appointment/{ids['appointment']}", "nurse"), FhirAppointment)

    assert visit.status == "booked" and visit.minutesDuration == 30
    assert visit.start.isoformat() == "2025-03-04T10:00:00-05:00"
    assert [p.actor.reference for p in visit.participant] == [
        f"Patient/{ids['patient']}",
        f"Practitioner/{ids['nurse']}",
    ]
    assert visit.serviceType[0].coding[0].code == "phone"
    assert visit.slot[0].reference == f"Slot/{ids['nurse']}-20250304T1500Z-30"
    outcome(fhir_any_db.get(f"/Appointment/{ids['foreign_appointment']}", "nurse"), 404)


def test_a_cancelled_visit_reads_as_cancelled_with_its_reason(fhir_any_db: FhirWorld) -> None:
    visit_id = fhir_any_db.ids["appointment"]
    cancelled = fhir_any_db.api.post(
        f"/appointments/{visit_id}/cancel", "admin", {"reason_code": "patient_request"}
    )
    assert cancelled.status_code == 200

    visit = parsed(fhir_any_db.get(f"/Appointment/{visit_id}"), FhirAppointment)

    assert visit.status == "cancelled"
    assert visit.cancelationReason.coding[0].code == "patient_request"


@pytest.mark.parametrize(
    ("role", "query", "expected"),
    [
        ("admin", "", ["appointment", "foreign_appointment"]),
        ("admin", "?patient=Patient/{patient}", ["appointment"]),
        ("admin", "?patient={foreign_patient},{second_patient}", ["foreign_appointment"]),
        ("admin", "?practitioner=Practitioner/{other_nurse}", ["foreign_appointment"]),
        ("admin", "?practitioner={nurse}&patient={foreign_patient}", []),
        ("coordinator", "?date=2025-03-04", ["appointment", "foreign_appointment"]),
        (
            "coordinator",
            "?date=ge2025-03-04T15:00:00Z&date=lt2025-03-04T15:00:01Z",
            ["appointment", "foreign_appointment"],
        ),
        ("coordinator", "?date=gt2025-03-04T15:00:00Z", []),
        ("coordinator", "?date=2025-03-05", []),
        ("admin", "?status=booked", ["appointment", "foreign_appointment"]),
        ("admin", "?status=cancelled,noshow", []),
        ("admin", "?status=proposed", []),
        ("nurse", "", ["appointment"]),
        ("nurse", "?practitioner={other_nurse}", []),
        ("other_nurse", "?patient={patient}", []),
    ],
)
def test_appointments_are_searched_by_patient_nurse_date_and_status(
    fhir_any_db: FhirWorld, role: str, query: str, expected: list[str]
) -> None:
    ids = fhir_any_db.ids

    assert found_ids(fhir_any_db, query.format(**ids), role) == [str(ids[k]) for k in expected]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("status=scheduled", "status"),
        ("patient=Practitioner/1", "patient"),
        ("date=tomorrow", "date"),
        ("actor=Patient/1", "actor"),
        ("_count=0.5", "_count"),
    ],
)
def test_a_bad_appointment_search_is_a_400_outcome(
    fhir: FhirWorld, query: str, parameter: str
) -> None:
    assert outcome(fhir.get(f"/Appointment?{query}"), 400).issue[0].expression == [parameter]


def test_a_slot_found_by_search_is_booked_then_gone_and_a_second_booking_is_409(
    fhir_any_db: FhirWorld,
) -> None:
    world, ids = fhir_any_db, fhir_any_db.ids
    free = free_slot_ids(world)
    audited = world.api.count(AuditEvent)

    created = world.post(
        "/Appointment",
        booking(ids["patient"], free[3], description="Wound check"),
        "coordinator",
    )

    visit = parsed(created, FhirAppointment, 201)
    assert created.headers["Location"] == f"http://localhost/fhir/R4B/Appointment/{visit.id}"
    assert visit.status == "booked" and visit.slot[0].reference == f"Slot/{free[3]}"
    assert visit.description == "Wound check"
    assert parsed(world.get(f"/Appointment/{visit.id}"), FhirAppointment) == visit
    after = free_slot_ids(world)
    assert free[3] not in after and free[2] in after and free[4] not in after  # overlaps too
    with world.api.app.app_context():
        row = db.session.get(Appointment, int(visit.id))
        assert row is not None and (row.source, row.nurse_id) == ("api", ids["nurse"])
        event = db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "appointment.booked")
            .order_by(AuditEvent.id.desc())
        ).first()
        assert event is not None and event.entity_id == row.id
        assert (event.source, event.actor_user_id) == ("api", ids["coordinator_user"])
    assert world.api.count(AuditEvent) > audited

    before = world.api.counts()
    again = world.post("/Appointment", booking(ids["second_patient"], free[3]), "admin")

    refused = outcome(again, 409)
    assert refused.issue[0].code == "conflict"
    alternatives = [i.diagnostics for i in refused.issue[1:]]
    assert alternatives and all(a.startswith("Free instead: Slot/") for a in alternatives)
    assert alternatives[0].removeprefix("Free instead: Slot/") in after
    assert world.api.counts() == before


def test_the_same_idempotency_key_books_once(fhir_any_db: FhirWorld) -> None:
    world = fhir_any_db
    slot_id = free_slot_ids(world)[0]
    body = booking(world.ids["patient"], slot_id)

    first = world.post("/Appointment", body, "admin", **{"Idempotency-Key": "ehr-77"})
    second = world.post("/Appointment", body, "admin", **{"Idempotency-Key": "ehr-77"})

    assert parsed(first, FhirAppointment, 201).id == parsed(second, FhirAppointment, 200).id
    assert world.api.count(Appointment) == 3


def test_an_idempotency_key_used_for_another_patient_is_422_and_an_unknown_patient_404(
    fhir_any_db: FhirWorld,
) -> None:
    world, ids = fhir_any_db, fhir_any_db.ids
    first, second = free_slot_ids(world)[:2]
    key = {"Idempotency-Key": "ehr-9"}
    parsed(world.post("/Appointment", booking(ids["patient"], first), **key), FhirAppointment, 201)
    before = world.api.counts()

    reused = world.post("/Appointment", booking(ids["second_patient"], second), **key)
    unknown = world.post("/Appointment", booking(424242, second))

    assert outcome(reused, 422).issue[0].code == "business-rule"
    assert outcome(unknown, 404).issue[0].code == "not-found"
    assert world.api.counts() == before


def test_a_visit_is_booked_by_start_and_practitioner_without_a_slot(
    fhir_any_db: FhirWorld,
) -> None:
    ids = fhir_any_db.ids
    body = booking(
        ids["patient"],
        start="2025-03-04T13:00:00-05:00",
        end="2025-03-04T13:45:00-05:00",
        participant=[
            {"actor": {"reference": f"Patient/{ids['patient']}"}, "status": "accepted"},
            {"actor": {"reference": f"Practitioner/{ids['nurse']}"}, "status": "accepted"},
        ],
        serviceType=[{"coding": [{"system": "urn:carematix:fhir:visit-kind", "code": "video"}]}],
    )

    visit = parsed(fhir_any_db.post("/Appointment", body, "nurse"), FhirAppointment, 201)

    assert visit.minutesDuration == 45 and visit.serviceType[0].coding[0].code == "video"
    assert visit.slot[0].reference == f"Slot/{ids['nurse']}-20250304T1800Z-45"


def test_a_nurse_token_books_only_her_own_time_for_her_own_patients(
    fhir_any_db: FhirWorld,
) -> None:
    world, ids = fhir_any_db, fhir_any_db.ids
    theirs = free_slot_ids(world, "other_nurse")[0]
    own = free_slot_ids(world, "nurse", "nurse")[0]
    before = world.api.counts()

    assert outcome(world.post("/Appointment", booking(ids["patient"], theirs), "nurse"), 403)
    outcome(world.post("/Appointment", booking(ids["foreign_patient"], own), "nurse"), 404)
    assert world.api.counts() == before
    parsed(world.post("/Appointment", booking(ids["patient"], own), "nurse"), FhirAppointment, 201)


def test_a_nurse_not_on_the_patients_care_team_is_422(fhir_any_db: FhirWorld) -> None:
    slot_id = free_slot_ids(fhir_any_db, "other_nurse")[0]
    before = fhir_any_db.api.counts()

    refused = outcome(
        fhir_any_db.post("/Appointment", booking(fhir_any_db.ids["patient"], slot_id)), 422
    )

    assert refused.issue[0].code == "business-rule"
    assert fhir_any_db.api.counts() == before


def _slot_of_nurse_one(ids: dict[str, int]) -> str:
    return f"{ids['nurse']}-20250304T1600Z-30"


def _base(ids: dict[str, int], **fields: Any) -> dict[str, Any]:
    """A good booking of nurse one's 11:00 slot for her patient, with `fields` changed."""
    return {**booking(ids["patient"], _slot_of_nurse_one(ids)), **fields}


def _with(ids: dict[str, int], *references: str) -> dict[str, Any]:
    """The good booking with these participants instead."""
    actors = [
        {"actor": {"reference": ref.format(**ids)}, "status": "accepted"} for ref in references
    ]
    return _base(ids, participant=actors)


KIND = "urn:carematix:fhir:visit-kind"
BAD_BODIES = [
    pytest.param(lambda ids: "{", 400, None, id="not JSON"),
    pytest.param(lambda ids: {"resourceType": "Patient"}, 400, None, id="another resource"),
    pytest.param(
        lambda ids: {"resourceType": "Appointment", "status": "booked"}, 400, None, id="no actor"
    ),
    pytest.param(lambda ids: _base(ids, start="tomorrow"), 400, None, id="a bad start"),
    pytest.param(lambda ids: _base(ids, colour="red"), 400, None, id="an unknown element"),
    pytest.param(lambda ids: _base(ids, status="proposed"), 422, "status", id="proposed"),
    pytest.param(
        lambda ids: _with(ids, "Practitioner/{nurse}"), 422, "participant", id="no patient"
    ),
    pytest.param(
        lambda ids: _with(ids, "Patient/{patient}", "Patient/{second_patient}"),
        422,
        "participant",
        id="two patients",
    ),
    pytest.param(
        lambda ids: _with(ids, "Patient/{patient}", "Group/1"), 422, "participant", id="a group"
    ),
    pytest.param(
        lambda ids: _with(ids, "Patient/{patient}", "Practitioner/{other_nurse}"),
        422,
        "participant",
        id="not the slot's nurse",
    ),
    pytest.param(
        lambda ids: _base(ids, slot=[{"reference": "Slot/abc"}]), 422, "slot", id="not our slot"
    ),
    pytest.param(lambda ids: _base(ids, slot=_base(ids)["slot"] * 2), 422, "slot", id="two slots"),
    pytest.param(
        lambda ids: _base(ids, start="2025-03-04T12:00:00-05:00"),
        422,
        "start",
        id="not the slot's start",
    ),
    pytest.param(
        lambda ids: _base(ids, minutesDuration=45), 422, "start", id="not the slot's length"
    ),
    pytest.param(lambda ids: booking(ids["patient"]), 422, "start", id="neither slot nor start"),
    pytest.param(
        lambda ids: _base(ids, serviceType=[{"coding": [{"system": KIND, "code": "telepathy"}]}]),
        422,
        "serviceType",
        id="an unknown kind",
    ),
    pytest.param(
        lambda ids: _base(ids, description="x" * 501), 422, "description", id="a long reason"
    ),
    pytest.param(
        lambda ids: booking(ids["patient"], start="2300-03-04T12:00:00-05:00"),
        422,
        "start",
        id="a year out of range",
    ),
    pytest.param(
        lambda ids: booking(ids["patient"], start="2025-03-04T12:00:00-05:00", minutesDuration=2),
        422,
        "minutesDuration",
        id="too short",
    ),
]


@pytest.mark.parametrize(("body", "status", "element"), BAD_BODIES)
def test_a_bad_appointment_is_refused_with_an_outcome_and_books_nothing(
    fhir: FhirWorld,
    body: Callable[[dict[str, int]], Any],
    status: int,
    element: str | None,
) -> None:
    before = fhir.api.counts()

    refused = outcome(fhir.post("/Appointment", body(fhir.ids)), status)

    assert refused.issue[0].diagnostics
    if element is not None:
        assert refused.issue[0].expression == [f"Appointment.{element}"]
    assert fhir.api.counts() == before


def test_a_body_that_is_not_fhir_json_is_415_and_a_huge_one_413(fhir: FhirWorld) -> None:
    body = booking(fhir.ids["patient"], _slot_of_nurse_one(fhir.ids))

    outcome(fhir.post("/Appointment", body, content_type="text/plain"), 415)
    parsed(fhir.post("/Appointment", body, content_type="application/json"), FhirAppointment, 201)
    huge = {**body, "description": "x" * 70_000}
    outcome(fhir.post("/Appointment", huge), 413)


@pytest.mark.parametrize("key", ["  ", "a\x01b", "k" * 201])
def test_a_malformed_idempotency_key_is_422_and_books_nothing(fhir: FhirWorld, key: str) -> None:
    body = booking(fhir.ids["patient"], _slot_of_nurse_one(fhir.ids))
    before = fhir.api.counts()

    refused = outcome(fhir.post("/Appointment", body, **{"Idempotency-Key": key}), 422)

    assert "Idempotency-Key" in diagnostics(
        fhir.post("/Appointment", body, **{"Idempotency-Key": key})
    )
    assert refused.issue[0].expression == ["header.Idempotency-Key"]
    assert fhir.api.counts() == before
