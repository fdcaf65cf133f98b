"""`make run` end to end (a crash of one process included), and the documentation of every
setting."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from core.services.call_recovery import PROCESS_RESTARTED
from tests.processes import free_port
from tests.voice.fakes import (
    FakeModelSession,
    FakeRealtime,
    FakeTwilioCall,
    FakeTwilioRest,
    parse_stream_twiml,
    served,
    sign,
)
from tests.voice.stack import ACCOUNT_SID, AUTH_TOKEN, PRACTICE_NUMBER, PUBLIC_BASE

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 60.0  # migrations, seeding and two servers, on a slow CI machine
STOP_TIMEOUT_SECONDS = 20.0


def _settings_read_by_config() -> set[str]:
    source = (ROOT / "core" / "config.py").read_text()
    return set(re.findall(r"""env\.get\(\s*["']([A-Z][A-Z0-9_]*)["']""", source))


def test_env_example_documents_every_setting() -> None:
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M)
    )

    missing = (_settings_read_by_config() | {"TEST_DATABASE_URL"}) - documented

    assert not missing, f".env.example lacks {sorted(missing)}"


def test_readme_configuration_table_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()

    missing = {name for name in _settings_read_by_config() if f"`{name}`" not in readme}

    assert not missing, f"README.md lacks {sorted(missing)}"


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _spawned(log: str, program: str) -> list[int]:
    """The pids supervisord reported starting `program` with, oldest first."""
    return [int(pid) for pid in re.findall(rf"spawned: '{program}' with pid (\d+)", log)]


def _kill_leftovers(log: str) -> None:
    """SIGKILL the process groups supervisord reported, should a stop have gone wrong."""
    for pid in re.findall(r"spawned: '\w+' with pid (\d+)", log):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(pid), signal.SIGKILL)


