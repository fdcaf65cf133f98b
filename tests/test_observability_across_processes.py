"""/metrics and JSON logs from the dashboard and the voice service, as `make run` starts them.

The dashboard runs two gunicorn workers: the counts a scrape sees must be the sum of both
(prometheus_client's multiprocess mode), whichever worker answers it. The voice service's
figures come from a simulated call placed from another process, as `make simulate-call` does;
the same call's log lines are JSON, carry its id, and name no patient detail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from core.db import make_engine, make_session_factory
from core.models import Appointment, AppointmentStatus, Call
from tests.processes import Product, running_product, wait_for

METRICS_TOKEN = "metrics-token-for-tests"
ADMIN = "admin@carematix.local"

pytestmark = pytest.mark.slow


@pytest.fixture
def product(db_url: str, tmp_path: Path) -> Iterator[Product]:
    """Dashboard (two workers) and voice service with metrics on; every call simulated."""
    with running_product(
        db_url,
        tmp_path,
        METRICS_TOKEN=METRICS_TOKEN,
        LOG_FORMAT="json",
        WEB_CONCURRENCY="2",
        DEMO_PASSWORD="metrics-demo-password",
        OPENAI_API_KEY="",
    ) as running:
        running.cli("seed-demo")
        yield running


def _samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample /metrics gives, keyed by name and sorted labels."""
    response = httpx.get(
        base + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(value for (sample, _), value in samples.items() if sample == name)


def _booked_visit(database_url: str) -> Appointment:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            visit = session.scalar(
                select(Appointment)
                .where(
                    Appointment.status == AppointmentStatus.SCHEDULED,
                    Appointment.start_at > datetime.now(UTC),
                )
                .order_by(Appointment.start_at)
                .limit(1)
            )
            assert visit is not None
            session.expunge(visit)
            return visit
    finally:
        engine.dispose()


def _refused_without_the_token(base: str) -> None:
    assert httpx.get(base + "/metrics").status_code == 401
    wrong = httpx.get(base + "/metrics", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert "carematix_" not in wrong.text


def test_dashboard_counts_refusals_from_every_worker(product: Product, db_url: str) -> None:
    _refused_without_the_token(product.dashboard_url)
    token = product.cli("create-token", ADMIN).strip().splitlines()[-1]
    visit = _booked_visit(db_url)
    before = _total(_samples(product.dashboard_url), "carematix_booking_refusals_total")
    attempts = 6
    for _ in range(attempts):
        # A new connection each time, so gunicorn deals the requests to both workers.
        refused = httpx.post(
            product.dashboard_url + "/api/v1/appointments",
            json={
                "patient_id": visit.patient_id,
                "nurse_id": visit.nurse_id,
                "start": visit.start_at.isoformat(),
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert refused.status_code == 409, refused.text
    for _ in range(4):  # any worker may answer the scrape: each must see all six
        samples = _samples(product.dashboard_url)
        assert _total(samples, "carematix_booking_refusals_total") == before + attempts
    assert ("carematix_notifications_due", ()) not in samples  # labelled by channel only


def test_voice_service_measures_and_logs_a_call(product: Product, db_url: str) -> None:
    _refused_without_the_token(product.voice_url)
    done = product.simulate_call("book")
    assert done.returncode == 0, (done.stdout, done.stderr, product.logs())
    assert "[book_appointment: ok]" in done.stdout

    def finished() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples = _samples(product.voice_url)
        key = ("carematix_calls_finished_total", (("outcome", "booked"),))
        return samples if samples.get(key) == 1.0 else None

    samples = wait_for(finished, 30, "the call counted as booked")
    assert samples[("carematix_calls_active", ())] == 0.0
    tools = ("carematix_tool_duration_seconds_count", (("tool", "book_appointment"),))
    assert samples[tools] == 1.0
    assert samples[("carematix_agent_response_seconds_count", ())] >= 1.0
    assert samples[("carematix_relay_lag_seconds_count", ())] > 0.0
    # Labels are the product's own names: nothing a caller said or dialled.
    assert "+1" not in "".join(str(labels) for _, labels in samples)

    call = _last_call(db_url)
    lines = [json.loads(line) for line in _log(product, "voice").splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert not [line for line in lines if "color_message" in line]  # uvicorn's coloured copy
    about_the_call = [line for line in lines if line.get("call_id") == call.id]
    assert any("media stream started" in line["message"] for line in about_the_call)
    everything = _log(product, "voice") + _log(product, "web")
    assert call.from_number not in everything
    assert call.from_number.removeprefix("+1") not in everything
    assert call.patient is not None and call.patient.last_name not in everything


def _last_call(database_url: str) -> Call:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            call = session.scalar(
                select(Call).options(joinedload(Call.patient)).order_by(Call.id.desc()).limit(1)
            )
            assert call is not None
            session.expunge_all()
            return call
    finally:
        engine.dispose()


def _log(product: Product, name: str) -> str:
    [process] = [p for p in product.processes if p.name == name]
    return process.log()
