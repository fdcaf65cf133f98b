"""The production deployment (deploy/) on this machine, with every call placed through its proxy.

deploy/supervisord.conf starts HAProxy on deploy/haproxy.cfg, 2 dashboards, 2 voice instances
(voice-1, voice-2) and 2 notification workers on a fresh PostgreSQL database and this machine's
Redis. The model is the fake Realtime server and Twilio the fake REST API plus fake media
streams, all on loopback. Each call's stream must reach the instance that answered its webhook;
a voice instance killed mid-call loses only its own calls, which its restart closes; one drained
mid-call leaves rotation, ends its calls politely and exits; every call row ends final.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import shutil
import signal
import socket
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_session_factory
from core.models import Call, CallbackRequest, CallStatus
from tests.processes import (
    ROOT,
    VENV_BIN,
    Process,
    entered_in_thread,
    fake_twilio_rest,
    free_port,
    product_env,
    start_process,
    until,
    wait_for,
)
from tests.voice.fakes import (
    FakeRealtime,
    FakeTwilioCall,
    FakeTwilioRest,
    greet_then_say_goodbye_when_asked,
    parse_stream_twiml,
    sign,
)
from tests.voice.stack import AUTH_TOKEN, fakes_env, ring

DEPLOY_CONFIG = ROOT / "deploy" / "supervisord.conf"
DRAIN_SECONDS = 2
METRICS_TOKEN = "deployment-metrics-token"
CALLER = "+12025550188"
START_SECONDS = 60.0

pytestmark = [pytest.mark.slow, pytest.mark.postgresql]


def _unavailable(reason: str) -> NoReturn:
    """Skip locally; fail on CI, where this test must run (`make test` installs haproxy)."""
    if os.environ.get("CI", "").strip().lower() in {"true", "1"}:
        pytest.fail(f"{reason} (CI is set, so the deployment test must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> str:
    """This machine's Redis (TEST_REDIS_URL), which the dashboards share."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url).ping()
    except redis.ConnectionError:
        _unavailable(f"Redis is not reachable at {url}")
    return url


