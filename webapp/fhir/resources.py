"""Our records as FHIR R4B resources, one function per resource, each validated by its model.

Nurse -> Practitioner and Schedule (one schedule per nurse, same id); a free time of a nurse
-> Slot (its id encodes the nurse, the UTC start and the length, so a Slot found by search can
be booked without being stored); Patient -> Patient (the minimum an EHR needs to match a
record); Appointment -> Appointment. Times are given in the nurse's zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.schedule import Schedule
from fhir.resources.R4B.slot import Slot as FhirSlot
from pydantic import ValidationError as PydanticValidationError

from core.errors import Slot
from core.limits import MAX_ID
from core.models import (
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    CancelReason,
    Nurse,
    Patient,
)
from core.operations import MAX_VISIT_MINUTES
from core.timefmt import local_iso
from webapp.api.schemas import AppointmentCreate
from webapp.fhir.errors import FhirError

# Our own code systems: URNs, since the product has no public terminology server.
SPECIALTY_SYSTEM = "urn:carematix:fhir:specialty"
VISIT_KIND_SYSTEM = "urn:carematix:fhir:visit-kind"
CANCEL_REASON_SYSTEM = "urn:carematix:fhir:cancel-reason"
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"

# http://hl7.org/fhir/appointmentstatus for each of our statuses.
APPOINTMENT_STATUS: dict[AppointmentStatus, str] = {
    AppointmentStatus.SCHEDULED: "booked",
    AppointmentStatus.COMPLETED: "fulfilled",
    AppointmentStatus.CANCELLED: "cancelled",
    AppointmentStatus.NO_SHOW: "noshow",
    AppointmentStatus.ENTERED_IN_ERROR: "entered-in-error",
}
# Every code of that value set: a search for one we never use finds nothing, it is no error.
FHIR_APPOINTMENT_STATUSES = frozenset(
    {*APPOINTMENT_STATUS.values(), "proposed", "pending", "arrived", "checked-in", "waitlist"}
)

SLOT_ID = re.compile(
    r"(?P<nurse>[1-9][0-9]{0,9})-(?P<start>[0-9]{8}T[0-9]{4})Z-(?P<minutes>[1-9][0-9]{0,3})"
)
SLOT_START_FORMAT = "%Y%m%dT%H%M"


def reference(
    resource_type: str, record_id: int | str, display: str | None = None
) -> dict[str, Any]:
    """A relative reference such as Practitioner/3."""
    ref: dict[str, Any] = {"reference": f"{resource_type}/{record_id}"}
    if display:
        ref["display"] = display
    return ref


def specialties(nurse: Nurse) -> list[dict[str, Any]]:
    """The nurse's specialisations as CodeableConcepts (their names are the codes)."""
    return [
        {"coding": [{"system": SPECIALTY_SYSTEM, "code": name.strip()}], "text": name}
        for name in nurse.specializations or []
        if name.strip()
    ]


def practitioner(nurse: Nurse) -> Practitioner:
    """A nurse as a Practitioner: name, credential and work contact details."""
    data: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": str(nurse.id),
        "active": nurse.active,
        "name": [
            {
                "use": "official",
                "text": nurse.display_name,
                "family": nurse.last_name,
                "given": [nurse.first_name],
            }
        ],
    }
    telecom = [
        {"system": system, "value": value, "use": "work"}
        for system, value in (("phone", nurse.phone), ("email", nurse.email))
        if value
    ]
    if telecom:
        data["telecom"] = telecom
    if nurse.title.strip():
        data["qualification"] = [{"code": {"text": nurse.title.strip()}}]
    return Practitioner.model_validate(data)


def patient(record: Patient) -> FhirPatient:
    """A patient with the minimum an EHR needs to match and reach them: name, birth date,
    phone and preferred language (no address, conditions, notes or emergency contact)."""
    return FhirPatient.model_validate(
        {
            "resourceType": "Patient",
            "id": str(record.id),
            "name": [{"use": "official", "family": record.last_name, "given": [record.first_name]}],
            "birthDate": record.date_of_birth.isoformat(),
            "telecom": [{"system": "phone", "value": record.phone}],
            "communication": [
                {
                    "language": {
                        "coding": [{"system": LANGUAGE_SYSTEM, "code": record.preferred_language}]
                    },
                    "preferred": True,
                }
            ],
        }
    )


