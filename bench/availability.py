"""Availability and booking latency on PostgreSQL at production size.

Loads 1,000 nurses, 20,000 patients and 1,000,000 appointments (about two years of history
and the next 60 days) into a dedicated database with COPY, then times the two calls every
scheduling conversation makes, from a single client, as a web request would run them:

* free slots: `free_slots` for one nurse over the next 14 days, in its own transaction;
* book: `book_appointment` for a patient at a free slot of the assigned nurse, commit included;
* series: `book_series` for a weekly visit over 52 weeks (every occurrence checked by the
  engine, the free ones booked, commit included). Only this scenario lets nurses take bookings
  a year ahead (the loaded horizon is 60 days); the change is put back with the bookings.

`now` is frozen at the data's reference time, so every run sees the same data. The database
is left loaded; `--keep` reuses it when it already holds exactly this data set. Bookings made
while measuring are deleted after each chunk of calls, so the data stays as loaded.

The machine may be shared: calls are measured in chunks, and a chunk during which other
processes took more than 10% of the CPU is measured again (for up to `--patience` seconds
per scenario).

    .venv/bin/python bench/availability.py [--keep] [--iterations 500]

Figures are printed, with the targets (docs/performance.md); nothing is asserted, and the
exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from sqlalchemy import Engine, event, make_url, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bench._common import (  # noqa: E402
    Summary,
    machine_description,
    print_table,
    summarize,
    verdict,
)
from core.config import resolve_database_url  # noqa: E402
from core.db import make_engine, make_session_factory, transaction  # noqa: E402
from core.errors import SlotUnavailable  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.models import SeriesBookMode, Weekday  # noqa: E402
from core.operations import SeriesDetails  # noqa: E402
from core.scheduling import local_to_utc, zone  # noqa: E402
from core.services.booking import book_appointment, free_slots  # noqa: E402
from core.services.common import Actor  # noqa: E402
from core.services.series import book_series  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/carematix_bench"

# The data's reference time: "now" for every measured call, and the split between history
# and the future in the generated appointments.
REFERENCE_NOW = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
HISTORY_DAYS = 730
FUTURE_DAYS = 60
SLOT_WINDOW = timedelta(days=14)

# Bump when the generated data changes, so `--keep` reloads instead of reusing stale data.
DATA_VERSION = 1
FINGERPRINT_PREFIX = "carematix-bench availability"
# Session advisory lock held for a whole run: a second run on the same database (say, a
# `make bench` started meanwhile) waits instead of truncating the data under the first.
RUN_LOCK_KEY = 0x63617265_6D617478

TARGET_FREE_SLOTS_P99_MS = 20.0
TARGET_BOOK_P99_MS = 30.0
TARGET_SERIES_P99_MS = 150.0
SERIES_WEEKS = 52
LOADED_HORIZON_DAYS = 60
SERIES_HORIZON_DAYS = 400

ZONES = (
    "America/New_York",
    "America/New_York",
    "America/New_York",
    "America/Chicago",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Australia/Sydney",
)
# The standard week: Mon-Fri 09:00-17:00, Sat-Sun 10:00-14:00, as minutes of the local day.
WEEKDAY_WINDOW = (9 * 60, 17 * 60)
WEEKEND_WINDOW = (10 * 60, 14 * 60)
CELL_MINUTES = 30  # history is laid on a 30-minute grid, so visits never overlap
LONG_VISIT_SHARE = 0.10  # share of 60-minute visits (two adjacent cells)
CONDITIONS = ("Diabetes", "Hypertension", "Heart Disease", "Asthma", "Arthritis", "Dementia")
KINDS = ("phone", "phone", "video", "home_visit")

APPOINTMENT_COLUMNS = (
    "id",
    "nurse_id",
    "patient_id",
    "start_at",
    "end_at",
    "status",
    "kind",
    "reason",
    "source",
    "idempotency_key",
    "rescheduled_from_id",
    "call_id",
    "cancel_reason",
    "cancel_note",
    "cancelled_by",
    "cancelled_at",
    "created_by_user_id",
    "created_by",
    "sequence",
    "created_at",
    "updated_at",
)


# ---------------------------------------------------------------- connection helpers


def conninfo(url: str, database: str | None = None) -> str:
    """A libpq URL for psycopg from a SQLAlchemy URL, optionally for another database."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def ensure_database(url: str) -> bool:
    """Create the bench database if it is missing; True when it was created."""
    name = make_url(url).database
    if not name:
        raise SystemExit("the database URL names no database")
    last_error: Exception | None = None
    for admin_db in ("postgres", "test", "template1"):
        try:
            admin = psycopg.connect(conninfo(url, admin_db), autocommit=True)
        except psycopg.OperationalError as exc:
            last_error = exc
            continue
        with admin:
            exists = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists:
                return False
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    raise SystemExit(f"cannot reach an administrative database to create {name!r}: {last_error}")


def scalar(conn: psycopg.Connection[Any], query: Any, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row of a query that always returns one."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {query!r}")
    return row[0]


def hold_run_lock(url: str) -> psycopg.Connection[Any]:
    """Take the bench's advisory lock on its database, waiting for another run to finish."""
    conn = psycopg.connect(conninfo(url), autocommit=True)
    if not scalar(conn, "SELECT pg_try_advisory_lock(%s)", (RUN_LOCK_KEY,)):
        print("another bench run holds this database; waiting for it to finish ...", flush=True)
        conn.execute("SELECT pg_advisory_lock(%s)", (RUN_LOCK_KEY,))
    return conn


