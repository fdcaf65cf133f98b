"""The database itself refuses double booking, even for raw SQL that bypasses the application."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import psycopg
import pytest
from sqlalchemy import Engine, bindparam, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import UTCDateTime
from core.models import Nurse, Patient

DAY = date(2025, 3, 3)

_COLUMNS = (
    "nurse_id, patient_id, start_at, end_at, status, kind, reason, source, created_by, "
    "sequence, created_at"
)
INSERT_APPOINTMENT = text(
    f"INSERT INTO appointments ({_COLUMNS}) VALUES (:nurse_id, :patient_id, :start_at, :end_at, "
    ":status, 'phone', '', 'cli', 'raw sql', 0, :created_at) RETURNING id"
).bindparams(
    # Typed only so each backend receives its own storage format, as the application writes it.
    bindparam("start_at", type_=UTCDateTime()),
    bindparam("end_at", type_=UTCDateTime()),
    bindparam("created_at", type_=UTCDateTime()),
)
MOVE_APPOINTMENT = text(
    "UPDATE appointments SET start_at = :start_at, end_at = :end_at WHERE id = :id"
).bindparams(bindparam("start_at", type_=UTCDateTime()), bindparam("end_at", type_=UTCDateTime()))
SET_STATUS = text("UPDATE appointments SET status = :status WHERE id = :id")


def at(hour: int, minute: int = 0) -> datetime:
    """An instant on the test day, in UTC."""
    return datetime(DAY.year, DAY.month, DAY.day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class People:
    nurse_id: int
    other_nurse_id: int
    patient_id: int


@pytest.fixture
def people(session: Session, frozen_now: datetime) -> People:
    """Two nurses and a patient, committed (the ORM is fine here: they are not under test)."""
    nurse = Nurse(first_name="Ada", last_name="Nurse", time_zone="UTC", created_at=frozen_now)
    other = Nurse(first_name="Bea", last_name="Nurse", time_zone="UTC", created_at=frozen_now)
    patient = Patient(
        first_name="Cy",
        last_name="Patient",
        date_of_birth=date(1950, 1, 1),
        phone="+15555550100",
        time_zone="UTC",
        created_at=frozen_now,
    )
    session.add_all([nurse, other, patient])
    session.commit()
    return People(nurse_id=nurse.id, other_nurse_id=other.id, patient_id=patient.id)


def insert(
    engine: Engine,
    nurse_id: int,
    patient_id: int,
    start: datetime,
    end: datetime,
    status: str = "scheduled",
) -> int:
    """Insert an appointment with raw SQL in its own transaction; return its id."""
    with engine.begin() as connection:
        return connection.execute(
            INSERT_APPOINTMENT,
            {
                "nurse_id": nurse_id,
                "patient_id": patient_id,
                "start_at": start,
                "end_at": end,
                "status": status,
                "created_at": at(8),
            },
        ).scalar_one()


def insert_literal(engine: Engine, nurse_id: int, patient_id: int, start: str, end: str) -> None:
    """Insert a scheduled appointment whose instants are SQL string literals, as a script might."""
    values = f":nurse_id, :patient_id, '{start}', '{end}', 'scheduled', 'phone', '', 'cli', "
    values += "'raw sql', 0, :created_at"
    statement = text(f"INSERT INTO appointments ({_COLUMNS}) VALUES ({values})").bindparams(
        bindparam("created_at", type_=UTCDateTime())
    )
    with engine.begin() as connection:
        connection.execute(
            statement, {"nurse_id": nurse_id, "patient_id": patient_id, "created_at": at(8)}
        )


def assert_backstop(error: pytest.ExceptionInfo[IntegrityError], engine: Engine) -> None:
    """The refusal came from the overlap backstop, not from some other constraint."""
    orig = error.value.orig
    if engine.dialect.name == "postgresql":
        assert isinstance(orig, psycopg.errors.ExclusionViolation)
        assert orig.diag.constraint_name == "ex_appointments_no_overlap"
    else:
        assert "overlaps another scheduled appointment for this nurse" in str(orig)


def scheduled_count(engine: Engine) -> int:
    """How many scheduled appointments exist."""
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT count(*) FROM appointments WHERE status = 'scheduled'")
        ).scalar_one()


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param(at(10, 15), at(10, 45), id="partial-overlap-after"),
        pytest.param(at(9, 45), at(10, 1), id="partial-overlap-before"),
        pytest.param(at(10), at(10, 30), id="identical"),
        pytest.param(at(10, 5), at(10, 10), id="inside"),
        pytest.param(at(9), at(12), id="around"),
    ],
)
def test_raw_insert_overlapping_a_scheduled_visit_is_refused(
    engine: Engine, people: People, start: datetime, end: datetime
) -> None:
    insert(engine, people.nurse_id, people.patient_id, at(10), at(10, 30))

    with pytest.raises(IntegrityError) as error:
        insert(engine, people.nurse_id, people.patient_id, start, end)

    assert_backstop(error, engine)
    assert scheduled_count(engine) == 1


def test_back_to_back_visits_are_accepted(engine: Engine, people: People) -> None:
    insert(engine, people.nurse_id, people.patient_id, at(10), at(10, 30))

    insert(engine, people.nurse_id, people.patient_id, at(10, 30), at(11))
    insert(engine, people.nurse_id, people.patient_id, at(9, 30), at(10))

    assert scheduled_count(engine) == 3


def test_overlap_with_another_nurses_visit_is_accepted(engine: Engine, people: People) -> None:
    insert(engine, people.nurse_id, people.patient_id, at(10), at(10, 30))

    insert(engine, people.other_nurse_id, people.patient_id, at(10), at(10, 30))

    assert scheduled_count(engine) == 2


def test_overlapping_cancelled_row_is_accepted(engine: Engine, people: People) -> None:
    insert(engine, people.nurse_id, people.patient_id, at(10), at(10, 30))

    insert(engine, people.nurse_id, people.patient_id, at(10, 15), at(10, 45), status="cancelled")

    assert scheduled_count(engine) == 1


def test_cancelled_visit_no_longer_blocks_its_slot(engine: Engine, people: People) -> None:
    first = insert(engine, people.nurse_id, people.patient_id, at(10), at(10, 30))
    with engine.begin() as connection:
        connection.execute(SET_STATUS, {"status": "cancelled", "id": first})

    insert(engine, people.nurse_id, people.patient_id, at(10), at(10, 30))

    assert scheduled_count(engine) == 1


def test_update_moving_a_visit_onto_another_is_refused(engine: Engine, people: People) -> None:
    insert(engine, people.nurse_id, people.patient_id, at(10), at(10, 30))
    later = insert(engine, people.nurse_id, people.patient_id, at(11), at(11, 30))

    with pytest.raises(IntegrityError) as error, engine.begin() as connection:
        connection.execute(
            MOVE_APPOINTMENT, {"start_at": at(10, 15), "end_at": at(10, 45), "id": later}
        )

    assert_backstop(error, engine)


def test_update_moving_a_visit_to_another_nurse_who_is_busy_is_refused(
    engine: Engine, people: People
) -> None:
    insert(engine, people.nurse_id, people.patient_id, at(10), at(10, 30))
    theirs = insert(engine, people.other_nurse_id, people.patient_id, at(10), at(10, 30))

    with pytest.raises(IntegrityError) as error, engine.begin() as connection:
        connection.execute(
            text("UPDATE appointments SET nurse_id = :nurse_id WHERE id = :id"),
            {"nurse_id": people.nurse_id, "id": theirs},
        )

    assert_backstop(error, engine)


def test_reactivating_a_cancelled_overlapping_visit_is_refused(
    engine: Engine, people: People
) -> None:
    insert(engine, people.nurse_id, people.patient_id, at(10), at(10, 30))
    cancelled = insert(
        engine, people.nurse_id, people.patient_id, at(10, 15), at(10, 45), status="cancelled"
    )

    with pytest.raises(IntegrityError) as error, engine.begin() as connection:
        connection.execute(SET_STATUS, {"status": "scheduled", "id": cancelled})

    assert_backstop(error, engine)


def test_a_visit_can_be_moved_over_its_own_time(engine: Engine, people: People) -> None:
    own = insert(engine, people.nurse_id, people.patient_id, at(10), at(10, 30))
    insert(engine, people.nurse_id, people.patient_id, at(11), at(11, 30))

    with engine.begin() as connection:
        connection.execute(MOVE_APPOINTMENT, {"start_at": at(10, 15), "end_at": at(11), "id": own})

    assert scheduled_count(engine) == 2


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param("2025-03-03T10:15:00Z", "2025-03-03T10:45:00Z", id="T-Z"),
        pytest.param("2025-03-03T10:15:00+00:00", "2025-03-03T10:45:00+00:00", id="T-utc-offset"),
        pytest.param("2025-03-03T05:15:00-05:00", "2025-03-03T05:45:00-05:00", id="T-minus-5"),
        pytest.param(
            "2025-03-03T12:15:00.000+02:00", "2025-03-03T12:45:00.000+02:00", id="T-plus-2"
        ),
        pytest.param("2025-03-03 10:15:00", "2025-03-03 10:45:00", id="no-fraction"),
    ],
)
def test_raw_insert_in_other_iso_formats_is_still_refused(
    engine: Engine, people: People, start: str, end: str
) -> None:
    insert(engine, people.nurse_id, people.patient_id, at(10), at(10, 30))

    with pytest.raises(IntegrityError) as error:
        insert_literal(engine, people.nurse_id, people.patient_id, start, end)

    assert_backstop(error, engine)


def test_rows_in_other_iso_formats_still_block_the_applications_format(
    engine: Engine, people: People
) -> None:
    # 05:00-05:30 at UTC-5 is 10:00-10:30Z; as text it would sort before 10:15.
    insert_literal(
        engine,
        people.nurse_id,
        people.patient_id,
        "2025-03-03T05:00:00-05:00",
        "2025-03-03T05:30:00-05:00",
    )

    with pytest.raises(IntegrityError) as error:
        insert(engine, people.nurse_id, people.patient_id, at(10, 15), at(10, 45))

    assert_backstop(error, engine)


def test_back_to_back_across_iso_formats_is_accepted(engine: Engine, people: People) -> None:
    insert(engine, people.nurse_id, people.patient_id, at(10), at(10, 30))

    # 05:30-06:00 at UTC-5 is 10:30-11:00Z: it touches the first visit but does not overlap it.
    insert_literal(
        engine,
        people.nurse_id,
        people.patient_id,
        "2025-03-03T05:30:00-05:00",
        "2025-03-03T06:00:00-05:00",
    )

    assert scheduled_count(engine) == 2


def test_raw_insert_ending_before_it_starts_is_refused_whatever_the_format(
    engine: Engine, people: People
) -> None:
    # 10:30+02:00 is 08:30Z, before the 10:00Z start, though as text it sorts after it.
    with pytest.raises(IntegrityError):
        insert_literal(
            engine,
            people.nurse_id,
            people.patient_id,
            "2025-03-03 10:00:00.000000",
            "2025-03-03T10:30:00+02:00",
        )

    assert scheduled_count(engine) == 0


# SQLite only: PostgreSQL's timestamptz refuses such text itself, before any constraint.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_refuses_instants_it_cannot_compare(engine: Engine, people: People) -> None:
    with pytest.raises(IntegrityError, match="must be ISO-8601 date-times"):
        insert_literal(engine, people.nurse_id, people.patient_id, "tomorrow 10am", "tomorrow 11am")

    assert scheduled_count(engine) == 0
