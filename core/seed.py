"""Demo data: the product brief's four patients and five nurses, their hours and some visits."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import SlotUnavailable
from core.models import AppointmentKind, AssignmentRole, Patient, Role, User
from core.security import generate_password
from core.services.assignments import assign_nurse, set_condition_mapping
from core.services.availability import WeeklyWindowInput, set_weekly_availability
from core.services.booking import book_appointment, free_slots
from core.services.common import Actor
from core.services.people import create_nurse, create_patient
from core.services.users import create_user

logger = logging.getLogger(__name__)

ADMIN_EMAIL = "admin@carematix.local"
COORDINATOR_EMAIL = "coordinator@carematix.local"

NURSES = [
    ("Alice", "Wilson", ["General Care"]),
    ("Michael", "Chen", ["Cardiology"]),
    ("Lisa", "Rodriguez", ["Pediatrics"]),
    ("James", "Thompson", ["Geriatrics"]),
    ("Maria", "Garcia", ["Mental Health"]),
]

# (first, last, born, phone, zone, language, conditions, sms consent, primary, backup)
PATIENTS = [
    (
        "John",
        "Smith",
        date(1958, 4, 12),
        "+12025550101",
        "America/New_York",
        "en",
        ["Diabetes", "Hypertension"],
        True,
        "Wilson",
        "Chen",
    ),
    (
        "Sarah",
        "Johnson",
        date(1985, 9, 23),
        "+12025550102",
        "America/Chicago",
        "en",
        ["Asthma", "Allergies"],
        True,
        "Wilson",
        None,
    ),
    (
        "Robert",
        "Brown",
        date(1949, 1, 30),
        "+12025550103",
        "America/New_York",
        "en",
        ["Heart Disease", "Arthritis"],
        False,
        "Chen",
        "Thompson",
    ),
    (
        "Emily",
        "Davis",
        date(1992, 6, 5),
        "+12025550104",
        "America/Los_Angeles",
        "es",
        ["Anxiety", "Depression"],
        True,
        "Garcia",
        None,
    ),
]

# Home-visit details of the demo patients, by last name (made-up streets, 555 numbers).
HOME_DETAILS: dict[str, dict[str, str]] = {
    "Smith": {
        "address_line1": "412 Maple Avenue",
        "address_city": "Arlington",
        "address_region": "VA",
        "address_postal_code": "22201",
        "emergency_contact_name": "Mary Smith",
        "emergency_contact_relationship": "Wife",
        "emergency_contact_phone": "+12025550111",
    },
    "Johnson": {
        "address_line1": "88 Lakeview Drive",
        "address_line2": "Apt 3B",
        "address_city": "Evanston",
        "address_region": "IL",
        "address_postal_code": "60201",
        "emergency_contact_name": "Tom Johnson",
        "emergency_contact_relationship": "Brother",
        "emergency_contact_phone": "+13125550112",
    },
    "Brown": {
        "address_line1": "27 Oak Street",
        "address_city": "Silver Spring",
        "address_region": "MD",
        "address_postal_code": "20910",
        "emergency_contact_name": "Linda Brown",
        "emergency_contact_relationship": "Daughter",
        "emergency_contact_phone": "+12025550113",
    },
    "Davis": {
        "address_line1": "1540 Sunset Boulevard",
        "address_line2": "Unit 12",
        "address_city": "Pasadena",
        "address_region": "CA",
        "address_postal_code": "91101",
        "emergency_contact_name": "Carlos Davis",
        "emergency_contact_relationship": "Partner",
        "emergency_contact_phone": "+16265550114",
    },
}

CONDITION_MAP = {
    "diabetes": ["general care"],
    "hypertension": ["cardiology", "general care"],
    "asthma": ["general care", "pediatrics"],
    "allergies": ["general care"],
    "heart disease": ["cardiology"],
    "arthritis": ["geriatrics"],
    "dementia": ["geriatrics"],
    "fall risk": ["geriatrics"],
    "anxiety": ["mental health"],
    "depression": ["mental health"],
}

WEEKDAY_HOURS = (time(9), time(17))
WEEKEND_HOURS = (time(10), time(14))
NURSE_ZONE = "America/New_York"


@dataclass
class SeedResult:
    """What seeding did: whether anything was created, the logins and their password."""

    created: bool
    logins: list[tuple[str, str]] = field(default_factory=list)
    password: str | None = None


def demo_windows() -> list[WeeklyWindowInput]:
    """Mon-Fri 09:00-17:00 and Sat-Sun 10:00-14:00."""
    return [
        WeeklyWindowInput(day, *(WEEKDAY_HOURS if day < 5 else WEEKEND_HOURS)) for day in range(7)
    ]


def nurse_email(first: str, last: str) -> str:
    """The demo login of a nurse."""
    return f"{first.lower()}.{last.lower()}@carematix.local"


def has_demo_data(session: Session) -> bool:
    """True once any patient or staff login exists (seeding never touches a used database)."""
    patients = session.scalar(select(func.count()).select_from(Patient)) or 0
    users = session.scalar(select(func.count()).select_from(User)) or 0
    return bool(patients or users)


def seed_demo(
    session: Session, *, now: datetime, password: str | None, alongside_data: bool = False
) -> SeedResult:
    """Create the demo data once; a second call changes nothing.

    `alongside_data` adds it to a database that already holds other records (benchmarks load
    bulk data first); by default a database in use is never touched.
    """
    if has_demo_data(session) and not alongside_data:
        return SeedResult(created=False)
    actor = Actor.system()
    password = password or generate_password()
    for condition, specializations in CONDITION_MAP.items():
        set_condition_mapping(
            session, condition=condition, specializations=specializations, actor=actor, now=now
        )
    nurses = {}
    for first, last, specializations in NURSES:
        nurse = create_nurse(
            session,
            actor=actor,
            now=now,
            first_name=first,
            last_name=last,
            title="Dr.",
            specializations=specializations,
            time_zone=NURSE_ZONE,
            email=nurse_email(first, last),
            visit_minutes=30,
            min_notice_minutes=120,
            horizon_days=60,
        )
        set_weekly_availability(session, nurse.id, demo_windows(), actor=actor, now=now)
        nurses[last] = nurse
    patients = []
    for (
        first,
        last,
        born,
        phone,
        zone_name,
        language,
        conditions,
        consent,
        primary,
        backup,
    ) in PATIENTS:
        patient = create_patient(
            session,
            actor=actor,
            now=now,
            first_name=first,
            last_name=last,
            date_of_birth=born,
            phone=phone,
            time_zone=zone_name,
            preferred_language=language,
            conditions=conditions,
            sms_consent=consent,
            **HOME_DETAILS.get(last, {}),
        )
        assign_nurse(
            session, patient_id=patient.id, nurse_id=nurses[primary].id, actor=actor, now=now
        )
        if backup:
            assign_nurse(
                session,
                patient_id=patient.id,
                nurse_id=nurses[backup].id,
                role=AssignmentRole.BACKUP,
                actor=actor,
                now=now,
            )
        patients.append((patient, nurses[primary]))
    _book_demo_visits(session, patients, now=now, actor=actor)

    logins = [(ADMIN_EMAIL, Role.ADMIN.value), (COORDINATOR_EMAIL, Role.COORDINATOR.value)]
    create_user(
        session, email=ADMIN_EMAIL, password=password, role=Role.ADMIN, actor=actor, now=now
    )
    create_user(
        session,
        email=COORDINATOR_EMAIL,
        password=password,
        role=Role.COORDINATOR,
        actor=actor,
        now=now,
    )
    for first, last, _ in NURSES:
        email = nurse_email(first, last)
        create_user(
            session,
            email=email,
            password=password,
            role=Role.NURSE,
            nurse_id=nurses[last].id,
            actor=actor,
            now=now,
        )
        logins.append((email, Role.NURSE.value))
    session.flush()
    logger.info("demo data created: %d nurses, %d patients", len(nurses), len(patients))
    return SeedResult(created=True, logins=logins, password=password)


def _book_demo_visits(session: Session, patients: list, *, now: datetime, actor: Actor) -> None:
    """Two visits per patient in the coming days, at free times found by the engine itself."""
    kinds = [AppointmentKind.PHONE, AppointmentKind.VIDEO, AppointmentKind.HOME_VISIT]
    for index, (patient, nurse) in enumerate(patients):
        for day_offset in (1 + index % 3, 4 + index % 3):
            window_start = now + timedelta(days=day_offset)
            slots = free_slots(
                session, nurse.id, start=window_start, end=window_start + timedelta(days=2), now=now
            )
            if not slots:
                continue
            slot = slots[(index * 5) % len(slots)]
            try:
                book_appointment(
                    session,
                    patient_id=patient.id,
                    start=slot.start,
                    actor=actor,
                    now=now,
                    kind=kinds[(index + day_offset) % 3],
                    reason="Routine check-in",
                )
            except SlotUnavailable:
                logger.warning("demo visit skipped: slot no longer free")