def schedule(nurse: Nurse, now: datetime) -> Schedule:
    """The nurse's schedule: her free time is its Slots, bookable up to her horizon."""
    return Schedule.model_validate(
        {
            "resourceType": "Schedule",
            "id": str(nurse.id),
            "active": nurse.active,
            "actor": [reference("Practitioner", nurse.id, nurse.display_name)],
            "planningHorizon": {
                "start": local_iso(now, nurse.time_zone),
                "end": local_iso(now + timedelta(days=nurse.horizon_days), nurse.time_zone),
            },
            "comment": f"Visits of {nurse.visit_minutes} minutes by default, in {nurse.time_zone}.",
            **({"specialty": specialties(nurse)} if nurse.specializations else {}),
        }
    )


@dataclass(frozen=True)
class SlotKey:
    """What a Slot id says: whose time, from when (UTC), for how long."""

    nurse_id: int
    start: datetime
    minutes: int

    @property
    def id(self) -> str:
        """The Slot id, e.g. 3-20250304T1500Z-30."""
        return f"{self.nurse_id}-{self.start.astimezone(UTC):{SLOT_START_FORMAT}}Z-{self.minutes}"

    @classmethod
    def of(cls, slot: Slot) -> SlotKey:
        """The key of a free slot the booking engine found."""
        return cls(slot.nurse_id, slot.start, int((slot.end - slot.start).total_seconds() // 60))

    @classmethod
    def parse(cls, slot_id: str) -> SlotKey | None:
        """The key a Slot id encodes, or None when it is not one of ours."""
        match = SLOT_ID.fullmatch(slot_id)
        if match is None:
            return None
        nurse_id, minutes = int(match["nurse"]), int(match["minutes"])
        if nurse_id > MAX_ID or minutes > MAX_VISIT_MINUTES:
            return None
        try:
            start = datetime.strptime(match["start"], SLOT_START_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return None
        return cls(nurse_id, start, minutes)


def slot(key: SlotKey, nurse: Nurse) -> FhirSlot:
    """A free time of the nurse as a Slot of her Schedule."""
    data: dict[str, Any] = {
        "resourceType": "Slot",
        "id": key.id,
        "schedule": reference("Schedule", nurse.id),
        "status": "free",
        "start": local_iso(key.start, nurse.time_zone),
        "end": local_iso(key.start + timedelta(minutes=key.minutes), nurse.time_zone),
    }
    if nurse.specializations:
        data["specialty"] = specialties(nurse)
    return FhirSlot.model_validate(data)


def _coded(system: str, code: str, label: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": label}], "text": label}


def appointment(visit: Appointment) -> FhirAppointment:
    """A visit as an Appointment between its patient and its nurse."""
    nurse = visit.nurse
    kind = AppointmentKind(visit.kind)
    data: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(visit.id),
        "status": APPOINTMENT_STATUS[AppointmentStatus(visit.status)],
        "serviceType": [_coded(VISIT_KIND_SYSTEM, kind.value, kind.label)],
        "start": local_iso(visit.start_at, nurse.time_zone),
        "end": local_iso(visit.end_at, nurse.time_zone),
        "minutesDuration": visit.duration_minutes,
        "created": local_iso(visit.created_at, nurse.time_zone),
        "slot": [reference("Slot", SlotKey(nurse.id, visit.start_at, visit.duration_minutes).id)],
        "participant": [
            {
                "actor": reference("Patient", visit.patient_id),
                "required": "required",
                "status": "accepted",
            },
            {
                "actor": reference("Practitioner", nurse.id, nurse.display_name),
                "required": "required",
                "status": "accepted",
            },
        ],
    }
    if visit.reason:
        data["description"] = visit.reason
    if visit.cancel_reason:
        reason = CancelReason(visit.cancel_reason)
        data["cancelationReason"] = _coded(CANCEL_REASON_SYSTEM, reason.value, reason.label)
    return FhirAppointment.model_validate(data)


# Where each booking field sits in an Appointment, for the errors that name it.
BOOKING_ELEMENTS = {
    "patient_id": "Appointment.participant",
    "nurse_id": "Appointment.participant",
    "start": "Appointment.start",
    "duration_minutes": "Appointment.minutesDuration",
    "kind": "Appointment.serviceType",
    "reason": "Appointment.description",
}


def _refused(element: str, diagnostics: str) -> FhirError:
    return FhirError(422, diagnostics, expression=f"Appointment.{element}")


def _actors(resource: FhirAppointment, resource_type: str) -> list[int]:
    """Ids of the participants of one type (Patient/7 -> 7); other references are refused."""
    ids = []
    for participant in resource.participant or []:
        ref = participant.actor.reference if participant.actor else None
        kind, _, record_id = (ref or "").partition("/")
        if kind == resource_type:
            if not record_id.isdigit() or not 1 <= int(record_id) <= MAX_ID:
                raise _refused("participant", f"{ref!r} names no {resource_type} of this server.")
            ids.append(int(record_id))
        elif kind not in {"Patient", "Practitioner"}:
            raise _refused(
                "participant", "Name the participants as Patient/{id} and Practitioner/{id}."
            )
    return ids


def _slot_key(resource: FhirAppointment) -> SlotKey | None:
    """The one Slot the Appointment books, if it names one."""
    slots = [ref.reference or "" for ref in resource.slot or []]
    if not slots:
        return None
    key = SlotKey.parse(slots[0].removeprefix("Slot/")) if slots[0].startswith("Slot/") else None
    if len(slots) > 1 or key is None:
        raise _refused("slot", "Name one Slot/{id} found by a Slot search.")
    return key


def _minutes(resource: FhirAppointment) -> int | None:
    """The visit's length the Appointment asks for (minutesDuration, or end - start)."""
    if resource.end is not None and resource.start is not None:
        length = int((resource.end - resource.start).total_seconds() // 60)
        if resource.minutesDuration not in (None, length):
            raise _refused("minutesDuration", "minutesDuration and end - start disagree.")
        return length
    return resource.minutesDuration


def _kind(resource: FhirAppointment) -> str:
    """The kind of visit from serviceType (our visit-kind codes); a phone call by default."""
    codes = [
        coding.code
        for concept in resource.serviceType or []
        for coding in concept.coding or []
        if coding.system == VISIT_KIND_SYSTEM and coding.code
    ]
    return str(codes[0]) if codes else AppointmentKind.PHONE.value


def booking(resource: FhirAppointment) -> AppointmentCreate:
    """What an Appointment to create asks for, as /api/v1's booking takes it (FhirError 422
    when it cannot be booked as sent): its patient, and a Slot or a start (and nurse)."""
    if resource.status != "booked":
        raise _refused("status", "Send status booked: this server books the time at once.")
    patients, nurses = _actors(resource, "Patient"), _actors(resource, "Practitioner")
    if len(patients) != 1 or len(nurses) > 1:
        raise _refused(
            "participant", "Name one Patient/{id} participant and at most one Practitioner/{id}."
        )
    nurse_id = nurses[0] if nurses else None
    start, minutes = resource.start, _minutes(resource)
    key = _slot_key(resource)
    if key is not None:
        if nurse_id not in (None, key.nurse_id):
            raise _refused("participant", "The Practitioner is not the one whose Slot this is.")
        if (start is not None and start != key.start) or minutes not in (None, key.minutes):
            raise _refused("start", "start, end and minutesDuration must match the Slot's.")
        nurse_id, start, minutes = key.nurse_id, key.start, key.minutes
    if start is None:
        raise _refused("start", "Name a Slot, or give a start.")
    details = {
        "patient_id": patients[0],
        "nurse_id": nurse_id,
        "start": start.isoformat(),
        "duration_minutes": minutes,
        "kind": _kind(resource),
        "reason": resource.description or "",
    }
    try:
        return AppointmentCreate.model_validate(details)
    except PydanticValidationError as exc:
        issues = exc.errors(include_url=False, include_input=False, include_context=False)
        first = BOOKING_ELEMENTS.get(str(issues[0]["loc"][0]), "Appointment")
        words = "; ".join(
            f"{BOOKING_ELEMENTS.get(str(issue['loc'][0]), 'Appointment')}: {issue['msg']}"
            for issue in issues
        )
        raise FhirError(422, words, expression=first) from exc
