"""Reading through the FHIR facade: CapabilityStatement, Practitioner, Patient and Schedule,
with the API's tokens and a nurse's token seeing only her own."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.schedule import Schedule
from sqlalchemy import update

from core.models import Nurse
from core.models import Patient as PatientRow
from tests.webapp.fhir.conftest import FhirWorld, diagnostics, outcome, parsed
from webapp import db
from webapp.fhir.search import SEARCH_PARAMS


def test_metadata_needs_no_token_and_states_what_each_resource_supports(
    fhir: FhirWorld,
) -> None:
    statement = parsed(fhir.get("/metadata", role=None), CapabilityStatement)

    assert statement.fhirVersion == "4.3.0" and statement.kind == "instance"
    resources = {r.type: r for r in statement.rest[0].resource}
    assert set(resources) == {"Practitioner", "Patient", "Schedule", "Slot", "Appointment"}
    for name, params in SEARCH_PARAMS.items():
        assert [p.name for p in resources[name].searchParam] == [p.name for p in params]
    # Every interaction it states is answered by the facade itself, never by the catch-all.
    for name, resource in resources.items():
        codes = {i.code for i in resource.interaction}
        if "read" in codes:
            missing = fhir.get(f"/{name}/999999")
            assert "No FHIR interaction" not in diagnostics(missing)
            outcome(missing, 404)
        if "search-type" in codes:
            parsed(fhir.get(f"/{name}?_count=1"), Bundle)
        if "create" in codes:
            assert fhir.post(f"/{name}", {}).status_code == 400


@pytest.mark.parametrize("role", ["admin", "coordinator", "nurse"])
def test_a_practitioner_is_the_nurse_with_her_name_and_credential(
    fhir_any_db: FhirWorld, role: str
) -> None:
    nurse = parsed(fhir_any_db.get(f"/Practitioner/{fhir_any_db.ids['nurse']}", role), Practitioner)

    assert nurse.id == str(fhir_any_db.ids["nurse"]) and nurse.active
    assert (nurse.name[0].family, nurse.name[0].given) == ("Wilson", ["Alice"])
    assert nurse.qualification[0].code.text == "RN"
    assert [(t.system, t.value) for t in nurse.telecom] == [("email", "alice@example.test")]


def test_a_nurse_token_reads_no_other_practitioner(fhir_any_db: FhirWorld) -> None:
    other = fhir_any_db.ids["other_nurse"]

    outcome(fhir_any_db.get(f"/Practitioner/{other}", "nurse"), 404)
    parsed(fhir_any_db.get(f"/Practitioner/{other}", "coordinator"), Practitioner)


@pytest.mark.parametrize(
    "path",
    [
        "/Practitioner/999",
        "/Practitioner/abc",
        "/Patient/0",
        "/Patient/99999999999",
        "/Schedule/1.5",
        "/Appointment/-1",
        "/Slot/not-a-slot",
    ],
)
def test_an_id_that_is_not_ours_is_a_404_outcome(fhir: FhirWorld, path: str) -> None:
    assert outcome(fhir.get(path), 404).issue[0].code == "not-found"


@pytest.mark.parametrize(
    "authorization", [None, "Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer not-a-token"]
)
def test_every_interaction_but_metadata_needs_a_valid_token(
    fhir: FhirWorld, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for path in ("/Practitioner/1", "/Slot", "/Appointment", "/Schedule"):
        response = fhir.api.client.get(f"/fhir/R4B{path}", headers=headers)
        assert outcome(response, 401).issue[0].code == "login"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    refused = fhir.api.client.post(
        "/fhir/R4B/Appointment", headers=headers, json={"resourceType": "Appointment"}
    )
    outcome(refused, 401)


def test_a_patient_shows_only_the_minimum_an_ehr_needs(fhir_any_db: FhirWorld) -> None:
    patient_id = fhir_any_db.ids["patient"]
    with fhir_any_db.api.app.app_context():
        db.session.execute(
            update(PatientRow)
            .where(PatientRow.id == patient_id)
            .values(
                email="john@example.test",
                address_line1="12 Elm St",
                address_city="Springfield",
                address_postal_code="62704",
                emergency_contact_name="Mary Smith",
                emergency_contact_phone="+12025550150",
                notes="private notes",
            )
        )
        db.session.commit()

    response = fhir_any_db.get(f"/Patient/{patient_id}", "nurse")

    patient = parsed(response, Patient)
    assert (patient.name[0].family, patient.name[0].given) == ("Smith", ["John"])
    assert patient.birthDate.isoformat() == "1958-04-12"
    assert [(t.system, t.value) for t in patient.telecom] == [("phone", "+12025550101")]
    assert patient.communication[0].language.coding[0].code == "en"
    text = response.get_data(as_text=True)
    for private in ("john@example.test", "Elm", "Mary", "+12025550150", "private", "Diabetes"):
        assert private not in text
    assert set(response.get_json()) == {
        "resourceType",
        "id",
        "name",
        "telecom",
        "birthDate",
        "communication",
    }


def test_a_nurse_token_reads_only_her_patients(fhir_any_db: FhirWorld) -> None:
    parsed(fhir_any_db.get(f"/Patient/{fhir_any_db.ids['patient']}", "nurse"), Patient)
    outcome(fhir_any_db.get(f"/Patient/{fhir_any_db.ids['foreign_patient']}", "nurse"), 404)
    parsed(fhir_any_db.get(f"/Patient/{fhir_any_db.ids['foreign_patient']}", "admin"), Patient)


def test_a_schedule_is_the_nurses_with_her_specialties_and_horizon(
    fhir_any_db: FhirWorld,
) -> None:
    nurse_id = fhir_any_db.ids["nurse"]
    with fhir_any_db.api.app.app_context():
        db.session.execute(
            update(Nurse).where(Nurse.id == nurse_id).values(specializations=["Wound Care"])
        )
        db.session.commit()

    schedule = parsed(fhir_any_db.get(f"/Schedule/{nurse_id}", "nurse"), Schedule)

    assert schedule.id == str(nurse_id) and schedule.active
    assert schedule.actor[0].reference == f"Practitioner/{nurse_id}"
    assert schedule.specialty[0].text == "Wound Care"
    assert schedule.planningHorizon.start == fhir_any_db.now
    assert (schedule.planningHorizon.end - fhir_any_db.now).days == 60
    outcome(fhir_any_db.get(f"/Schedule/{fhir_any_db.ids['other_nurse']}", "nurse"), 404)


@pytest.mark.parametrize(
    ("role", "query", "expected"),
    [
        ("admin", "", ["nurse", "other_nurse"]),
        ("admin", "?actor=Practitioner/{other_nurse}", ["other_nurse"]),
        ("admin", "?actor={nurse}", ["nurse"]),
        (
            "admin",
            "?actor=Practitioner/{nurse},Practitioner/{other_nurse}",
            ["nurse", "other_nurse"],
        ),
        ("coordinator", "?actor=http://ehr.example/fhir/Practitioner/{nurse}", ["nurse"]),
        ("admin", "?actor=Practitioner/424242", []),
        ("nurse", "", ["nurse"]),
        ("nurse", "?actor=Practitioner/{other_nurse}", []),
    ],
)
def test_schedules_are_searched_by_actor(
    fhir_any_db: FhirWorld, role: str, query: str, expected: list[str]
) -> None:
    found = parsed(fhir_any_db.get("/Schedule" + query.format(**fhir_any_db.ids), role), Bundle)

    assert found.type == "searchset" and found.total == len(expected)
    assert [e.resource.id for e in found.entry or []] == [
        str(fhir_any_db.ids[name]) for name in expected
    ]
    for entry in found.entry or []:
        assert entry.fullUrl.endswith(f"/fhir/R4B/Schedule/{entry.resource.id}")


@pytest.mark.parametrize(
    "query", ["?actor=Patient/1", "?actor=nurse-1", "?practitioner=Practitioner/1", "?_count=x"]
)
def test_a_bad_schedule_search_is_400_naming_the_parameter(fhir: FhirWorld, query: str) -> None:
    refused = outcome(fhir.get("/Schedule" + query), 400)

    assert refused.issue[0].code == "invalid"
    assert refused.issue[0].expression == [query[1:].partition("=")[0]]


def test_an_unknown_path_is_404_and_a_wrong_method_405_as_outcomes(fhir: FhirWorld) -> None:
    outcome(fhir.get("/Observation/1"), 404)
    outcome(fhir.get("/"), 404)

    wrong = fhir.api.client.delete("/fhir/R4B/Appointment/1", headers=fhir.api.headers("admin"))

    assert outcome(wrong, 405).issue[0].code == "not-supported"
    assert wrong.headers["Allow"] == "GET, HEAD, OPTIONS"
    options = fhir.api.client.options("/fhir/R4B/Appointment")
    assert (options.status_code, options.headers["Allow"]) == (204, "GET, HEAD, OPTIONS, POST")