class CpuWatch:
    """How much CPU other processes take while we measure (they inflate the tails).

    Machine-wide busy time from /proc/stat, less this process and the PostgreSQL backends
    serving the bench database (so a local server only); steal time counts as other work.
    Readings are None where /proc cannot be read.
    """

    def __init__(self, url: str) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")
        self.conn = psycopg.connect(conninfo(url), autocommit=True)
        self.started: tuple[float, float, float, dict[int, float]] | None = None

    def close(self) -> None:
        self.conn.close()

    def _machine(self) -> tuple[float, float]:
        """(busy, total) CPU seconds of the whole machine since boot."""
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [float(v) for v in stat.readline().split()[1:9]]
        idle = fields[3] + fields[4]  # idle + iowait
        return (sum(fields) - idle) / self.tick, sum(fields) / self.tick

    def _backends(self) -> dict[int, float]:
        """CPU seconds of each backend connected to the bench database."""
        pids = [
            row[0]
            for row in self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            ).fetchall()
        ]
        used = {}
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used[pid] = (float(fields[11]) + float(fields[12])) / self.tick  # utime + stime
        return used

    @staticmethod
    def _own() -> float:
        times = os.times()
        return times.user + times.system

    def start(self) -> None:
        try:
            busy, total = self._machine()
            self.started = (busy, total, self._own(), self._backends())
        except (OSError, ValueError, IndexError):
            self.started = None

    def others_share(self) -> float | None:
        """Share of the machine's CPU (0..1) that other work used since start()."""
        if self.started is None:
            return None
        try:
            backends = self._backends()
            busy, total = self._machine()
        except (OSError, ValueError, IndexError):
            return None
        busy0, total0, own0, backends0 = self.started
        ours = self._own() - own0
        ours += sum(max(0.0, t - backends0.get(pid, 0.0)) for pid, t in backends.items())
        if total <= total0:
            return None
        return min(1.0, max(0.0, (busy - busy0 - ours) / (total - total0)))


# ---------------------------------------------------------------- the data set


@dataclass(frozen=True)
class Sizes:
    nurses: int
    patients: int
    appointments: int
    seed: int

    def fingerprint(self) -> str:
        """What the database comment records about the loaded data."""
        return (
            f"{FINGERPRINT_PREFIX} v{DATA_VERSION} nurses={self.nurses} "
            f"patients={self.patients} appointments={self.appointments} seed={self.seed} "
            f"now={REFERENCE_NOW.isoformat()}"
        )

    def primary_nurse(self, patient_id: int) -> int:
        """The nurse the generator makes this patient's primary."""
        return (patient_id - 1) % self.nurses + 1

    def backup_nurse(self, patient_id: int) -> int | None:
        """Every other patient has a backup: the next nurse."""
        if patient_id % 2 or self.nurses < 2:
            return None
        return self.primary_nurse(patient_id) % self.nurses + 1

    def patients_of(self, nurse_id: int) -> list[int]:
        """The patients whose primary is this nurse."""
        return list(range(nurse_id, self.patients + 1, self.nurses))

    def zone_of(self, nurse_id: int) -> str:
        """The nurse's IANA zone."""
        return ZONES[nurse_id % len(ZONES)]