@pytest.fixture
def haproxy() -> str:
    """Debian's haproxy (scripts/ensure_test_packages.sh installs it)."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        _unavailable("haproxy is not installed")
    return found


def _free_run(count: int) -> int:
    """A port B such that B+1 .. B+count are all free now, for every port the deployment needs
    (taken one by one, the kernel may hand out one that another's B+N is about to use)."""
    for _ in range(100):
        base = free_port()
        try:
            with contextlib.ExitStack() as stack:
                for offset in range(1, count + 1):
                    probe = stack.enter_context(socket.socket())
                    probe.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
    raise AssertionError(f"no run of {count} free ports found")


@dataclass
class Deployment:
    """deploy/supervisord.conf running: its supervisord, its addresses, its logs."""

    supervisord: Process
    env: dict[str, str]
    public_url: str
    stats_url: str
    voice_urls: dict[str, str]
    dashboard_urls: dict[str, str]
    log_dir: Path

    def ctl(self, *args: str) -> str:
        """`supervisorctl -c deploy/supervisord.conf ARGS`; its output."""
        done = subprocess.run(
            [str(VENV_BIN / "supervisorctl"), "-c", str(DEPLOY_CONFIG), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=START_SECONDS,
        )
        return done.stdout

    def pid(self, program: str) -> int:
        """The process id of `program` (e.g. voice:voice-1) now."""
        return int(self.ctl("pid", program).strip())

    def servers(self) -> dict[tuple[str, str], dict[str, str]]:
        """HAProxy's stats row of each server (state, sessions, ...) by (backend, server)."""
        response = httpx.get(self.stats_url + "/stats;csv", timeout=5)
        return {
            (row["pxname"], row["svname"]): row
            for row in csv.DictReader(response.text.lstrip("# ").splitlines())
            if row["svname"] not in {"FRONTEND", "BACKEND"}
        }

    def state(self, server: str, backend: str = "voice") -> str:
        """UP, DOWN, ...: whether HAProxy sends `server` of `backend` requests now."""
        return self.servers()[(backend, server)]["status"].split(" ")[0]

    def log(self, process: str) -> str:
        """What one program (e.g. voice-2) has written so far."""
        return "\n".join(
            path.read_text(errors="replace") for path in self.log_dir.glob(f"{process}-stdout*")
        )

    def logs(self) -> str:
        """Every program's log, for failure messages."""
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


@contextlib.contextmanager
def running_deployment(
    database_url: str, tmp_path: Path, haproxy: str, **settings: str
) -> Iterator[Deployment]:
    """deploy/supervisord.conf started on free ports and `database_url` (already migrated),
    with `settings` as extra environment; every program stopped on exit."""
    run_dir, log_dir = tmp_path / "run", tmp_path / "log"
    run_dir.mkdir()
    log_dir.mkdir()
    # dashboard-N on base + N, voice-N on base + 2 + N, then the proxy's three listeners.
    base = _free_run(7)
    dashboards, voices = base, base + 2
    proxy, internal, stats = base + 5, base + 6, base + 7
    env = product_env(
        DATABASE_URL=database_url,
        SECRET_KEY="deployment-test-secret",
        CAREMATIX_RUN_DIR=str(run_dir),
        CAREMATIX_LOG_DIR=str(log_dir),
        PROXY_PORT=str(proxy),
        PROXY_INTERNAL_PORT=str(internal),
        PROXY_STATS_PORT=str(stats),
        DASHBOARD_BASE_PORT=str(dashboards),
        VOICE_BASE_PORT=str(voices),
        VOICE_TOOL_PROCESSES="0",
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
        SESSION_COOKIE_SECURE="false",
        **settings,
    )
    # The process file runs `haproxy` by name; /usr/sbin is not on every user's PATH.
    env["PATH"] = os.pathsep.join([str(VENV_BIN), str(Path(haproxy).parent), env["PATH"]])
    supervisord = start_process(
        "supervisord", f"exec supervisord -c {DEPLOY_CONFIG}", env, tmp_path
    )
    deployment = Deployment(
        supervisord=supervisord,
        env=env,
        public_url=f"http://127.0.0.1:{proxy}",
        stats_url=f"http://127.0.0.1:{stats}",
        voice_urls={f"voice-{n}": f"http://127.0.0.1:{voices + n}" for n in (1, 2)},
        dashboard_urls={f"dashboard-{n}": f"http://127.0.0.1:{dashboards + n}" for n in (1, 2)},
        log_dir=log_dir,
    )
    programs: list[int] = []
    try:
        try:
            wait_for(lambda: _all_up(deployment), START_SECONDS, "every server UP in HAProxy")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{deployment.logs()}") from None
        programs = [int(pid) for pid in deployment.ctl("pid", "all").split() if pid.isdigit()]
        yield deployment
    finally:
        supervisord.stop()
        # supervisord starts each program in a process group of its own: none may outlive it.
        for pid in programs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def _all_up(deployment: Deployment) -> bool:
    if deployment.supervisord.popen.poll() is not None:
        raise AssertionError(f"supervisord exited:\n{deployment.supervisord.log()}")
    try:
        servers = deployment.servers()
    except httpx.HTTPError:
        return False
    return len(servers) == 8 and all(row["status"] == "UP" for row in servers.values())


def test_calls_through_the_proxy_survive_a_crash_and_a_drain(
    pg_url: str, redis_url: str, haproxy: str, tmp_path: Path
) -> None:
    with fake_twilio_rest() as (rest, twilio_base):

        async def scenario() -> None:
            async with FakeRealtime(greet_then_say_goodbye_when_asked) as realtime:
                deployment = running_deployment(
                    pg_url,
                    tmp_path,
                    haproxy,
                    **fakes_env(realtime.base_url, twilio_base),
                    REDIS_URL=redis_url,
                    VOICE_DRAIN_SECONDS=str(DRAIN_SECONDS),
                    METRICS_TOKEN=METRICS_TOKEN,
                )
                async with entered_in_thread(deployment) as running:
                    try:
                        await _through_the_proxy(running, realtime, rest, sessions)
                    except BaseException:
                        print(running.logs())
                        raise

        engine = make_engine(pg_url)
        sessions = make_session_factory(engine)
        try:
            asyncio.run(scenario())
        finally:
            engine.dispose()


@dataclass
class PlacedCall:
    """A call placed through the proxy: its sid, the instance that answered, its stream."""

    sid: str
    answered_by: str
    stream: FakeTwilioCall


async def _place_call(deployment: Deployment, http: httpx.AsyncClient) -> PlacedCall:
    """Ring through the proxy, then open the stream the TwiML names, through the proxy too."""
    sid = "CA" + uuid.uuid4().hex
    answer = await ring(http, sid, CALLER)
    assert answer.status_code == 200, answer.text
    stream_url, params = parse_stream_twiml(answer.text)
    path = urlsplit(stream_url).path
    prefix, _, instance = path.rpartition("/")
    assert prefix == "/media-stream" and instance in deployment.voice_urls, stream_url
    stream = FakeTwilioCall(deployment.public_url.replace("http://", "ws://") + path, speed=10.0)
    await stream.connect(sign(AUTH_TOKEN, stream_url, {}))
    await stream.start(sid, params)
    await stream.wait_for(lambda: bool(stream.sent_events("media")), timeout=15)
    return PlacedCall(sid, instance, stream)


def _calls(sessions: sessionmaker[Session]) -> dict[str, Call]:
    """Every call row by CallSid, with its transcript loaded."""
    with sessions() as session:
        calls = {call.call_sid or "": call for call in session.scalars(select(Call))}
        for call in calls.values():
            _ = call.transcript
        session.expunge_all()
        return calls


def _callbacks(sessions: sessionmaker[Session]) -> set[int]:
    """The call ids of every callback request."""
    with sessions() as session:
        return {request.call_id for request in session.scalars(select(CallbackRequest))}


def _active_calls(voice_url: str) -> float:
    """carematix_calls_active, scraped from one voice instance directly."""
    response = httpx.get(
        voice_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5
    )
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "carematix_calls_active":
                return sample.value
    raise AssertionError("no carematix_calls_active")


async def _through_the_proxy(
    deployment: Deployment,
    realtime: FakeRealtime,
    rest: FakeTwilioRest,
    sessions: sessionmaker[Session],
) -> None:
    status = await asyncio.to_thread(deployment.ctl, "status")
    for worker in ("worker:worker-1", "worker:worker-2"):
        assert f"{worker} RUNNING" in " ".join(status.split()), status
    async with httpx.AsyncClient(base_url=deployment.public_url, timeout=15) as http:
        await _dashboards_answer(deployment)
        placed = await _calls_reach_the_instance_that_answered(deployment, realtime, http, sessions)
        crashed = [call for call in placed if call.answered_by == "voice-1"]
        drained = [call for call in placed if call.answered_by == "voice-2"]
        drained.append(await _crash_voice_1(deployment, http, sessions, crashed, drained))
        untouched = await _drain_voice_2(deployment, http, rest, drained)
        await untouched.stream.stop()
        await until(
            lambda: _calls(sessions)[untouched.sid].ended_at is not None,
            15,
            "the call on voice-1 to end",
        )
        for call in [*crashed, *drained, untouched]:
            await call.stream.close()

    rows = await asyncio.to_thread(_calls, sessions)
    callbacks = await asyncio.to_thread(_callbacks, sessions)
    assert all(row.ended_at is not None for row in rows.values()), rows
    for call in crashed:
        assert rows[call.sid].status == CallStatus.FAILED and rows[call.sid].error
    for call in drained:
        row = rows[call.sid]
        assert row.outcome == "callback_requested" and row.id in callbacks
        assert row.transcript is not None and "Goodbye" in row.transcript.text
    assert rows[untouched.sid].status == CallStatus.COMPLETED


async def _calls_reach_the_instance_that_answered(
    deployment: Deployment,
    realtime: FakeRealtime,
    http: httpx.AsyncClient,
    sessions: sessionmaker[Session],
) -> list[PlacedCall]:
    """Four calls, dealt to both instances; each stream served where the call was answered."""
    placed = [await _place_call(deployment, http) for _ in range(4)]
    assert Counter(call.answered_by for call in placed) == {"voice-1": 2, "voice-2": 2}
    rows = await asyncio.to_thread(_calls, sessions)
    for call in placed:
        assert rows[call.sid].handled_by == call.answered_by
    # No stream opened a model of its own: each used the one opened while answering.
    assert len(realtime.sessions) == 4
    for instance, url in deployment.voice_urls.items():
        assert await asyncio.to_thread(_active_calls, url) == 2, instance
    return placed


async def _crash_voice_1(
    deployment: Deployment,
    http: httpx.AsyncClient,
    sessions: sessionmaker[Session],
    crashed: list[PlacedCall],
    others: list[PlacedCall],
) -> PlacedCall:
    """voice-1 is killed: only its calls drop, voice-2 answers a new call at once, and the
    restarted voice-1 closes the calls it held. The new call."""
    killed_pid = await asyncio.to_thread(deployment.pid, "voice:voice-1")
    os.kill(killed_pid, signal.SIGKILL)
    for call in crashed:
        await call.stream.wait_closed(timeout=10)
    # Until its next health check (1 s) the proxy may still send voice-1 a webhook, which a
    # dead process cannot answer (Twilio then uses the number's fallback URL); from then on,
    # new calls go to voice-2.
    await until(lambda: deployment.state("voice-1") == "DOWN", 10, "voice-1 out of rotation")
    late = await _place_call(deployment, http)
    assert late.answered_by == "voice-2"
    assert not any(call.stream.closed.is_set() for call in others)

    def crashed_calls_closed() -> bool:
        rows = _calls(sessions)
        return all(rows[call.sid].status == CallStatus.FAILED for call in crashed)

    await until(crashed_calls_closed, 30, "the restarted voice-1 to close its calls")
    await until(lambda: deployment.state("voice-1") == "UP", 30, "voice-1 back in rotation")
    return late


async def _drain_voice_2(
    deployment: Deployment, http: httpx.AsyncClient, rest: FakeTwilioRest, on_2: list[PlacedCall]
) -> PlacedCall:
    """voice-2 is stopped as a deploy stops it: out of rotation at once, its calls carry on,
    then each is ended politely and hung up, and it exits. A call voice-1 took meanwhile."""
    stopping = subprocess.Popen(
        [str(VENV_BIN / "supervisorctl"), "-c", str(DEPLOY_CONFIG), "stop", "voice:voice-2"],
        env=deployment.env,
        stdout=subprocess.DEVNULL,
    )
    try:
        await until(lambda: deployment.state("voice-2") == "DOWN", 10, "voice-2 out of rotation")
        health = httpx.get(deployment.voice_urls["voice-2"] + "/health", timeout=5)
        assert health.status_code == 503 and health.json()["status"] == "draining"
        after = await _place_call(deployment, http)
        assert after.answered_by == "voice-1"
        assert not any(call.stream.closed.is_set() for call in on_2)

        # Past the grace period each call is ended politely and hung up through Twilio.
        for call in on_2:
            await until(
                lambda sid=call.sid: any(u.get("Status") == "completed" for u in rest.updates(sid)),
                DRAIN_SECONDS + 30,
                "the hang-up through Twilio",
            )
            await call.stream.stop()  # what Twilio does once the call is hung up
        assert await asyncio.to_thread(stopping.wait, 60) == 0
    finally:
        if stopping.poll() is None:
            stopping.kill()
    assert f"winding down {len(on_2)} calls" in deployment.log("voice-2")
    assert not after.stream.closed.is_set()
    return after


async def _dashboards_answer(deployment: Deployment) -> None:
    """Health and the sign-in page through the proxy, served by both dashboards in turn."""

    def served() -> dict[str, int]:
        servers = deployment.servers()
        return {
            name: int(servers[("dashboard", name)]["stot"]) for name in deployment.dashboard_urls
        }

    before = served()
    for _ in range(4):
        # A new connection each time, as browsers of different staff would open.
        async with httpx.AsyncClient(base_url=deployment.public_url, timeout=15) as http:
            health = await http.get("/health")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            sign_in = await http.get("/login")
            assert sign_in.status_code == 200 and 'name="password"' in sign_in.text
    after = served()
    assert all(after[name] > before[name] for name in before), (before, after)
