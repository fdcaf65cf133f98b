"""Slot search: a nurse's free time from the booking engine, by schedule, nurse, specialty,
start and status; strict about its parameters; a nurse's token sees only her own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.slot import Slot
from sqlalchemy import update

from core.models import Nurse
from tests.webapp.fhir.conftest import FhirWorld, outcome, parsed
from webapp import db

TUESDAY_NY = "start=ge2025-03-04T00:00:00-05:00&start=lt2025-03-05T00:00:00-05:00"


def slots(world: FhirWorld, query: str, role: str = "admin") -> list[Slot]:
    """Every Slot a search finds (one page of up to 500)."""
    found = parsed(world.get(f"/Slot?_count=500&{query}", role), Bundle)
    assert found.total == len(found.entry or [])
    return [entry.resource for entry in found.entry or []]


def starts(found: list[Slot]) -> list[str]:
    """The UTC starts of the slots, as HH:MM."""
    return [slot.start.astimezone(UTC).strftime("%H:%M") for slot in found]


def test_slots_of_a_schedule_are_its_free_times_on_the_grid(fhir_any_db: FhirWorld) -> None:
    found = slots(fhir_any_db, f"schedule=Schedule/{fhir_any_db.ids['nurse']}&{TUESDAY_NY}")

    # 09:00-17:00 New York in 15-minute steps for a 30-minute visit, around the 10:00 visit.
    assert starts(found)[:5] == ["14:00", "14:15", "14:30", "15:30", "15:45"]
    assert len(found) == 31 - 3
    for slot in found:
        assert slot.status == "free"
        assert slot.schedule.reference == f"Schedule/{fhir_any_db.ids['nurse']}"
        assert slot.end - slot.start == timedelta(minutes=30)
        assert slot.start.utcoffset() == timedelta(hours=-5)  # given in the nurse's zone
        assert slot.id.startswith(f"{fhir_any_db.ids['nurse']}-20250304T")


def test_slots_by_practitioner_are_those_of_her_schedule(fhir_any_db: FhirWorld) -> None:
    nurse = fhir_any_db.ids["other_nurse"]
    by_schedule = slots(fhir_any_db, f"schedule={nurse}&{TUESDAY_NY}")
    by_actor = slots(fhir_any_db, f"schedule.actor=Practitioner/{nurse}&{TUESDAY_NY}")

    assert [s.id for s in by_actor] == [s.id for s in by_schedule]
    assert {s.schedule.reference for s in by_actor} == {f"Schedule/{nurse}"}


def test_without_a_schedule_every_nurse_the_caller_sees_is_searched(
    fhir_any_db: FhirWorld,
) -> None:
    everyone = slots(fhir_any_db, TUESDAY_NY, "coordinator")
    own = slots(fhir_any_db, TUESDAY_NY, "nurse")

    ids = fhir_any_db.ids
    assert {s.schedule.reference for s in everyone} == {
        f"Schedule/{ids['nurse']}",
        f"Schedule/{ids['other_nurse']}",
    }
    assert [s.start for s in everyone] == sorted(s.start for s in everyone)
    assert {s.schedule.reference for s in own} == {f"Schedule/{ids['nurse']}"}
    assert slots(fhir_any_db, f"schedule={ids['other_nurse']}&{TUESDAY_NY}", "nurse") == []


def test_slots_by_specialty_are_those_of_nurses_with_it(fhir_any_db: FhirWorld) -> None:
    with fhir_any_db.api.app.app_context():
        db.session.execute(
            update(Nurse)
            .where(Nurse.id == fhir_any_db.ids["other_nurse"])
            .values(specializations=["Cardiology", "General Care"])
        )
        db.session.commit()

    cardiology = slots(fhir_any_db, f"specialty=cardiology&{TUESDAY_NY}")
    coded = slots(fhir_any_db, f"specialty=urn:carematix:fhir:specialty|Cardiology&{TUESDAY_NY}")
    either = slots(fhir_any_db, f"specialty=Pediatrics,general care&{TUESDAY_NY}")

    assert cardiology and {s.schedule.reference for s in cardiology} == {
        f"Schedule/{fhir_any_db.ids['other_nurse']}"
    }
    assert cardiology[0].specialty[0].text == "Cardiology"
    assert [s.id for s in coded] == [s.id for s in cardiology] == [s.id for s in either]
    assert slots(fhir_any_db, f"specialty=Pediatrics&{TUESDAY_NY}") == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # After 15:00:00 UTC (to the second) and up to 16:00:00 included.
        ("start=gt2025-03-04T15:00:00Z&start=le2025-03-04T16:00:00Z", ["15:30", "15:45", "16:00"]),
        # Up to 16:00 excluded, from 14:30 included (minute precision).
        (
            "start=ge2025-03-04T09:30-05:00&start=lt2025-03-04T16:00:00Z",
            ["14:30", "15:30", "15:45"],
        ),
        # A minute: the slots starting within it.
        ("start=eq2025-03-04T14:15Z", ["14:15"]),
        # An unencoded "+" arrives as a space and is read as the offset it was meant to be.
        ("start=ge2025-03-04T16:15:00+00:00&start=lt2025-03-04T16:40+00:00", ["16:15", "16:30"]),
        ("start=2025-03-04T14:20:00Z", []),
    ],
)
def test_start_takes_ranges_with_prefixes(
    fhir_any_db: FhirWorld, query: str, expected: list[str]
) -> None:
    found = slots(fhir_any_db, f"schedule={fhir_any_db.ids['nurse']}&{query}")

    assert starts(found) == expected


def test_a_date_is_a_utc_day_and_no_start_means_the_next_seven_days(fhir: FhirWorld) -> None:
    nurse = fhir.ids["nurse"]
    wednesday = slots(fhir, f"schedule={nurse}&start=2025-03-05&status=free")
    week = slots(fhir, f"schedule={nurse}")

    assert wednesday and {s.start.astimezone(UTC).date().isoformat() for s in wednesday} == {
        "2025-03-05"
    }
    assert min(s.start for s in week) >= fhir.now
    assert max(s.start for s in week) < fhir.now + timedelta(days=7)
    assert {s.start.astimezone(UTC).date() for s in week} >= {
        (fhir.now + timedelta(days=d)).date() for d in range(5)
    }
    assert slots(fhir, f"schedule={nurse}&start=lt2025-03-03") == []  # the past has no slots


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("start=2025-03-04T10:00", "start"),  # no offset
        ("start=2025-03-04T10:00:00", "start"),
        ("start=ne2025-03-04", "start"),
        ("start=ge2025-13-01", "start"),
        ("start=ge2025-03", "start"),
        ("start=ge2025-03-04,le2025-03-05", "start"),
        ("start=ge2025-03-01&start=le2025-04-15", "start"),  # more than 31 days
        ("status=busy", "status"),
        ("status=free,busy", "status"),
        ("schedule=Practitioner/1", "schedule"),
        ("schedule.actor=Schedule/1", "schedule.actor"),
        ("specialty=", "specialty"),
        ("date=2025-03-04", "date"),
        ("_count=-1", "_count"),
        ("_count=501", "_count"),
        ("_offset=x", "_offset"),
    ],
)
def test_a_bad_slot_search_is_a_400_outcome_naming_the_parameter(
    fhir: FhirWorld, query: str, parameter: str
) -> None:
    refused = outcome(fhir.get(f"/Slot?{query}"), 400)

    assert refused.issue[0].code == "invalid"
    assert refused.issue[0].expression == [parameter]
    assert refused.issue[0].diagnostics


def test_slot_searches_page_with_count_and_offset(fhir: FhirWorld) -> None:
    query = f"/Slot?schedule={fhir.ids['nurse']}&{TUESDAY_NY}&_count=10"
    first = parsed(fhir.get(query), Bundle)
    links = {link.relation: link.url for link in first.link}
    second = parsed(fhir.get(links["next"].removeprefix("http://localhost/fhir/R4B")), Bundle)

    assert (first.total, len(first.entry), len(second.entry)) == (28, 10, 10)
    assert "previous" not in links
    assert {e.resource.id for e in first.entry}.isdisjoint(e.resource.id for e in second.entry)
    assert first.entry[-1].resource.start < second.entry[0].resource.start
    assert {link.relation for link in second.link} == {"self", "next", "previous"}
    again = parsed(fhir.get(links["self"].removeprefix("http://localhost/fhir/R4B")), Bundle)
    assert [e.resource.id for e in again.entry] == [e.resource.id for e in first.entry]


def test_a_slot_found_by_search_reads_back_while_it_is_free(fhir_any_db: FhirWorld) -> None:
    found = slots(fhir_any_db, f"schedule={fhir_any_db.ids['nurse']}&{TUESDAY_NY}")

    again = parsed(fhir_any_db.get(f"/Slot/{found[0].id}", "nurse"), Slot)

    assert again == found[0]
    outcome(fhir_any_db.get(f"/Slot/{found[0].id}", "other_nurse"), 404)
    taken = f"{fhir_any_db.ids['nurse']}-20250304T1500Z-30"  # the world's 10:00 visit
    outcome(fhir_any_db.get(f"/Slot/{taken}"), 404)
    off_grid = f"{fhir_any_db.ids['nurse']}-20250304T1401Z-30"
    outcome(fhir_any_db.get(f"/Slot/{off_grid}"), 404)


def test_an_inactive_nurse_has_no_slots(fhir_any_db: FhirWorld) -> None:
    nurse = fhir_any_db.ids["nurse"]
    found = slots(fhir_any_db, f"schedule={nurse}&{TUESDAY_NY}")
    with fhir_any_db.api.app.app_context():
        db.session.execute(update(Nurse).where(Nurse.id == nurse).values(active=False))
        db.session.commit()

    assert slots(fhir_any_db, f"schedule={nurse}&{TUESDAY_NY}") == []
    outcome(fhir_any_db.get(f"/Slot/{found[0].id}"), 404)


def test_slot_ids_name_the_nurse_the_utc_start_and_the_length() -> None:
    from webapp.fhir.resources import SlotKey

    key = SlotKey(7, datetime(2025, 3, 4, 15, 30, tzinfo=UTC), 45)

    assert key.id == "7-20250304T1530Z-45"
    assert SlotKey.parse(key.id) == key
    for bad in (
        "7-20250304T1530-45",
        "0-20250304T1530Z-45",
        "7-20251304T1530Z-45",
        "7-20250304T1530Z-0",
        "7-20250304T1530Z-481",
        "99999999999-20250304T1530Z-45",
    ):
        assert SlotKey.parse(bad) is None