@dataclass
class Running:
    """A `make run` in progress: its ports, log and database."""

    process: subprocess.Popen[bytes]
    web_port: int
    voice_port: int
    log_path: Path
    database_url: str

    @property
    def log(self) -> str:
        """Everything printed so far."""
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Until both services answer /health with 200."""
        urls = [f"http://127.0.0.1:{port}/health" for port in (self.web_port, self.voice_port)]
        deadline = time.monotonic() + timeout
        pending = list(urls)
        while pending and time.monotonic() < deadline and self.process.poll() is None:
            pending = [url for url in pending if _status(url) != 200]
            if pending:
                time.sleep(0.3)
        assert not pending, f"no 200 from {pending}; log:\n{self.log}"


@contextlib.contextmanager
def _make_run(tmp_path: Path, **settings: str) -> Iterator[Running]:
    """`make run` on free ports and a SQLite file of its own; stopped (and checked) at the end."""
    venv = Path(sys.prefix)
    if sys.prefix == sys.base_prefix or shutil.which("make") is None:
        pytest.skip("needs make and a virtual environment")
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    make = ["make", "--no-print-directory", f"VENV={venv}"]
    # Reinstalling into the venv under running tests would pull files from under them.
    if subprocess.run([*make, "-q", "install"], cwd=ROOT, env=env).returncode != 0:
        pytest.skip("the venv is not installed by `make install` yet (run it first)")

    web_port, voice_port = free_port(), free_port()
    database_url = f"sqlite:///{tmp_path / 'run' / 'carematix.db'}"
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY="make-run-test",
        DASHBOARD_HOST="127.0.0.1",
        DASHBOARD_PORT=str(web_port),
        VOICE_HOST="127.0.0.1",
        VOICE_PORT=str(voice_port),
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
        PYTHONUNBUFFERED="1",
        **settings,
    )
    log_path = tmp_path / "make-run.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*make, "run"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Running(process, web_port, voice_port, log_path, database_url)
    stopped = False
    try:
        yield running
        # What Ctrl+C does: SIGINT to the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while (_port_open(web_port) or _port_open(voice_port)) and time.monotonic() < deadline:
            time.sleep(0.2)
        stopped = not _port_open(web_port) and not _port_open(voice_port)
        assert stopped, "a server still listens after Ctrl+C"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        if not stopped:
            _kill_leftovers(running.log)


@pytest.mark.slow
def test_make_run_serves_both_health_endpoints_then_stops_cleanly(tmp_path: Path) -> None:
    with _make_run(tmp_path) as running:
        running.wait_healthy()
        started_log = running.log
        assert f"http://127.0.0.1:{running.web_port}" in started_log
        assert f"http://127.0.0.1:{running.voice_port}" in started_log
        assert "admin@carematix.local" in started_log


async def _greet_then_idle(model: FakeModelSession) -> None:
    await model.handshake()
    await model.say("Hello, this is the Carematix scheduling assistant.")
    await model.closed.wait()


@pytest.mark.slow
def test_a_killed_voice_service_comes_back_and_closes_the_calls_it_held(tmp_path: Path) -> None:
    """kill -9 of the voice process mid-call: the dashboard and the worker keep serving, the
    voice service is restarted, and the calls it held end as failed with their lines."""
    calls_in_flight = 3

    async def scenario() -> None:
        rest = FakeTwilioRest()
        async with FakeRealtime(_greet_then_idle) as realtime, served(rest.app) as rest_base:
            settings = {
                "OPENAI_API_KEY": "sk-test",
                "OPENAI_BASE_URL": realtime.base_url,
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_PHONE_NUMBER": PRACTICE_NUMBER,
                "TWILIO_API_BASE_URL": rest_base,
                "PUBLIC_BASE_URL": PUBLIC_BASE,
            }
            with _make_run(tmp_path, **settings) as running:
                await asyncio.to_thread(running.wait_healthy)
                [voice_pid] = _spawned(running.log, "voice")
                [worker_pid] = _spawned(running.log, "worker")
                base = f"http://127.0.0.1:{running.voice_port}"
                streams = []
                async with httpx.AsyncClient(timeout=10) as http:
                    for n in range(calls_in_flight):
                        streams.append(await _call_in(http, base, f"+120255501{n:02d}"))
                for stream in streams:
                    await stream.wait_for(lambda s=stream: bool(s.sent_events("media")))
                # Killed once every greeting is stored: what was said by then must survive.
                # (Its line is stored when the model finishes it, which comes after its audio.)
                engine = create_engine(running.database_url)
                try:
                    await _until(lambda: _greetings_stored(engine) == calls_in_flight, running)
                finally:
                    engine.dispose()

                os.kill(voice_pid, signal.SIGKILL)

                # The others kept serving, and the voice service is back under a new pid.
                assert _status(f"http://127.0.0.1:{running.web_port}/health") == 200
                await _until(lambda: len(_spawned(running.log, "voice")) == 2, running)
                await asyncio.to_thread(running.wait_healthy)
                assert _spawned(running.log, "worker") == [worker_pid]
                os.kill(worker_pid, 0)  # still alive
                # The restarted instance closed the calls its predecessor held.
                engine = create_engine(running.database_url)
                try:
                    await _until(lambda: _all_final(engine, calls_in_flight), running)
                    with engine.connect() as connection:
                        rows = connection.execute(
                            text(
                                "SELECT c.status, c.error, c.ended_at, t.text FROM calls c "
                                "JOIN call_transcripts t ON t.call_id = c.id"
                            )
                        ).all()
                finally:
                    engine.dispose()
                assert len(rows) == calls_in_flight
                for status, error, ended_at, transcript in rows:
                    assert (status, error) == ("failed", PROCESS_RESTARTED)
                    assert ended_at is not None
                    assert "Hello, this is the Carematix" in transcript  # nothing said was lost
                for stream in streams:
                    await stream.close()

    asyncio.run(scenario())


async def _call_in(http: httpx.AsyncClient, base: str, caller: str) -> FakeTwilioCall:
    """A signed inbound webhook, then the media stream with the token from its TwiML."""
    call_sid = "CA" + uuid.uuid4().hex
    params = {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": caller,
              "To": PRACTICE_NUMBER, "CallStatus": "ringing", "Direction": "inbound"}  # fmt: skip
    signature = sign(AUTH_TOKEN, PUBLIC_BASE + "/incoming-call", params)
    answer = await http.post(
        base + "/incoming-call", data=params, headers={"X-Twilio-Signature": signature}
    )
    assert answer.status_code == 200, answer.text
    _, stream_params = parse_stream_twiml(answer.text)
    stream = FakeTwilioCall(base.replace("http://", "ws://") + "/media-stream")
    await stream.connect(
        sign(AUTH_TOKEN, PUBLIC_BASE.replace("https", "wss") + "/media-stream", {})
    )
    await stream.start(call_sid, stream_params)
    return stream


def _greetings_stored(engine: Engine) -> int:
    """How many calls have the agent's greeting stored."""
    with engine.connect() as connection:
        stored = connection.execute(
            text(
                "SELECT count(DISTINCT call_id) FROM conversation_logs "
                "WHERE role = 'assistant' AND text LIKE 'Hello, this is the Carematix%'"
            )
        ).scalar()
    return int(stored or 0)


def _all_final(engine: Engine, expected: int) -> bool:
    with engine.connect() as connection:
        final = connection.execute(
            text(
                "SELECT count(*) FROM calls c JOIN call_transcripts t ON t.call_id = c.id "
                "WHERE c.status IN ('completed', 'failed', 'busy', 'no-answer', 'canceled')"
            )
        ).scalar()
    return final == expected


async def _until(predicate: Callable[[], bool], running: Running, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, f"condition not met; log:\n{running.log}"
        await asyncio.sleep(0.2)


def test_dotenv_exports_only_what_the_environment_lacks(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "dotenv_exports", ROOT / "scripts/dotenv_exports.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    env_file = tmp_path / ".env"
    env_file.write_text("DASHBOARD_PORT=9000\nVOICE_PORT=9001\nDEMO_PASSWORD=it's a $secret\n")

    lines = module.export_lines(env_file, {"VOICE_PORT": "8500"})

    assert lines == ["export DASHBOARD_PORT=9000", "export DEMO_PASSWORD='it'\"'\"'s a $secret'"]
    assert module.export_lines(tmp_path / "missing.env", {}) == []