@dataclass
class NurseOverrides:
    """One nurse's generated overrides, kept to keep history clear of time off."""

    days_off: set[date] = field(default_factory=set)
    partial_off: dict[date, tuple[int, int]] = field(default_factory=dict)
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def allows(self, day: date, minute: int, length: int) -> bool:
        """Whether a visit at this local date and minute avoids the nurse's time off."""
        if day in self.days_off:
            return False
        off = self.partial_off.get(day)
        return off is None or minute + length <= off[0] or off[1] <= minute


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, datetime):
        return value.isoformat(" ")
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def copy_rows(
    cursor: psycopg.Cursor[Any], table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """COPY rows (text format) into a table truncated in this transaction; returns the count."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FREEZE)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    count = 0
    with cursor.copy(statement) as copy:
        buffer: list[str] = []
        for row in rows:
            buffer.append("\t".join(_copy_value(v) for v in row))
            count += 1
            if len(buffer) >= 10_000:
                copy.write("\n".join(buffer) + "\n")
                buffer.clear()
        if buffer:
            copy.write("\n".join(buffer) + "\n")
    return count


def copy_lines(
    cursor: psycopg.Cursor[Any], table: str, columns: Sequence[str], lines: Iterator[str]
) -> int:
    """COPY pre-formatted text lines (the fast path for the big table)."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FREEZE)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    count = 0
    with cursor.copy(statement) as copy:
        buffer: list[str] = []
        for line in lines:
            buffer.append(line)
            if len(buffer) >= 20_000:
                copy.write("".join(buffer))
                count += len(buffer)
                buffer.clear()
        if buffer:
            copy.write("".join(buffer))
            count += len(buffer)
    return count


class Generator:
    """Deterministic bench data for a given size and seed."""

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        self.rng = random.Random(sizes.seed)
        self.today = REFERENCE_NOW.date()
        self.first_day = self.today - timedelta(days=HISTORY_DAYS)
        self.last_day = self.today + timedelta(days=FUTURE_DAYS)
        self.setup_time = REFERENCE_NOW - timedelta(days=HISTORY_DAYS + 90)
        self.overrides: dict[int, NurseOverrides] = {}

    def nurses(self) -> Iterator[tuple[Any, ...]]:
        for n in range(1, self.sizes.nurses + 1):
            yield (
                n,
                "Nurse",
                f"N{n:05d}",
                "RN",
                json.dumps(["General Care"] if n % 3 else ["Cardiology", "Geriatrics"]),
                f"+1555{n:07d}",
                f"nurse{n}@bench.carematix.invalid",
                self.sizes.zone_of(n),
                30,  # visit_minutes
                0,  # buffer_before_minutes
                10 if n % 5 == 0 else 0,  # buffer_after_minutes
                120,  # min_notice_minutes
                LOADED_HORIZON_DAYS,  # horizon_days
                8 if n % 10 == 3 else None,  # daily_cap
                15,  # slot_step_minutes
                True,
                self.setup_time,
                None,
            )

    def availability(self) -> Iterator[tuple[Any, ...]]:
        row_id = 0
        for n in range(1, self.sizes.nurses + 1):
            for weekday in range(7):
                start, end = WEEKDAY_WINDOW if weekday < 5 else WEEKEND_WINDOW
                row_id += 1
                yield (row_id, n, weekday, _clock(start), _clock(end), None, None)

    def availability_overrides(self) -> Iterator[tuple[Any, ...]]:
        """Per nurse: 6 spells of days off, 6 afternoons off, 4 evenings of extra hours."""
        rng = self.rng
        span = (self.last_day - self.first_day).days
        row_id = 0
        for n in range(1, self.sizes.nurses + 1):
            mine = NurseOverrides()
            for _ in range(6):
                first = self.first_day + timedelta(days=rng.randrange(span))
                last = first + timedelta(days=rng.randint(0, 4))
                mine.days_off.update(
                    first + timedelta(days=d) for d in range((last - first).days + 1)
                )
                mine.rows.append(("time_off", first, last, None, None, "Leave"))
            for _ in range(6):
                day = self.first_day + timedelta(days=rng.randrange(span))
                mine.partial_off[day] = (12 * 60, 14 * 60)
                mine.rows.append(
                    ("time_off", day, day, _clock(12 * 60), _clock(14 * 60), "Training")
                )
            for _ in range(4):
                day = self.first_day + timedelta(days=rng.randrange(span))
                start, end = (14 * 60, 17 * 60) if day.weekday() >= 5 else (17 * 60, 19 * 60)
                mine.rows.append(("extra_hours", day, day, _clock(start), _clock(end), "Cover"))
            self.overrides[n] = mine
            for kind, first, last, start_time, end_time, reason in mine.rows:
                row_id += 1
                created = datetime.combine(first, datetime.min.time(), UTC) - timedelta(days=14)
                yield (row_id, n, kind, first, last, start_time, end_time, reason, None, created)

    def patients(self) -> Iterator[tuple[Any, ...]]:
        rng = self.rng
        for p in range(1, self.sizes.patients + 1):
            nurse = self.sizes.primary_nurse(p)
            born = date(1930, 1, 1) + timedelta(days=rng.randrange(75 * 365))
            yield (
                p,
                "Patient",
                f"P{p:06d}",
                born,
                f"+1202{p:07d}",
                f"patient{p}@example.invalid" if rng.random() < 0.6 else None,
                self.sizes.zone_of(nurse),
                "es" if p % 7 == 0 else "en",
                json.dumps(rng.sample(CONDITIONS, rng.randint(1, 3))),
                rng.random() < 0.7,
                "",
                self.setup_time,
                None,
            )

    def assignments(self) -> Iterator[tuple[Any, ...]]:
        valid_from = self.first_day - timedelta(days=30)
        row_id = 0
        for p in range(1, self.sizes.patients + 1):
            row_id += 1
            yield (
                row_id,
                p,
                self.sizes.primary_nurse(p),
                "primary",
                valid_from,
                None,
                "system",
                None,
                self.setup_time,
            )
            backup = self.sizes.backup_nurse(p)
            if backup is not None:
                row_id += 1
                yield (
                    row_id,
                    p,
                    backup,
                    "backup",
                    valid_from,
                    None,
                    "system",
                    None,
                    self.setup_time,
                )

    def users(self) -> Iterator[tuple[Any, ...]]:
        for n in range(1, self.sizes.nurses + 1):
            yield (
                n,
                f"nurse{n}@bench.carematix.invalid",
                "!bench-no-login",
                "nurse",
                n,
                True,
                0,
                None,
                None,
                self.setup_time,
            )
        yield (
            self.sizes.nurses + 1,
            "coordinator@bench.carematix.invalid",
            "!bench-no-login",
            "coordinator",
            None,
            True,
            0,
            None,
            None,
            self.setup_time,
        )

    # -------------------------------------------------------- appointments

    def _cells(self) -> list[tuple[date, int]]:
        """Every (local date, minute) a visit may start on, in time order."""
        cells: list[tuple[date, int]] = []
        for offset in range((self.last_day - self.first_day).days + 1):
            day = self.first_day + timedelta(days=offset)
            start, end = WEEKDAY_WINDOW if day.weekday() < 5 else WEEKEND_WINDOW
            cells.extend((day, minute) for minute in range(start, end, CELL_MINUTES))
        return cells

    def _plan(self, cells: list[tuple[date, int]]) -> list[tuple[int, int, int]]:
        """(cell index, nurse, minutes) for every appointment, sorted by time then nurse."""
        rng = self.rng
        total, nurses = self.sizes.appointments, self.sizes.nurses
        plan: list[tuple[int, int, int]] = []
        for n in range(1, nurses + 1):
            want = total // nurses + (1 if n <= total % nurses else 0)
            mine = self.overrides[n]
            picked = rng.sample(range(len(cells)), min(len(cells), int(want * 1.2) + 20))
            chosen = sorted([i for i in picked if mine.allows(*cells[i], CELL_MINUTES)][:want])
            if len(chosen) < want:
                raise SystemExit(f"nurse {n}: only {len(chosen)} free cells for {want} visits")
            taken = set(chosen)
            for i in chosen:
                minutes = CELL_MINUTES
                if (
                    rng.random() < LONG_VISIT_SHARE
                    and i + 1 < len(cells)
                    and i + 1 not in taken
                    and cells[i + 1] == (cells[i][0], cells[i][1] + CELL_MINUTES)
                    and mine.allows(*cells[i], 2 * CELL_MINUTES)
                ):
                    minutes = 2 * CELL_MINUTES
                    taken.add(i + 1)
                plan.append((i, n, minutes))
        plan.sort()
        return plan

    def appointment_lines(self) -> Iterator[str]:
        """COPY text lines, ordered by start time (roughly the order they were written)."""
        rng = self.rng
        cells = self._cells()
        plan = self._plan(cells)
        now = REFERENCE_NOW
        zones = {name: zone(name) for name in set(ZONES)}
        starts: dict[tuple[int, str], datetime] = {}
        patients = {n: self.sizes.patients_of(n) for n in range(1, self.sizes.nurses + 1)}
        for appointment_id, (cell, nurse, minutes) in enumerate(plan, start=1):
            zone_name = self.sizes.zone_of(nurse)
            key = (cell, zone_name)
            start = starts.get(key)
            if start is None:
                day, minute = cells[cell]
                start = starts[key] = local_to_utc(day, minute, zones[zone_name])
            end = start + timedelta(minutes=minutes)
            created = start - timedelta(days=rng.randint(1, 28), minutes=rng.randrange(1440))
            if created >= now:
                created = now - timedelta(minutes=rng.randint(1, 7 * 1440))
            r = rng.random()
            cancel_reason = cancelled_by = cancelled_at = updated_at = None
            sequence = 0
            if start >= now:
                status = "scheduled" if r < 0.9 else "cancelled"
            elif end > now or (now - start < timedelta(days=3) and r < 0.5):
                status = "scheduled"  # in progress, or not yet closed by the nurse
            elif r < 0.80:
                status, updated_at, sequence = "completed", end, 1
            elif r < 0.92:
                status = "cancelled"
            elif r < 0.97:
                status, updated_at, sequence = "no_show", end, 1
            else:
                status, updated_at, sequence = "entered_in_error", end, 1
            if status == "cancelled":
                cancelled_at = created + (start - created) * rng.random()
                cancel_reason, cancelled_by, updated_at, sequence = (
                    "patient_request",
                    "agent",
                    cancelled_at,
                    1,
                )
            agent = r * 7 % 1 < 0.6
            source = "agent" if agent else "dashboard"
            yield (
                "\t".join(
                    (
                        str(appointment_id),
                        str(nurse),
                        str(rng.choice(patients[nurse])),
                        start.isoformat(" "),
                        end.isoformat(" "),
                        status,
                        KINDS[appointment_id % len(KINDS)],
                        "Routine check-in",
                        source,
                        f"hist:{appointment_id}" if agent else "\\N",
                        "\\N",
                        "\\N",
                        cancel_reason or "\\N",
                        "" if cancel_reason else "\\N",
                        cancelled_by or "\\N",
                        cancelled_at.isoformat(" ") if cancelled_at else "\\N",
                        "\\N",
                        "agent" if agent else "coordinator",
                        str(sequence),
                        created.isoformat(" "),
                        updated_at.isoformat(" ") if updated_at else "\\N",
                    )
                )
                + "\n"
            )


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}:00"


