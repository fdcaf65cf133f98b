"""`make run` end to end, and the documentation of every setting."""

from __future__ import annotations

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
from pathlib import Path

import pytest

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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def _kill_leftovers(log: str) -> None:
    """SIGKILL the process groups honcho reported, should a stop have gone wrong."""
    for pid in re.findall(r"started \(pid=(\d+)\)", log):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(pid), signal.SIGKILL)


@pytest.mark.slow
def test_make_run_serves_both_health_endpoints_then_stops_cleanly(tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    if sys.prefix == sys.base_prefix or shutil.which("make") is None:
        pytest.skip("needs make and a virtual environment")
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    make = ["make", "--no-print-directory", f"VENV={venv}"]
    # Reinstalling into the venv under running tests would pull files from under them.
    if subprocess.run([*make, "-q", "install"], cwd=ROOT, env=env).returncode != 0:
        pytest.skip("the venv is not installed by `make install` yet (run it first)")

    web_port, voice_port = _free_port(), _free_port()
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'run' / 'carematix.db'}",
        SECRET_KEY="make-run-test",
        DASHBOARD_HOST="127.0.0.1",
        DASHBOARD_PORT=str(web_port),
        VOICE_HOST="127.0.0.1",
        VOICE_PORT=str(voice_port),
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "make-run.log"
    urls = [f"http://127.0.0.1:{web_port}/health", f"http://127.0.0.1:{voice_port}/health"]

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
        stopped = False
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            pending = list(urls)
            while pending and time.monotonic() < deadline and process.poll() is None:
                pending = [url for url in pending if _status(url) != 200]
                if pending:
                    time.sleep(0.3)
            started_log = log_path.read_text(errors="replace")
            assert not pending, f"no 200 from {pending}; log:\n{started_log}"
            assert f"http://127.0.0.1:{web_port}" in started_log
            assert f"http://127.0.0.1:{voice_port}" in started_log
            assert "admin@carematix.local" in started_log

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
                _kill_leftovers(log_path.read_text(errors="replace"))


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
