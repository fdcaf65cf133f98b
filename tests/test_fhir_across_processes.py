"""An EHR books through the FHIR facade across the real processes: the dashboard under gunicorn
(as `make run` starts it) on the seeded demo database, two clients racing for one Slot."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import select

from core.db import make_engine, make_session_factory
from core.models import AssignmentRole, PatientNurseAssignment
from tests.processes import Product, running_product

COORDINATOR = "coordinator@carematix.local"

pytestmark = pytest.mark.slow


@pytest.fixture
def product(db_url: str, tmp_path: Path) -> Iterator[Product]:
    """The dashboard and the voice service on `db_url`, seeded with the demo data."""
    with running_product(db_url, tmp_path, DEMO_PASSWORD="fhir-across-processes") as running:
        running.cli("seed-demo")
        yield running


def _primary_patient(database_url: str, nurse_id: int) -> int:
    """A patient whose primary nurse is `nurse_id` (so she may be booked with her)."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            patient_id = session.scalar(
                select(PatientNurseAssignment.patient_id)
                .where(
                    PatientNurseAssignment.nurse_id == nurse_id,
                    PatientNurseAssignment.role == AssignmentRole.PRIMARY,
                    PatientNurseAssignment.valid_to.is_(None),
                )
                .limit(1)
            )
            assert patient_id is not None
            return patient_id
    finally:
        engine.dispose()


def test_two_ehrs_racing_for_a_searched_slot_get_one_201_and_one_409_outcome(
    product: Product, db_url: str
) -> None:
    token = product.cli("create-token", COORDINATOR).strip().splitlines()[-1]
    base = f"{product.dashboard_url}/fhir/R4B"
    headers = {"Authorization": f"Bearer {token}"}
    found = httpx.get(f"{base}/Slot?specialty=Cardiology&_count=1", headers=headers, timeout=30)
    assert found.status_code == 200, (found.text, product.logs())
    slot = Bundle.model_validate_json(found.content).entry[0].resource
    nurse_id = int(slot.schedule.reference.removeprefix("Schedule/"))
    body = {
        "resourceType": "Appointment",
        "status": "booked",
        "slot": [{"reference": f"Slot/{slot.id}"}],
        "participant": [
            {
                "actor": {"reference": f"Patient/{_primary_patient(db_url, nurse_id)}"},
                "status": "accepted",
            }
        ],
    }
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def book(key: str) -> None:
        barrier.wait()
        answers.append(
            httpx.post(
                f"{base}/Appointment",
                json=body,
                headers={
                    **headers,
                    "Idempotency-Key": key,
                    "Content-Type": "application/fhir+json",
                },
                timeout=30,
            )
        )

    ehrs = [threading.Thread(target=book, args=(f"ehr-{n}",)) for n in (1, 2)]
    for ehr in ehrs:
        ehr.start()
    for ehr in ehrs:
        ehr.join(timeout=60)

    assert sorted(a.status_code for a in answers) == [201, 409], product.logs()
    won = next(a for a in answers if a.status_code == 201)
    lost = next(a for a in answers if a.status_code == 409)
    assert lost.headers["Content-Type"] == "application/fhir+json"
    assert OperationOutcome.model_validate_json(lost.content).issue[0].code == "conflict"
    booked = httpx.get(won.headers["Location"], headers=headers, timeout=30)
    assert Appointment.model_validate_json(booked.content).slot[0].reference == f"Slot/{slot.id}"
    again = httpx.get(f"{base}/Slot?schedule={nurse_id}&_count=500", headers=headers, timeout=30)
    assert slot.id not in {e.resource.id for e in Bundle.model_validate_json(again.content).entry}