# ---------------------------------------------------------------- loading


def _secondary_schema(
    cursor: psycopg.Cursor[Any], table: str
) -> tuple[list[tuple[str, str]], list[str]]:
    """Constraints (unique, exclusion, foreign key) and plain indexes of a table, as DDL."""
    constraints = cursor.execute(
        """
        SELECT conname, pg_get_constraintdef(oid)
        FROM pg_constraint
        WHERE conrelid = %s::regclass AND contype IN ('u', 'x', 'f')
        ORDER BY CASE contype WHEN 'f' THEN 1 ELSE 0 END, conname
        """,
        (table,),
    ).fetchall()
    indexes = [
        row[0]
        for row in cursor.execute(
            """
            SELECT pg_get_indexdef(i.indexrelid)
            FROM pg_index AS i
            WHERE i.indrelid = %s::regclass
              AND NOT EXISTS (
                  SELECT 1 FROM pg_constraint AS c
                  WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid
              )
            ORDER BY i.indexrelid
            """,
            (table,),
        ).fetchall()
    ]
    return constraints, indexes


def load(url: str, sizes: Sizes) -> dict[str, float]:
    """Replace the bench data with a fresh data set; returns seconds per phase."""
    phases: dict[str, float] = {}
    started = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        phases[name] = now - started
        started = now

    generator = Generator(sizes)
    with psycopg.connect(conninfo(url)) as conn, conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '512MB'")
        tables = [
            row[0]
            for row in cur.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            ).fetchall()
        ]
        cur.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(map(sql.Identifier, tables))
            )
        )
        # Building the appointments indexes and the exclusion constraint once after COPY is
        # far faster than maintaining them row by row; they are re-created from their own
        # definitions (and so re-validated) below.
        constraints, indexes = _secondary_schema(cur, "appointments")
        for name, _ in reversed(constraints):
            cur.execute(
                sql.SQL("ALTER TABLE appointments DROP CONSTRAINT {}").format(sql.Identifier(name))
            )
        index_names = [
            row[0]
            for row in cur.execute(
                """
                SELECT c.relname FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
                WHERE i.indrelid = 'appointments'::regclass AND NOT i.indisprimary
                """
            ).fetchall()
        ]
        for name in index_names:
            cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        mark("truncate")

        copy_rows(
            cur,
            "nurses",
            (
                "id",
                "first_name",
                "last_name",
                "title",
                "specializations",
                "phone",
                "email",
                "time_zone",
                "visit_minutes",
                "buffer_before_minutes",
                "buffer_after_minutes",
                "min_notice_minutes",
                "horizon_days",
                "daily_cap",
                "slot_step_minutes",
                "active",
                "created_at",
                "updated_at",
            ),
            generator.nurses(),
        )
        copy_rows(
            cur,
            "nurse_availability",
            (
                "id",
                "nurse_id",
                "weekday",
                "start_time",
                "end_time",
                "valid_from",
                "valid_to",
            ),
            generator.availability(),
        )
        copy_rows(
            cur,
            "nurse_availability_overrides",
            (
                "id",
                "nurse_id",
                "kind",
                "start_date",
                "end_date",
                "start_time",
                "end_time",
                "reason",
                "created_by_user_id",
                "created_at",
            ),
            generator.availability_overrides(),
        )
        copy_rows(
            cur,
            "users",
            (
                "id",
                "email",
                "password_hash",
                "role",
                "nurse_id",
                "active",
                "failed_logins",
                "locked_until",
                "last_login_at",
                "created_at",
            ),
            generator.users(),
        )
        copy_rows(
            cur,
            "patients",
            (
                "id",
                "first_name",
                "last_name",
                "date_of_birth",
                "phone",
                "email",
                "time_zone",
                "preferred_language",
                "conditions",
                "sms_consent",
                "notes",
                "created_at",
                "updated_at",
            ),
            generator.patients(),
        )
        copy_rows(
            cur,
            "patient_nurse_assignments",
            (
                "id",
                "patient_id",
                "nurse_id",
                "role",
                "valid_from",
                "valid_to",
                "source",
                "created_by_user_id",
                "created_at",
            ),
            generator.assignments(),
        )
        mark("nurses, patients, assignments, overrides")

        loaded = copy_lines(cur, "appointments", APPOINTMENT_COLUMNS, generator.appointment_lines())
        if loaded != sizes.appointments:
            raise SystemExit(f"loaded {loaded} appointments, expected {sizes.appointments}")
        mark("appointments (generate + COPY)")

        for statement in indexes:
            cur.execute(statement)
        for name, definition in constraints:
            cur.execute(
                sql.SQL("ALTER TABLE appointments ADD CONSTRAINT {} {}").format(
                    sql.Identifier(name), sql.SQL(definition)
                )
            )
        after = _secondary_schema(cur, "appointments")
        if sorted(after[0]) != sorted(constraints) or sorted(after[1]) != sorted(indexes):
            raise SystemExit("the appointments indexes or constraints did not come back as before")
        mark("indexes + constraints (incl. exclusion)")

        # Tables keyed by something else (voice_instances: a name) have no sequence to move.
        serial = [
            row[0]
            for row in cur.execute(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND column_name = 'id' AND column_default LIKE 'nextval(%'"
            ).fetchall()
        ]
        for table in (t for t in tables if t in serial):
            cur.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({t}, 'id'), "
                    "COALESCE((SELECT max(id) FROM {i}), 0) + 1, false)"
                ).format(t=sql.Literal(table), i=sql.Identifier(table))
            )
        cur.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(make_url(url).database or ""), sql.Literal(sizes.fingerprint())
            )
        )
        conn.commit()
        mark("commit")

    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    mark("vacuum + analyze")
    return phases


