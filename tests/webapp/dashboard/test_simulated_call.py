"""The "Simulate call" button against the real voice service in simulator mode, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from core.models import Appointment, Call
from tests.voice.fakes import idle
from tests.voice.stack import INTERNAL_TOKEN, voice_stack
from tests.webapp.dashboard.conftest import Dashboard

NO_CREDENTIALS = {"openai_api_key": "", "twilio_account_sid": "", "twilio_auth_token": ""}


@contextlib.contextmanager
def running_voice_service(database_url: str) -> Iterator[str]:
    """The voice service (simulator mode) in a thread of its own; yields its URL."""
    started = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        box["stop"] = asyncio.Event()
        box["loop"] = asyncio.get_running_loop()
        app_config = {"SIMULATOR_PACE": 0.1, "SIMULATOR_SPEED": 20}
        async with voice_stack(
            database_url, idle, app_config=app_config, **NO_CREDENTIALS
        ) as stack:
            box["base"] = stack.base
            started.set()
            await box["stop"].wait()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert started.wait(30), "the voice service did not start"
    try:
        yield box["base"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(30)


def test_simulate_call_places_a_call_that_books_and_opens_its_live_page(dash: Dashboard) -> None:
    with running_voice_service(dash.url) as voice_url:
        dash.app.config["SETTINGS"] = dataclasses.replace(
            dash.app.config["SETTINGS"],
            voice_service_url=voice_url,
            internal_api_token=INTERNAL_TOKEN,
        )
        response = dash.post("coordinator", "/calls/simulate")
        assert response.status_code == 303
        assert response.location.startswith("/calls/") and response.location != "/calls/"
        call_id = int(response.location.rsplit("/", 1)[1])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = dash.scalar(select(Call.status).where(Call.id == call_id))
            if status == "completed":
                break
            time.sleep(0.2)
    call = dash.scalar(select(Call).where(Call.id == call_id))
    # A demo patient at random, each with visits booked: the agent mentions the next one, and
    # the caller books another, moves it or cancels it.
    action = {"booked": "book", "rescheduled": "reschedule", "cancelled": "cancel"}
    assert (call.simulated, call.status) == (True, "completed") and call.outcome in action
    if call.outcome == "booked":
        assert dash.count(Appointment, Appointment.call_id == call_id) == 1
    page = dash.client("coordinator").get(f"/calls/{call_id}").get_data(as_text=True)
    assert "simulated" in page and "list appointments" in page  # the tool actions, in line
    assert f"{action[call.outcome]} appointment" in page
    assert "already have" in page  # the visit was mentioned before anything else was done


def test_simulate_call_without_a_voice_service_says_so(dash: Dashboard) -> None:
    dash.app.config["SETTINGS"] = dataclasses.replace(
        dash.app.config["SETTINGS"],
        voice_service_url="http://127.0.0.1:9",  # nothing listens on the discard port
        internal_api_token=INTERNAL_TOKEN,
    )
    response = dash.post("coordinator", "/calls/simulate")
    page = dash.client("coordinator").get(response.location).get_data(as_text=True)
    assert "The voice service is not reachable." in page
    assert dash.client("nurse").post("/calls/simulate").status_code in {400, 403}
