"""Dashboard page latency under concurrent staff sessions, against the production server.

Loads the demo data plus 1,000 nurses, 20,000 patients and 100,000 appointments into a
dedicated PostgreSQL database (the availability benchmark's generator and COPY loader, then
`core.seed.seed_demo` on top for the staff logins), starts supervisord.conf's web command
(gunicorn, its default workers and threads) on a free loopback port, and from separate
load-generator processes drives 20 concurrent signed-in coordinator sessions through five
pages:

* home: `/` (today's appointments, calls, notifications waiting);
* nurse week: `/nurses/<id>/calendar?view=week` for a random one of the 1,000 nurses;
* appointments: `/appointments/`, the first page of the unfiltered list;
* grid week: `/nurses/<id>/grid`, this week's time grid of a random nurse;
* team board: `/team-day`, today's board of the first 20 nurses.

Each client keeps its own HTTP/1.1 keep-alive connection and cookies (handled by hand: the
production session cookie is `Secure`, which urllib's cookie jar never sends over plain HTTP).
Latency is the wall time from sending the request to reading the whole body.

    .venv/bin/python bench/dashboard.py [--keep] [--clients 20] [--requests-per-page 300]

Figures are printed; nothing is asserted (the exit status is 0 whatever the figures).
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import multiprocessing as mp
import os
import pstats
import queue
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from sqlalchemy import event, make_url  # noqa: E402

from bench._common import (  # noqa: E402
    machine_description,
    print_table,
    process_command,
    summarize,
    verdict,
)
from bench.availability import (  # noqa: E402
    CpuWatch,
    Sizes,
    conninfo,
    data_counts,
    ensure_database,
    hold_run_lock,
    load,
    loaded_fingerprint,
)
from core.config import resolve_database_url  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/carematix_bench_dashboard"
PASSWORD = "bench-dashboard-password-1"
COORDINATOR = "coordinator@carematix.local"  # core.seed.COORDINATOR_EMAIL
SECRET_KEY = "carematix-bench-dashboard-fixed-secret-key-not-for-production"
TARGET_P99_MS = 300.0  # the dashboard budget: 20 back-to-back clients on 2 cores
DATA_TAG = "+ demo (dashboard v1)"
PAGES = ("home", "nurse week", "appointments", "grid week", "team board")
CSRF_INPUT = re.compile(r'name="csrf_token"\s+value="([^"]+)"')


def page_path(page: str, rng: random.Random, nurses: int) -> str:
    """The URL path of one request to `page` (a random bench nurse for the calendar)."""
    if page == "home":
        return "/"
    if page == "nurse week":
        return f"/nurses/{rng.randint(1, nurses)}/calendar?view=week"
    if page == "appointments":
        return "/appointments/"
    if page == "grid week":
        return f"/nurses/{rng.randint(1, nurses)}/grid"
    if page == "team board":
        return "/team-day"
    raise ValueError(page)


# ---------------------------------------------------------------- data


def fingerprint(sizes: Sizes) -> str:
    return f"{sizes.fingerprint()} {DATA_TAG}"


def load_data(url: str, sizes: Sizes) -> dict[str, float]:
    """Bulk data with COPY (ids from 1), then the demo data and logins after it, then ANALYZE.

    `load` leaves every sequence past the bulk ids, so the demo rows take the next ids.
    `seed_demo` refuses to touch a database that already holds patients or logins; the bulk
    rows are not a demo, so that check is bypassed here (and only here).
    """
    from core.db import make_engine, make_session_factory, transaction
    from core.seed import seed_demo

    phases = load(url, sizes)
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        with transaction(factory) as session:
            result = seed_demo(
                session, now=datetime.now(UTC), password=PASSWORD, alongside_data=True
            )
        if not result.created:
            raise SystemExit("seed_demo created nothing")
    finally:
        engine.dispose()
    phases["demo data + logins (seed_demo)"] = time.perf_counter() - started
    started = time.perf_counter()
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("ANALYZE")
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(make_url(url).database or ""), sql.Literal(fingerprint(sizes))
            )
        )
    phases["analyze"] = time.perf_counter() - started
    return phases


def reset_logins(url: str) -> None:
    """Clear lockouts a previous run may have left (the logins are shared by every run)."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(
            "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE email = %s",
            (COORDINATOR,),
        )


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    command: str
    log_path: Path
    env: dict[str, str]

    def pids(self) -> list[int]:
        """The gunicorn master and its workers."""
        found = [self.process.pid]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text(encoding="ascii")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                found.append(int(entry.name))
        return found

    def stop(self) -> int | None:
        """SIGTERM (gunicorn's graceful stop); SIGKILL only if it outlives its grace period."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    url: str,
    log_path: Path,
    workers: int | None = None,
    threads: int | None = None,
    port: int | None = None,
) -> Server:
    """Run supervisord.conf's web command with the bench database, wait for /health."""
    command = process_command("web")
    port = port or free_port()
    env = dict(os.environ)
    # The process manager's own defaults for workers and threads, not whatever this shell has,
    # unless --workers / --threads ask for others (through the variables its command reads).
    for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_CMD_ARGS"):
        env.pop(name, None)
    if workers is not None:
        env["WEB_CONCURRENCY"] = str(workers)
    if threads is not None:
        env["GUNICORN_THREADS"] = str(threads)
    env.update(
        DATABASE_URL=url,
        SECRET_KEY=SECRET_KEY,
        DASHBOARD_HOST="127.0.0.1",
        DASHBOARD_PORT=str(port),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("wb")
    process = subprocess.Popen(
        ["/bin/sh", "-c", command], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    server = Server(process, port, command, log_path, env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited ({process.returncode}); see {log_path}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status == 200:
                return server
            last = f"{response.status} {body[:200]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.25)
    server.stop()
    raise SystemExit(f"gunicorn did not answer /health in 60 s ({last}); see {log_path}")


# ---------------------------------------------------------------- the load generator


class Client:
    """One browser-like session: a keep-alive connection and its own cookies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: str | None = None
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        headers = {"Accept": "text/html", "User-Agent": "carematix-bench"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: reconnect once.
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, value = header.split(";", 1)[0].partition("=")
            if "max-age=0" in header.lower() or value == "":
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value.strip()
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return response.status, data, response

    def login(self, email: str, password: str) -> None:
        status, page, _ = self.request("GET", "/login")
        match = CSRF_INPUT.search(page.decode("utf-8", "replace"))
        if status != 200 or not match:
            raise RuntimeError(f"GET /login: {status}, CSRF token found: {bool(match)}")
        form = urllib.parse.urlencode(
            {"csrf_token": match.group(1), "email": email, "password": password}
        )
        status, _, response = self.request("POST", "/login", form)
        if status not in (302, 303) or response.getheader("Location", "").endswith("/login"):
            raise RuntimeError(f"POST /login: {status} (expected a redirect to the home page)")


def client_thread(
    port: int,
    seed: int,
    plan: list[str],
    warmup: int,
    nurses: int,
    think: float,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    rng = random.Random(seed)
    client = Client(port)
    try:
        client.login(COORDINATOR, PASSWORD)
        for _ in range(warmup):
            for page in PAGES:
                client.request("GET", page_path(page, rng, nurses))
    except Exception as exc:  # reported to the parent, which stops the run
        ready.put(("error", f"{type(exc).__name__}: {exc}"))
        return
    ready.put(("ready", None))
    go.wait()
    samples = []
    for page in plan:
        if think > 0:
            time.sleep(rng.expovariate(1 / think))
        path = page_path(page, rng, nurses)
        started = time.monotonic()
        try:
            status, body, _ = client.request("GET", path)
        except OSError as exc:
            status, body = -1, str(exc).encode()
        elapsed = time.monotonic() - started
        samples.append((page, path, status, elapsed, started, len(body)))
    results.put(samples)


def load_process(
    port: int,
    seeds: list[int],
    plans: list[list[str]],
    warmup: int,
    nurses: int,
    think: float,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """One load-generator process: a thread per client."""
    threads = [
        threading.Thread(
            target=client_thread,
            args=(port, seed, plan, warmup, nurses, think, ready, go, results),
            daemon=True,
        )
        for seed, plan in zip(seeds, plans, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of these processes (all their threads) so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (float(fields[11]) + float(fields[12])) / tick
    return total


class ProcessCpuWatch(CpuWatch):
    """CpuWatch counting the server, the load generators and this process as ours."""

    def __init__(self, url: str, pids: Any) -> None:
        super().__init__(url)
        self._pids = pids

    def _own(self) -> float:  # type: ignore[override]
        return cpu_seconds(self._pids())


@dataclass
class Run:
    samples: list[tuple[str, str, int, float, float, int]] = field(default_factory=list)
    wall_seconds: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    other_cpu_share: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)


def drive(args: argparse.Namespace, server: Server, url: str) -> Run:
    """Start the load generators, wait until every client is signed in and warm, measure."""
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    rng = random.Random(args.seed)
    # Every page requested --requests-per-page times in all, the mix shuffled per client.
    work = [page for page in PAGES for _ in range(args.requests_per_page)]
    rng.shuffle(work)
    plans = [work[i :: args.clients] for i in range(args.clients)]
    seeds = [args.seed * 1000 + i for i in range(args.clients)]
    per_process = [list(range(p, args.clients, args.processes)) for p in range(args.processes)]
    procs = [
        ctx.Process(
            target=load_process,
            args=(
                server.port,
                [seeds[i] for i in ids],
                [plans[i] for i in ids],
                args.warmup,
                args.nurses,
                args.think_ms / 1000,
                ready,
                go,
                results,
            ),
            daemon=True,
        )
        for ids in per_process
        if ids
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in range(args.clients):
            kind, detail = ready.get(timeout=300)
            if kind == "error":
                raise SystemExit(f"a client could not sign in or warm up: {detail}")
        pids = [os.getpid(), *(p.pid for p in procs if p.pid)]
        watch = ProcessCpuWatch(url, lambda: pids + server.pids())
        run = Run(load_before=os.getloadavg())
        groups = {
            "gunicorn (master + workers)": server.pids,
            "load generators": lambda: pids[1:],
            "PostgreSQL backends": lambda: list(watch._backends()),
        }
        members = {name: list(get()) for name, get in groups.items()}
        before = {name: cpu_seconds(members[name]) for name in groups}
        watch.start()
        started = time.monotonic()
        go.set()
        for _ in range(args.clients):
            run.samples.extend(results.get(timeout=1800))
        run.wall_seconds = time.monotonic() - started
        run.load_after = os.getloadavg()
        run.other_cpu_share = watch.others_share()
        run.cpu = {name: cpu_seconds(members[name]) - before[name] for name in groups}
        watch.close()
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
    return run


# ---------------------------------------------------------------- profiling


def profile_pages(url: str, pages: Sequence[str], requests: int, nurses: int, seed: int) -> dict:
    """Each page through the Flask test client on the same database: SQL and Python hotspots."""
    from core.config import Settings
    from webapp import create_app, db

    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": SECRET_KEY}
    app = create_app({"SETTINGS": Settings.from_env(env)})
    app.config["SESSION_COOKIE_SECURE"] = False  # the test client speaks plain http
    report: dict[str, Any] = {}
    with app.app_context():
        engine = db.engine
    statements: dict[str, list[float]] = defaultdict(list)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, stmt: str, *_: Any) -> None:
        conn.info["bench_t"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, stmt: str, *_: Any) -> None:
        statements[" ".join(stmt.split())].append(time.perf_counter() - conn.info.pop("bench_t"))

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = CSRF_INPUT.search(page)
    response = client.post(
        "/login",
        data={
            "csrf_token": token.group(1) if token else "",
            "email": COORDINATOR,
            "password": PASSWORD,
        },
    )
    if response.status_code != 302:
        print(f"profile: login failed ({response.status_code})")
        return report
    rng = random.Random(seed)
    for name in pages:
        for _ in range(5):  # warm caches and the pool
            client.get(page_path(name, rng, nurses))
        statements.clear()
        walls: list[float] = []
        profiler = cProfile.Profile()
        for _ in range(requests):
            path = page_path(name, rng, nurses)
            started = time.perf_counter()
            profiler.enable()
            response = client.get(path)
            profiler.disable()
            walls.append(time.perf_counter() - started)
            if response.status_code != 200:
                print(f"profile: {path} answered {response.status_code}")
        sql_rows = sorted(
            ((sum(t) * 1000 / requests, len(t) / requests, stmt) for stmt, t in statements.items()),
            reverse=True,
        )
        sql_ms = sum(r[0] for r in sql_rows)
        wall_ms = summarize(walls).mean
        print(
            f"\n=== profile: {name}, {requests} requests in-process (cProfile on; "
            f"mean {wall_ms:.1f} ms/request, of which SQL {sql_ms:.1f} ms in "
            f"{sum(r[1] for r in sql_rows):.1f} statements)"
        )
        print_table(
            ["ms/request", "statements/request", "SQL"],
            [[ms, count, stmt[:150]] for ms, count, stmt in sql_rows[:12]],
            align="rrl",
        )
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(
            r"(webapp|templates|core|jinja2/environment|sqlalchemy/orm/(loading|context)|"
            r"flask/templating|\.html)"
        )
        lines = [line for line in out.getvalue().splitlines() if line.strip()]
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        print(f"--- cProfile by cumulative time ({requests} requests), filtered to app code:")
        print("\n".join(lines[start : start + 28]))
        report[name] = {
            "mean_ms_in_process_profiled": round(wall_ms, 2),
            "sql_ms_per_request": round(sql_ms, 2),
            "sql_statements_per_request": round(sum(r[1] for r in sql_rows), 2),
            "top_sql": [
                {"ms_per_request": round(ms, 3), "per_request": count, "sql": stmt[:2000]}
                for ms, count, stmt in sql_rows[:8]
            ],
        }
    return report


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DASHBOARD_DATABASE_URL", DEFAULT_URL),
        help="bench database (created if missing; its data is replaced). "
        "Default: $BENCH_DASHBOARD_DATABASE_URL or %(default)s",
    )
    parser.add_argument("--nurses", type=int, default=1000)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--appointments", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--clients", type=int, default=20, help="concurrent signed-in sessions")
    parser.add_argument(
        "--processes", type=int, default=4, help="load-generator processes the clients share"
    )
    parser.add_argument(
        "--requests-per-page", type=int, default=300, help="measured requests of each page"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="unmeasured requests of each page per client"
    )
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        help="mean pause of each client between requests, exponentially distributed "
        "(default 0: every client sends its next request as soon as the last one ends)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="WEB_CONCURRENCY for the server (default: unset, supervisord.conf's default)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="GUNICORN_THREADS for the server (default: unset, supervisord.conf's default)",
    )
    parser.add_argument(
        "--port", type=int, help="the server's loopback port (default: any free one)"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="reuse the loaded data when the database already holds exactly this data set",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=30,
        metavar="N",
        help="afterwards, profile N in-process requests of each page that missed (0: never)",
    )
    parser.add_argument(
        "--profile-all", action="store_true", help="profile every page, not only misses"
    )
    parser.add_argument(
        "--json",
        default=str(ROOT / "bench" / "results" / "dashboard.json"),
        help="where to write the figures as JSON ('' for nowhere)",
    )
    args = parser.parse_args(argv)
    if args.patients < args.nurses:
        parser.error("--patients must be at least --nurses")
    args.processes = max(1, min(args.processes, args.clients))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    url = resolve_database_url(args.database_url)
    if not url.startswith("postgresql"):
        raise SystemExit("this benchmark needs PostgreSQL (COPY, the exclusion constraint)")
    sizes = Sizes(args.nurses, args.patients, args.appointments, args.seed)
    print(f"bench/dashboard.py  database={make_url(url).render_as_string(hide_password=True)}")
    print(f"machine: {machine_description()}")
    created = ensure_database(url)
    run_lock = hold_run_lock(url)
    try:
        return _run(args, url, sizes, created)
    finally:
        run_lock.close()


def _run(args: argparse.Namespace, url: str, sizes: Sizes, created: bool) -> int:
    from core.migrate import upgrade

    total_started = time.perf_counter()
    upgrade(url)
    print(f"database {'created' if created else 'exists'}; migrated")
    phases = None
    if args.keep and loaded_fingerprint(url) == fingerprint(sizes):
        print("--keep: reusing the loaded data")
    else:
        print(
            f"loading {sizes.nurses:,} nurses, {sizes.patients:,} patients, "
            f"{sizes.appointments:,} appointments with COPY, then the demo data ..."
        )
        phases = load_data(url, sizes)
        print_table(["load phase", "seconds"], [[k, v] for k, v in phases.items()])
    reset_logins(url)
    counts = data_counts(url)
    print(
        "data: "
        + ", ".join(
            f"{k}={v:,}" for k, v in counts.items() if k not in ("server_version", "database_bytes")
        )
    )

    log_path = ROOT / "bench" / "results" / "dashboard-gunicorn.log"
    server = start_server(url, log_path, args.workers, args.threads, args.port)
    workers = server.pids()
    tuned = {k: server.env[k] for k in ("WEB_CONCURRENCY", "GUNICORN_THREADS") if k in server.env}
    print(
        f"server: {server.command}\n  on 127.0.0.1:{server.port}, pid {server.process.pid}, "
        f"{len(workers) - 1} workers; "
        + (
            ", ".join(f"{k}={v}" for k, v in tuned.items())
            if tuned
            else "WEB_CONCURRENCY/GUNICORN_THREADS unset (supervisord.conf's defaults)"
        )
        + f"; log {log_path.relative_to(ROOT)}"
    )
    try:
        print(
            f"driving {args.clients} signed-in clients from {args.processes} processes; "
            f"{args.warmup} warm-up requests of each page per client, then "
            f"{args.requests_per_page} measured requests of each page, "
            f"think time {args.think_ms:g} ms ..."
        )
        run = drive(args, server, url)
    finally:
        code = server.stop()
        print(f"gunicorn stopped (exit status {code})")

    by_page: dict[str, list[float]] = defaultdict(list)
    bad: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    sizes_seen: dict[str, list[int]] = defaultdict(list)
    for page, _path, status, elapsed, _started, length in run.samples:
        by_page[page].append(elapsed)
        sizes_seen[page].append(length)
        if status != 200:
            bad[page][status] += 1
    rows, figures = [], {}
    for page in PAGES:
        s = summarize(by_page[page])
        non_200 = sum(bad[page].values())
        rows.append(
            [
                page,
                s.n,
                s.p50,
                s.p95,
                s.p99,
                s.max,
                f"p99 <= {TARGET_P99_MS:.0f} ms",
                verdict(s.p99, TARGET_P99_MS),
                non_200,
            ]
        )
        figures[page] = {
            **s.as_dict(),
            "target_p99_ms": TARGET_P99_MS,
            "result": verdict(s.p99, TARGET_P99_MS),
            "non_200": dict(bad[page]),
            "mean_body_bytes": round(sum(sizes_seen[page]) / max(1, len(sizes_seen[page]))),
        }
    total = len(run.samples)
    rate = total / run.wall_seconds if run.wall_seconds else float("nan")
    print()
    print(
        f"{args.clients} concurrent clients, {total} measured requests in "
        f"{run.wall_seconds:.1f} s = {rate:.1f} requests/s"
    )
    print_table(
        ["page", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "target", "result", "non-200"],
        rows,
        align="lrrrrrllr",
    )
    for page in PAGES:
        if bad[page]:
            print(f"non-200 on {page}: {dict(bad[page])}")
    if not any(bad.values()):
        print("every response was 200")
    other = "unknown" if run.other_cpu_share is None else f"{run.other_cpu_share:.0%}"
    print(
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{v:.2f}" for v in run.load_before)
        + "; after "
        + ", ".join(f"{v:.2f}" for v in run.load_after)
        + f" on {os.cpu_count()} CPUs; CPU used by other work while measuring: {other}"
    )
    if run.other_cpu_share is not None and run.other_cpu_share > 0.10:
        print("warning: other work shared the CPUs while measuring; latencies are inflated")

    if run.cpu:
        print(
            "CPU seconds used while measuring: "
            + "; ".join(
                f"{name} {seconds:.1f} s ({1000 * seconds / max(1, total):.1f} ms/request)"
                for name, seconds in run.cpu.items()
            )
            + f"; wall {run.wall_seconds:.1f} s x {os.cpu_count()} CPUs = "
            f"{run.wall_seconds * (os.cpu_count() or 1):.1f} CPU s available"
        )

    profiles: dict[str, Any] = {}
    missed = [p for p in PAGES if figures[p]["result"] == "MISS"]
    to_profile = list(PAGES) if args.profile_all else missed
    if args.profile and to_profile:
        profiles = profile_pages(url, to_profile, args.profile, args.nurses, args.seed + 7)
    print(f"\ntotal run {time.perf_counter() - total_started:.0f} s")

    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "benchmark": "bench/dashboard.py",
            "command": " ".join(shlex.quote(a) for a in sys.argv),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_description(),
            "server_command": server.command,
            "server_workers": len(workers) - 1,
            "server_env": tuned,
            "clients": args.clients,
            "load_processes": args.processes,
            "requests_per_page": args.requests_per_page,
            "warmup_per_page_per_client": args.warmup,
            "think_ms": args.think_ms,
            "sizes": {
                "nurses": sizes.nurses,
                "patients": sizes.patients,
                "appointments": sizes.appointments,
            },
            "counts": counts,
            "load_seconds": phases,
            "wall_seconds": round(run.wall_seconds, 3),
            "requests_per_second": round(rate, 2),
            "load_average_before": run.load_before,
            "load_average_after": run.load_after,
            "other_work_cpu_share": run.other_cpu_share,
            "cpu_seconds_while_measuring": {k: round(v, 2) for k, v in run.cpu.items()},
            "pages": figures,
            "profiles": profiles,
        }
        path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except queue.Empty:
        raise SystemExit("the load generators stopped answering") from None