def loaded_fingerprint(url: str) -> str | None:
    """The data set recorded on the database, if a complete load finished."""
    with psycopg.connect(conninfo(url)) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname = current_database()"
        ).fetchone()
    return row[0] if row else None


def remove_bench_writes(url: str, sizes: Sizes) -> int:
    """Delete what measuring booked (appointments past the loaded ids, their outbox, audit)."""
    with psycopg.connect(conninfo(url)) as conn:
        # Nothing references these rows once the outbox is gone; skipping the foreign-key
        # triggers spares one scan of the whole table per row (appointments.rescheduled_from_id
        # has no index, which only matters for deletes, and the product never deletes).
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("DELETE FROM notifications")
        conn.execute("DELETE FROM audit_events")
        deleted = conn.execute(
            "DELETE FROM appointments WHERE id > %s", (sizes.appointments,)
        ).rowcount
        conn.execute("DELETE FROM appointment_series")
        conn.execute(
            "UPDATE nurses SET horizon_days = %s WHERE horizon_days <> %s",
            (LOADED_HORIZON_DAYS, LOADED_HORIZON_DAYS),
        )
        conn.commit()
    return deleted


def data_counts(url: str) -> dict[str, int]:
    """Row counts and the appointments' status mix, for the report."""
    with psycopg.connect(conninfo(url)) as conn:
        counts = {
            table: scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            for table in (
                "nurses",
                "patients",
                "patient_nurse_assignments",
                "nurse_availability",
                "nurse_availability_overrides",
                "appointments",
            )
        }
        for status, count in conn.execute(
            "SELECT status, count(*) FROM appointments GROUP BY status ORDER BY status"
        ).fetchall():
            counts[f"appointments:{status}"] = count
        counts["appointments:scheduled_future"] = scalar(
            conn,
            "SELECT count(*) FROM appointments WHERE status = 'scheduled' AND start_at >= %s",
            (REFERENCE_NOW,),
        )
        counts["database_bytes"] = scalar(conn, "SELECT pg_database_size(current_database())")
        counts["server_version"] = conn.info.server_version
    return counts


# ---------------------------------------------------------------- measuring


@dataclass
class SqlMeter:
    """Statements and time spent in cursor.execute, per measured call."""

    statements: int = 0
    seconds: float = 0.0

    def install(self, engine: Engine) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, stmt: Any, params: Any, ctx: Any, many: Any) -> None:
            conn.info["bench_started"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn: Any, cursor: Any, stmt: Any, params: Any, ctx: Any, many: Any) -> None:
            self.statements += 1
            self.seconds += time.perf_counter() - conn.info.pop("bench_started")

    def reset(self) -> None:
        self.statements, self.seconds = 0, 0.0


@dataclass(frozen=True)
class Sample:
    """One measured call: wall seconds, SQL statements, seconds in execute, client CPU."""

    seconds: float
    statements: int
    sql_seconds: float
    cpu_seconds: float


