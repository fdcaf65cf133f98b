"""The product's own processes on loopback, for tests that cross process boundaries.

The dashboard and the voice service run as supervisord.conf runs them (gunicorn on wsgi:app,
`python -m voice.server`), each in a process group of its own, on free ports and one shared
database; outside services (Twilio's REST API) are loopback fakes served from a thread.
Everything waits on observable conditions (health endpoints, rows) and is killed on exit.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

if TYPE_CHECKING:
    from tests.voice.fakes import FakeTwilioRest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.prefix) / "bin"
START_TIMEOUT_SECONDS = 60.0  # imports and migrations on a slow, shared CI machine
STOP_TIMEOUT_SECONDS = 15.0
POLL_SECONDS = 0.05

T = TypeVar("T")


def free_port() -> int:
    """A TCP port nothing listens on right now (loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(POLL_SECONDS)


async def until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """`wait_for` inside an event loop: poll `condition` without blocking the loop."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


@contextlib.asynccontextmanager
async def entered_in_thread(manager: contextlib.AbstractContextManager[T]) -> AsyncIterator[T]:
    """Enter and leave a blocking context manager (starting processes) off the event loop."""
    value = await asyncio.to_thread(manager.__enter__)
    try:
        yield value
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


def process_command(name: str) -> str:
    """supervisord.conf's command for program `name`, as a shell line (so tests run what
    `make run` runs)."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "supervisord.conf", encoding="utf-8")
    words = shlex.split(config.get(f"program:{name}", "command"))
    return words[2] if words[:2] == ["sh", "-c"] else "exec " + shlex.join(words)


def product_env(**values: str) -> dict[str, str]:
    """The environment for a product process: ours, the venv first on PATH, then `values`."""
    env = {
        key: value
        for key, value in os.environ.items()
        # Settings the test does not give must not leak in from the developer's shell.
        if not key.startswith(("DATABASE_", "OPENAI_", "TWILIO_", "VOICE_", "DASHBOARD_"))
    }
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(values)
    return env


@dataclass
class Process:
    """One product process, started in a process group of its own."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """What the process wrote so far (for failure messages)."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=STOP_TIMEOUT_SECONDS)
        # gunicorn's workers share the group: make sure none outlives its master.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)


def start_process(name: str, command: str, env: dict[str, str], log_dir: Path) -> Process:
    """Run `command` through the shell, as supervisord runs it; its output to `log_dir/name.log`."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name, popen, log_path)


def healthy(url: str) -> bool:
    """Whether `url` answers 200 now."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_healthy(process: Process, url: str) -> None:
    """Wait until the process's health endpoint answers 200 (fail at once if it exits)."""

    def ready() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"{process.name} exited early:\n{process.log()}")
        return healthy(url)

    try:
        wait_for(ready, START_TIMEOUT_SECONDS, f"{process.name} at {url}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{process.name} log:\n{process.log()}") from None


def run_cli(*args: str, env: dict[str, str]) -> str:
    """Run a product command (`flask --app wsgi ...`) to completion; its standard output."""
    done = subprocess.run(
        [str(VENV_BIN / args[0]), *args[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextlib.contextmanager
def served_in_thread(app: Any) -> Iterator[str]:
    """Serve an ASGI app (a loopback fake) from a thread with its own event loop; its URL."""
    from tests.voice.fakes import served

    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        box["loop"] = asyncio.get_running_loop()
        box["stop"] = asyncio.Event()
        try:
            async with served(app) as base:
                box["base"] = base
                ready.set()
                await box["stop"].wait()
        except BaseException as exc:
            box["error"] = exc
            ready.set()
            raise

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(START_TIMEOUT_SECONDS), "the fake did not start"
    if "error" in box:
        raise box["error"]
    try:
        yield str(box["base"])
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(STOP_TIMEOUT_SECONDS)


@contextlib.contextmanager
def fake_twilio_rest() -> Iterator[tuple[FakeTwilioRest, str]]:
    """Twilio's REST API faked on loopback (tests.voice.fakes), and its base URL."""
    from tests.voice.fakes import FakeTwilioRest

    rest = FakeTwilioRest()
    with served_in_thread(rest.app) as base:
        yield rest, base


@dataclass
class Product:
    """The running dashboard and voice service, and the environment they share."""

    dashboard_url: str
    voice_url: str
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    def logs(self) -> str:
        """Every process's log, for failure messages."""
        return "\n".join(f"--- {p.name}\n{p.log()}" for p in self.processes)

    def cli(self, *args: str) -> str:
        """`flask --app wsgi ARGS` against the product's database and settings."""
        return run_cli("flask", "--app", "wsgi", *args, env=self.env)

    def simulate_call(self, intent: str) -> subprocess.CompletedProcess[str]:
        """What `make simulate-call` runs, from its own process with the same settings."""
        return subprocess.run(
            [sys.executable, "-m", "voice.simulate_call", "--speed", "20", "--intent", intent],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@contextlib.contextmanager
def running_product(database_url: str, log_dir: Path, **settings: str) -> Iterator[Product]:
    """The dashboard and the voice service as supervisord.conf starts them, on `database_url`
    (already migrated), with `settings` as extra environment; both stopped on exit."""
    web_port, voice_port = free_port(), free_port()
    voice_url = f"http://127.0.0.1:{voice_port}"
    env = product_env(
        **{
            "DATABASE_URL": database_url,
            "SECRET_KEY": "cross-process-test-secret",
            "DASHBOARD_HOST": "127.0.0.1",
            "DASHBOARD_PORT": str(web_port),
            "VOICE_HOST": "127.0.0.1",
            "VOICE_PORT": str(voice_port),
            "VOICE_SERVICE_URL": voice_url,
            "VOICE_TOOL_PROCESSES": "0",
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "4",
            # Plain http on loopback: a Secure cookie would never come back.
            "SESSION_COOKIE_SECURE": "false",
            **settings,
        }
    )
    product = Product(f"http://127.0.0.1:{web_port}", voice_url, env)
    try:
        for name in ("web", "voice"):
            product.processes.append(start_process(name, process_command(name), env, log_dir))
        wait_healthy(product.processes[0], f"{product.dashboard_url}/health")
        wait_healthy(product.processes[1], f"{voice_url}/health")
        yield product
    finally:
        for process in product.processes:
            process.stop()