@dataclass
class Scenario:
    name: str
    target_ms: float
    samples: list[Sample] = field(default_factory=list)
    chunk_shares: list[float] = field(default_factory=list)
    discarded: int = 0
    disturbed_kept: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> Summary:
        return summarize([s.seconds for s in self.samples])

    def per_call(self) -> tuple[float, float, float]:
        """Mean SQL statements, ms inside cursor.execute and ms of client CPU per call."""
        n = max(1, len(self.samples))
        return (
            sum(s.statements for s in self.samples) / n,
            1000 * sum(s.sql_seconds for s in self.samples) / n,
            1000 * sum(s.cpu_seconds for s in self.samples) / n,
        )

    def other_work(self) -> str:
        """Other work's CPU share while the kept samples were taken, and what was redone."""
        if not self.chunk_shares:
            return "unknown"
        mean = sum(self.chunk_shares) / len(self.chunk_shares)
        text = f"mean {mean:.0%}, max {max(self.chunk_shares):.0%}"
        if self.discarded:
            text += f"; {self.discarded} disturbed calls re-measured"
        if self.disturbed_kept:
            text += f"; {self.disturbed_kept} disturbed calls kept (patience ran out)"
        return text


def timed(meter: SqlMeter, action: Callable[[], Any]) -> tuple[Sample, Any]:
    """Run `action`, measuring wall time, SQL statements and this process's CPU time."""
    meter.reset()
    cpu_started = time.process_time()
    started = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - started
    cpu_used = time.process_time() - cpu_started
    return Sample(elapsed, meter.statements, meter.seconds, cpu_used), result


def run_scenario(
    scenario: Scenario,
    one_call: Callable[[], Sample | None],
    *,
    iterations: int,
    warmup: int,
    watch: CpuWatch | None,
    patience: float,
    after_chunk: Callable[[], Any] | None = None,
    chunk: int = 50,
    max_other_share: float = 0.10,
) -> Scenario:
    """Warm up, then measure in chunks; redo a chunk that other work disturbed.

    The machine is shared (test suites run on it too), so each chunk of calls is checked
    against the CPU the rest of the machine used meanwhile; one that saw more than
    `max_other_share` is measured again, for at most `patience` seconds in all.
    `after_chunk` runs untimed after the warm-up and after every chunk (bookings use it to
    put the data back as loaded, however many chunks are redone).
    """
    for _ in range(warmup):
        one_call()
    if after_chunk is not None:
        after_chunk()
    deadline = time.monotonic() + patience
    while len(scenario.samples) < iterations:
        if watch is not None:
            watch.start()
        batch: list[Sample] = []
        while len(batch) < min(chunk, iterations - len(scenario.samples)):
            sample = one_call()
            if sample is not None:
                batch.append(sample)
        share = watch.others_share() if watch is not None else None
        if after_chunk is not None:
            after_chunk()
        if share is not None and share > max_other_share:
            if time.monotonic() < deadline:
                scenario.discarded += len(batch)
                if watch is not None:
                    _wait_for_quiet(watch, deadline, max_other_share)
                continue
            scenario.disturbed_kept += len(batch)
        if share is not None:
            scenario.chunk_shares.append(share)
        scenario.samples.extend(batch)
    return scenario


def _wait_for_quiet(watch: CpuWatch, deadline: float, max_other_share: float) -> None:
    """Sleep in 2-second samples until other work leaves the CPU or the deadline passes."""
    while time.monotonic() < deadline:
        watch.start()
        time.sleep(2)
        share = watch.others_share()
        if share is None or share <= max_other_share:
            return


def list_slots(factory: sessionmaker[Session], nurse_id: int) -> list[Any]:
    """The call under test: one nurse's free slots over the next 14 days, one transaction."""
    with transaction(factory) as session:
        return free_slots(
            session,
            nurse_id,
            start=REFERENCE_NOW,
            end=REFERENCE_NOW + SLOT_WINDOW,
            now=REFERENCE_NOW,
        )


def free_slots_call(
    factory: sessionmaker[Session], meter: SqlMeter, sizes: Sizes, rng: random.Random
) -> tuple[Scenario, Callable[[], Sample | None]]:
    """The free-slots scenario and its one measured call (a random nurse each time)."""
    scenario = Scenario("free slots: 1 nurse, next 14 days", TARGET_FREE_SLOTS_P99_MS)
    counts: list[int] = []

    def one_call() -> Sample:
        nurse_id = rng.randint(1, sizes.nurses)
        sample, slots = timed(meter, lambda: list_slots(factory, nurse_id))
        counts.append(len(slots))
        scenario.extra["slots_per_call_mean"] = round(sum(counts) / len(counts), 1)
        scenario.extra["calls_with_no_slot"] = sum(1 for c in counts if c == 0)
        return sample

    return scenario, one_call


def pick_free_slot(
    factory: sessionmaker[Session], sizes: Sizes, rng: random.Random, scenario: Scenario
) -> tuple[int, int, Any] | None:
    """A random patient, their primary nurse and one of her free slots, found untimed (the
    caller found the slot before booking it); None, counted, when she has none."""
    patient_id = rng.randint(1, sizes.patients)
    nurse_id = sizes.primary_nurse(patient_id)
    slots = list_slots(factory, nurse_id)
    if not slots:
        scenario.extra["no_free_slot"] += 1
        return None
    return patient_id, nurse_id, rng.choice(slots)


def booking_call(
    factory: sessionmaker[Session],
    meter: SqlMeter,
    sizes: Sizes,
    rng: random.Random,
    run_token: str,
) -> tuple[Scenario, Callable[[], Sample | None]]:
    """The booking scenario and its one measured call: a random patient, a free slot."""
    scenario = Scenario("book one appointment (commit incl.)", TARGET_BOOK_P99_MS)
    scenario.extra.update(refused=0, no_free_slot=0, wrong_result=0)
    actor = Actor.agent()
    attempts = 0

    def one_call() -> Sample | None:
        nonlocal attempts
        attempts += 1
        picked = pick_free_slot(factory, sizes, rng, scenario)
        if picked is None:
            return None
        patient_id, nurse_id, slot = picked

        def book() -> Any:
            with transaction(factory) as session:  # commits, as the entry points do
                return book_appointment(
                    session,
                    patient_id=patient_id,
                    start=slot.start,
                    actor=actor,
                    now=REFERENCE_NOW,
                    reason="Benchmark visit",
                    idempotency_key=f"bench:{run_token}:{attempts}",
                )

        try:
            sample, appointment = timed(meter, book)
        except SlotUnavailable:
            scenario.extra["refused"] += 1
            return None
        if appointment.nurse_id != nurse_id or appointment.start_at != slot.start:
            scenario.extra["wrong_result"] += 1
        return sample

    return scenario, one_call


def series_call(
    factory: sessionmaker[Session],
    meter: SqlMeter,
    sizes: Sizes,
    rng: random.Random,
    run_token: str,
) -> tuple[Scenario, Callable[[], Sample | None]]:
    """The series scenario: a random patient, weekly at one of the nurse's free times, 52
    visits, the free ones booked (visits already in the first 60 days refuse some)."""
    scenario = Scenario(f"book a {SERIES_WEEKS}-week weekly series", TARGET_SERIES_P99_MS)
    scenario.extra.update(booked_per_series=0.0, refused_per_series=0.0, no_free_slot=0)
    actor = Actor.cli()
    booked: list[int] = []
    refused: list[int] = []
    attempts = 0

    def one_call() -> Sample | None:
        nonlocal attempts
        attempts += 1
        picked = pick_free_slot(factory, sizes, rng, scenario)
        if picked is None:
            return None
        patient_id, nurse_id, slot = picked
        first = slot.start
        local = first.astimezone(zone(sizes.zone_of(nurse_id)))
        weekday = list(Weekday)[local.weekday()]
        details = SeriesDetails.model_validate(
            {
                "patient_id": patient_id,
                "start": local.isoformat(),
                "weekdays": [weekday.value],
                "count": SERIES_WEEKS,
                "reason": "Benchmark series",
            }
        )

        def book() -> Any:
            with transaction(factory) as session:
                return book_series(
                    session,
                    details,
                    actor=actor,
                    now=REFERENCE_NOW,
                    mode=SeriesBookMode.FREE_ONLY,
                    idempotency_key=f"bench-series:{run_token}:{attempts}",
                )

        sample, result = timed(meter, book)
        booked.append(len(result.booked))
        refused.append(len(result.refused))
        scenario.extra["booked_per_series"] = round(sum(booked) / len(booked), 1)
        scenario.extra["refused_per_series"] = round(sum(refused) / len(refused), 1)
        return sample

    return scenario, one_call


def allow_series_horizon(url: str) -> None:
    """Let every nurse take bookings a year ahead (put back by `remove_bench_writes`)."""
    with psycopg.connect(conninfo(url)) as conn:
        conn.execute("UPDATE nurses SET horizon_days = %s", (SERIES_HORIZON_DAYS,))
        conn.commit()


def round_trip(factory: sessionmaker[Session], samples: int = 200) -> Summary:
    """`SELECT 1` in its own transaction: the floor under every statement."""
    durations = []
    with factory() as session:
        for _ in range(samples):
            started = time.perf_counter()
            session.execute(text("SELECT 1"))
            session.commit()
            durations.append(time.perf_counter() - started)
    return summarize(durations)


def _repeat(action: Callable[[], Any], times: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(times):
            action()

    return run


def profile(label: str, action: Callable[[], Any], top: int) -> None:
    """Run `action` under cProfile and print where the time goes."""
    profiler = cProfile.Profile()
    profiler.enable()
    action()
    profiler.disable()
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(top)
        print(f"\n--- profile: {label}, by {order}")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL),
        help="bench database (created if missing; its data is replaced). "
        "Default: $BENCH_DATABASE_URL or %(default)s",
    )
    parser.add_argument("--nurses", type=int, default=1000)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--appointments", type=int, default=1_000_000)
    parser.add_argument("--iterations", type=int, default=500, help="measured calls per scenario")
    parser.add_argument(
        "--series-iterations",
        type=int,
        default=200,
        help="measured series bookings (each books up to 52 visits)",
    )
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured calls first")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="reuse the loaded data when the database already holds exactly this data set",
    )
    parser.add_argument(
        "--patience",
        type=float,
        default=900,
        metavar="SECONDS",
        help="how long to keep re-measuring chunks of calls during which other work used "
        "over 10%% of the CPU (default %(default)s; 0 keeps every call and skips the check)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="afterwards, profile N more calls of each scenario with cProfile",
    )
    parser.add_argument(
        "--json",
        default=str(ROOT / "bench" / "results" / "availability.json"),
        help="where to write the figures as JSON ('' for nowhere)",
    )
    args = parser.parse_args(argv)
    if args.patients < args.nurses:
        parser.error("--patients must be at least --nurses (every nurse needs a patient)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    url = resolve_database_url(args.database_url)
    if not url.startswith("postgresql"):
        raise SystemExit("this benchmark needs PostgreSQL (the exclusion constraint, COPY)")
    sizes = Sizes(args.nurses, args.patients, args.appointments, args.seed)
    print(f"bench/availability.py  database={make_url(url).render_as_string(hide_password=True)}")
    print(f"machine: {machine_description()}")

    total_started = time.perf_counter()
    created = ensure_database(url)
    run_lock = hold_run_lock(url)
    try:
        return _run(args, url, sizes, created, total_started)
    finally:
        run_lock.close()


def _run(
    args: argparse.Namespace, url: str, sizes: Sizes, created: bool, total_started: float
) -> int:
    started = time.perf_counter()
    upgrade(url)
    migrate_seconds = time.perf_counter() - started
    print(f"database {'created' if created else 'exists'}; migrated in {migrate_seconds:.1f} s")

    load_phases: dict[str, float] | None = None
    if args.keep and loaded_fingerprint(url) == sizes.fingerprint():
        removed = remove_bench_writes(url, sizes)
        print(f"--keep: reusing the loaded data ({removed} rows from an earlier run removed)")
    else:
        print(
            f"loading {sizes.nurses:,} nurses, {sizes.patients:,} patients, "
            f"{sizes.appointments:,} appointments with COPY ..."
        )
        load_phases = load(url, sizes)
        print_table(["load phase", "seconds"], [[k, v] for k, v in load_phases.items()])
        print(f"load total: {sum(load_phases.values()):.1f} s")

    counts = data_counts(url)
    print(
        "data: "
        + ", ".join(f"{k}={v:,}" for k, v in counts.items() if k != "server_version")
        + f", PostgreSQL {counts['server_version'] // 10000}.{counts['server_version'] % 10000}"
    )

    engine = make_engine(url)
    factory = make_session_factory(engine)
    meter = SqlMeter()
    meter.install(engine)
    rng = random.Random(args.seed + 1)
    run_token = f"{os.getpid()}-{int(time.time())}"
    watch = CpuWatch(url) if args.patience > 0 else None
    try:
        rtt = round_trip(factory)
        free, free_one = free_slots_call(factory, meter, sizes, rng)
        book, book_one = booking_call(factory, meter, sizes, rng, run_token)
        series, series_one = series_call(factory, meter, sizes, rng, run_token)

        def put_back_for_series() -> None:
            remove_bench_writes(url, sizes)
            allow_series_horizon(url)

        for scenario, one_call, after_chunk, iterations in (
            (free, free_one, None, args.iterations),
            (book, book_one, lambda: remove_bench_writes(url, sizes), args.iterations),
            (series, series_one, put_back_for_series, args.series_iterations),
        ):
            if scenario is series:
                allow_series_horizon(url)
            run_scenario(
                scenario,
                one_call,
                iterations=iterations,
                warmup=min(args.warmup, iterations),
                watch=watch,
                patience=args.patience,
                after_chunk=after_chunk,
            )
        if args.profile:
            profile_rng = random.Random(args.seed + 2)
            calls: list[tuple[str, Callable[[], Sample | None]]] = [
                ("free slots", free_slots_call(factory, meter, sizes, profile_rng)[1]),
                (
                    "booking (with the untimed free-slot lookup that picks each slot)",
                    booking_call(factory, meter, sizes, profile_rng, run_token + "-profile")[1],
                ),
                (
                    "series (with the untimed free-slot lookup that picks the first visit)",
                    series_call(factory, meter, sizes, profile_rng, run_token + "-profile")[1],
                ),
            ]
            for label, one_call in calls:
                profile(label, _repeat(one_call, args.profile), 30)
    finally:
        if watch is not None:
            watch.close()
        engine.dispose()
        remove_bench_writes(url, sizes)

    print()
    print(
        f"{args.iterations} measured calls per scenario ({args.series_iterations} series) after "
        f"{args.warmup} warm-up calls, "
        f"one client, now={REFERENCE_NOW.isoformat()}; SELECT 1 round trip "
        f"p50 {rtt.p50:.2f} ms, p99 {rtt.p99:.2f} ms"
    )
    rows = []
    for scenario in (free, book, series):
        s = scenario.summary()
        rows.append(
            [
                scenario.name,
                s.n,
                s.mean,
                s.p50,
                s.p95,
                s.p99,
                s.max,
                f"p99 <= {scenario.target_ms:.0f} ms",
                verdict(s.p99, scenario.target_ms),
            ]
        )
    print_table(
        ["scenario", "n", "mean ms", "p50 ms", "p95 ms", "p99 ms", "max ms", "target", "result"],
        rows,
        align="lrrrrrrll",
    )
    print()
    print_table(
        [
            "scenario",
            "SQL statements/call",
            "in cursor.execute ms/call",
            "client CPU ms/call",
            "notes",
        ],
        [
            [
                scenario.name,
                *scenario.per_call(),
                ", ".join(f"{k}={v}" for k, v in scenario.extra.items()),
            ]
            for scenario in (free, book, series)
        ],
    )
    print(
        "(client CPU: this Python process's CPU time per call, the ORM and the scheduling "
        "code; the rest of the wall time is waiting on PostgreSQL)"
    )
    print()
    for scenario in (free, book, series):
        print(f"CPU used by other work during {scenario.name}: {scenario.other_work()}")
        if scenario.disturbed_kept:
            print("warning: part of these figures was taken on a busy machine; tails are inflated")
    total = time.perf_counter() - total_started
    print(f"\nbookings made while measuring were deleted again; total run {total:.0f} s")

    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "benchmark": "bench/availability.py",
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_description(),
            "reference_now": REFERENCE_NOW.isoformat(),
            "sizes": {
                "nurses": sizes.nurses,
                "patients": sizes.patients,
                "appointments": sizes.appointments,
            },
            "counts": counts,
            "load_seconds": load_phases,
            "round_trip_ms": rtt.as_dict(),
            "scenarios": {
                scenario.name: {
                    **scenario.summary().as_dict(),
                    "target_p99_ms": scenario.target_ms,
                    "result": verdict(scenario.summary().p99, scenario.target_ms),
                    **dict(
                        zip(
                            (
                                "sql_statements_per_call",
                                "sql_execute_ms_per_call",
                                "client_cpu_ms_per_call",
                            ),
                            (round(v, 3) for v in scenario.per_call()),
                            strict=True,
                        )
                    ),
                    "other_work_cpu": scenario.other_work(),
                    "disturbed_calls_remeasured": scenario.discarded,
                    "disturbed_calls_kept": scenario.disturbed_kept,
                    **scenario.extra,
                }
                for scenario in (free, book, series)
            },
        }
        path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
