"""Voice bridge under load: N concurrent simulated calls against the running voice service.

Three processes, all on loopback:

* this one: a fake OpenAI Realtime server (the product's simulator server, voice.simulator,
  speaking GA events, reached by the official SDK through OPENAI_BASE_URL at /v1/realtime) and
  the orchestration;
* the voice service, started with the production command (`python -m voice.server`, as in
  supervisord.conf), on a temporary SQLite database migrated and seeded with the demo data;
* the load generator (this file with `--generator`): N fake Twilio calls, each a signed
  /incoming-call webhook, a signed WebSocket upgrade carrying the stream token from the TwiML,
  `connected`/`start`, 20 ms media frames at real-time pace, a real-time playout buffer that
  echoes marks, `stop` after `--seconds`, then a signed /call-status.

Every fake model session does what a conversation does, over and over: answers
session.update, speaks when asked (audio deltas at real-time pace), lets the caller speak
(VAD and transcription events), then calls a tool (verify_patient first, then
check_availability, get_assigned_nurse, list_appointments), waits for its output and the next
response.create. Transcripts, tool logs, marks and barge-in accounting are all on.

Latency is stamped into the audio itself (CLOCK_MONOTONIC is shared by all processes):

* Twilio -> model: each caller frame carries its send time; the fake reads it back from
  input_audio_buffer.append;
* model -> Twilio: each audio delta carries its send time; the generator reads it back from
  the media frame the service sent;
* tool round trip: function_call_arguments.done sent -> function_call_output received (fake);
* first audio: `start` sent -> first media frame received (generator);
* CPU per call: utime+stime of the service process over the run / (N x call seconds);
* model sockets still open one second after their call's `stop` (the fake knows when each
  socket closed, and which call it served from the markers in the caller audio).

The machine may be shared (2 cores here): before each run the benchmark waits (up to
`--wait-quiet` seconds) for other work to calm down, and the load average and the CPU taken by
other processes during each run are printed with the figures. A PostgreSQL server used through
`--database-url` counts as "other processes". The loop lag of the fake and of the generator is
reported too: it adds to the latencies they measure. Figures are printed and written to
bench/results/bridge.json; nothing is asserted.

Model deltas are 20 ms of audio by default (the bridge's design assumes ~50 a second per
call); `--delta-ms 100` shows the cost with larger deltas. `--profile` runs the service under
cProfile (the server runs in one process) and prints the top functions.

Side by side (`--variants`): each count of calls is run once per variant per round, the
variants alternating, so a shared machine's slow spells hit them alike. A variant is
`LABEL=carematix` (this checkout), `LABEL=carematix:DIR` (another checkout of the product, say
the commit before a change, run with this venv) or `LABEL=sample:DIR` (a scratch copy of
Twilio's public Python sample with its own .venv, its model URL read from OPENAI_REALTIME_URL;
the fake then plays a plain conversation: no tools, no response.create to wait for).
A product variant ending in `*N` (`two=carematix*2`) serves the calls from N voice processes,
each on its own port, the calls dealt to them in turn; each call's webhook and stream reach the
same process, as behind a load balancer with sticky routing. CPU is summed over them all.

    .venv/bin/python bench/bridge.py [--calls 1 20 50 100] [--seconds 25] [--delta-ms 20]
        [--database-url postgresql+psycopg://...] [--profile] [--keep]
        [--variants new=carematix old=carematix:/tmp/old sample=sample:/tmp/sample --rounds 2]
        [--variants one=carematix 'two=carematix*2']
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402
import uvloop  # noqa: E402
import websockets  # noqa: E402

from bench._common import (  # noqa: E402
    machine_description,
    percentile,
    print_table,
    process_command,
    summarize,
)
from core.heap import freeze_startup_heap  # noqa: E402
from tests.voice.fakes import (  # noqa: E402
    FRAME_BYTES,
    FRAME_MS,
    FakeTwilioCall,
    parse_stream_twiml,
    sign,
)
from tests.voice.stack import ACCOUNT_SID, AUTH_TOKEN, PRACTICE_NUMBER  # noqa: E402
from voice.simulator import ModelSession, RealtimeServer  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bridge.json"
VENV_BIN = Path(sys.executable).parent
CALLER_MAGIC = b"TWLO"  # caller frame: magic, call index, sequence, send time (ns)
MODEL_MAGIC = b"OPAI"  # model delta: magic, session index, send time (ns)
CALLER_HEADER = struct.Struct(">4sIIq")
MODEL_HEADER = struct.Struct(">4sIq")
CLOSE_GRACE_SECONDS = 1.0
DRIFT_WINDOW_SECONDS = 5.0
DRIFT_TARGET_MS = 5.0

TARGETS = {"relay_p99_ms": 15.0, "cpu_pct_per_call": 0.8, "tool_p99_ms": 50.0}


async def _watch_loop(lags: list[float], period: float = 0.05) -> None:
    """Record how late this event loop wakes up (its own lag adds to what it measures)."""
    while True:
        due = time.monotonic() + period
        await asyncio.sleep(period)
        lags.append(max(0.0, time.monotonic() - due))


def _patients() -> list[tuple[str, str, str]]:
    """(full name, date of birth, phone) of the seeded demo patients; call i is patient i % n."""
    from core.seed import PATIENTS

    return [(f"{p[0]} {p[1]}", p[2].isoformat(), p[3]) for p in PATIENTS]


# ================================================================== fake Realtime (this process)


class BenchModelSession(ModelSession):
    """One model socket: remembers which call it serves and when its tool calls went out."""

    def __init__(self, ws: Any, server: Any, index: int) -> None:
        super().__init__(ws, server, index)
        self.call_index: int | None = None
        self.opened_at = time.monotonic()
        self.tool_sent: dict[str, tuple[float, str]] = {}

    def tool_call_sent(self, call_id: str, name: str) -> None:
        """Stamp the moment the arguments go out; the output's arrival closes the round trip."""
        self.tool_sent[call_id] = (time.monotonic(), name)


@dataclass
class ModelStats:
    """What the fake Realtime server measured during one run."""

    in_latency: list[tuple[float, float]] = field(default_factory=list)  # (received at, s)
    tool_rtt: list[tuple[str, float]] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)
    tool_errors: list[str] = field(default_factory=list)
    client_events: dict[str, int] = field(default_factory=dict)


class BenchRealtime(RealtimeServer):
    """The simulator's Realtime server, lightened: no per-event schema validation (the tests do
    that) and caller audio only timed, never kept, so the fake's own cost stays small next to
    what it measures."""

    session_class = BenchModelSession

    def __init__(
        self,
        *,
        delta_ms: int,
        speak_seconds: float,
        listen_seconds: float,
        tools: bool = True,
        waits_for_response: bool = True,
    ) -> None:
        super().__init__(
            self._run_script,
            keep_audio=False,
            patience=120,
            compression=None,
            max_size=2**22,
            backlog=512,
        )
        self.tools = tools
        # False for the sample, which never sends response.create: the fake just speaks.
        self.waits_for_response = waits_for_response
        self.delta_ms = delta_ms
        self.speak_seconds = speak_seconds
        self.listen_seconds = listen_seconds
        self.stats = ModelStats()
        self.patients = _patients()

    def script_failed(self, session: ModelSession, error: BaseException) -> None:
        """A script stopped: its call ending (a timeout) is normal, anything else is reported."""
        if not isinstance(error, TimeoutError):
            self.stats.script_errors.append(f"{type(error).__name__}: {error}"[:300])

    async def receive(self, session: ModelSession, raw: str | bytes) -> None:
        """Time the caller's stamped audio and the tools' round trips, then as the server does."""
        assert isinstance(session, BenchModelSession)
        now = time.monotonic()
        event = orjson.loads(raw)
        kind = event.get("type", "")
        if kind == "input_audio_buffer.append":
            audio = base64.b64decode(event["audio"])
            if audio[:4] == CALLER_MAGIC:
                _, call_index, _, sent_ns = CALLER_HEADER.unpack_from(audio)
                session.call_index = call_index
                self.stats.in_latency.append((now, now - sent_ns / 1e9))
            return
        self.stats.client_events[kind] = self.stats.client_events.get(kind, 0) + 1
        if kind == "conversation.item.create":
            item = event.get("item") or {}
            sent = session.tool_sent.pop(str(item.get("call_id")), None)
            if sent is not None:
                self.stats.tool_rtt.append((sent[1], now - sent[0]))
                output = orjson.loads(item.get("output") or "{}")
                if "error" in output:
                    self.stats.tool_errors.append(f"{sent[1]}: {output['error']}")
        if await session.accept(event):
            session.keep(event)

    async def _run_script(self, session: ModelSession) -> None:
        assert isinstance(session, BenchModelSession)
        await self._script(session)

    async def _script(self, session: BenchModelSession) -> None:
        await session.handshake()
        turn = 0
        if self.waits_for_response:
            await session.next("response.create", timeout=120)
        while not session.closed.is_set():
            await self._speak(session, f"Turn {turn}: how can I help you today?")
            await asyncio.sleep(self.listen_seconds)
            if session.closed.is_set():
                return
            await session.user_says(f"Caller line {turn}.", after=0)
            if self.tools:
                name, arguments = self._tool_for(session, turn)
                await self._call_tool(session, name, arguments)
                await session.next("response.create", timeout=120)
            turn += 1

    async def _speak(self, session: BenchModelSession, text: str) -> None:
        response_id, item_id = session.new_id("resp"), session.new_id("item")
        await session.send(
            {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}
        )
        await session.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": {"id": item_id, "type": "message", "role": "assistant"},
            }
        )
        chunks = max(1, round(self.speak_seconds * 1000 / self.delta_ms))
        audio = bytearray([self.audio_byte(session.index)]) * (self.delta_ms * 8)
        start = time.monotonic()
        for chunk in range(chunks):
            delay = start + chunk * self.delta_ms / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if session.closed.is_set():
                return
            MODEL_HEADER.pack_into(audio, 0, MODEL_MAGIC, session.index, time.monotonic_ns())
            await session.ws.send(
                orjson.dumps(
                    {
                        "type": "response.output_audio.delta",
                        "event_id": session.new_id("event"),
                        "response_id": response_id,
                        "item_id": item_id,
                        "output_index": 0,
                        "content_index": 0,
                        "delta": base64.b64encode(audio).decode(),
                    }
                ).decode()
            )
        await session.finish(response_id, item_id, text)

    def _tool_for(self, session: BenchModelSession, turn: int) -> tuple[str, dict[str, Any]]:
        name, born, _ = self.patients[(session.call_index or 0) % len(self.patients)]
        if turn == 0:
            return "verify_patient", {"date_of_birth": born, "full_name": name}
        day = (date.today() + timedelta(days=3 + turn % 5)).isoformat()
        cycle = [
            ("check_availability", {"date": day, "time": "10:00"}),
            ("get_assigned_nurse", {}),
            ("check_availability", {"date": day, "time": "14:30", "duration_minutes": 30}),
            ("list_appointments", {}),
        ]
        return cycle[(turn - 1) % len(cycle)]

    async def _call_tool(
        self, session: BenchModelSession, name: str, arguments: dict[str, Any]
    ) -> None:
        await session.call_tool(name, arguments, wait_for_create=False, timeout=30)


# ================================================================== load generator (own process)


class BenchTwilioCall(FakeTwilioCall):
    """A fake Twilio media stream whose caller frames carry their send time, which reads the
    send time back from the model's audio, and which plays out at wall-clock pace."""

    def __init__(self, ws_url: str, index: int) -> None:
        super().__init__(ws_url, speed=1.0)
        self.index = index
        self.out_latency: list[tuple[float, float]] = []
        self.started_at: float | None = None
        self.first_audio_at: float | None = None
        self.frames_sent = 0
        self.send_lag_max = 0.0
        self.marks_received = 0
        self.unexpected: list[str] = []

    async def connect(self, signature: str | None) -> None:
        """Open the WebSocket as Twilio does (no permessage-deflate)."""
        headers = {"X-Twilio-Signature": signature} if signature is not None else {}
        self.ws = await websockets.connect(
            self.ws_url, additional_headers=headers, compression=None, open_timeout=30
        )
        self._tasks.append(asyncio.create_task(self._receive()))
        self._tasks.append(asyncio.create_task(self._playout()))

    async def start(self, call_sid: str, parameters: dict[str, str]) -> None:
        """`connected`, `start`, then timestamped caller audio every 20 ms."""
        self.started_at = time.monotonic()
        await super().start(call_sid, parameters)

    async def _send_audio(self) -> None:
        frame = bytearray([self.audio_byte]) * FRAME_BYTES
        begin = time.monotonic()
        sequence = 0
        while self._sending_audio:
            sequence += 1
            due = begin + sequence * FRAME_MS / 1000
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self.send_lag_max = max(self.send_lag_max, -delay)
            if not self._sending_audio:
                return
            CALLER_HEADER.pack_into(
                frame, 0, CALLER_MAGIC, self.index, sequence, time.monotonic_ns()
            )
            message = {
                "event": "media",
                "sequenceNumber": str(sequence + 1),
                "streamSid": self.stream_sid,
                "media": {
                    "track": "inbound",
                    "chunk": str(sequence),
                    "timestamp": str(sequence * FRAME_MS),
                    "payload": base64.b64encode(frame).decode(),
                },
            }
            try:
                await self.ws.send(orjson.dumps(message).decode())
            except websockets.ConnectionClosed:
                return
            self.frames_sent += 1

    async def _receive(self) -> None:
        try:
            async for raw in self.ws:
                now = time.monotonic()
                message = orjson.loads(raw)
                event = message.get("event")
                if event == "media":
                    audio = base64.b64decode(message["media"]["payload"])
                    if self.first_audio_at is None:
                        self.first_audio_at = now
                    if audio[:4] == MODEL_MAGIC:
                        _, _, sent_ns = MODEL_HEADER.unpack_from(audio)
                        self.out_latency.append((now, now - sent_ns / 1e9))
                    ms = len(audio) / 8
                    self.audio_received_ms += ms
                    if self.clears:
                        self.media_after_clear += 1
                    self.buffer.append(("audio", ms))
                elif event == "mark":
                    self.marks_received += 1
                    self.buffer.append(("mark", message["mark"]["name"]))
                    await self._play(0)
                elif event == "clear":
                    self.clears += 1
                    marks = [value for kind, value in self.buffer if kind == "mark"]
                    self.buffer.clear()
                    for name in marks:
                        await self._echo(name)
                elif len(self.unexpected) < 5:
                    self.unexpected.append(str(event))
        except websockets.ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd else None
        finally:
            self.closed.set()

    async def _playout(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(FRAME_MS / 1000)
            now = time.monotonic()
            await self._play((now - last) * 1000)
            last = now


async def _one_call(
    config: dict[str, Any], index: int, http: httpx.AsyncClient, start_at: float
) -> dict[str, Any]:
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    # Sticky routing, as a load balancer in front of several voice processes does: a call's
    # webhook and its stream go to the same process (the one holding its pre-opened model).
    base = config["bases"][index % len(config["bases"])]
    public = base
    _, _, phone = config["patients"][index % len(config["patients"])]
    call_sid = "CA" + uuid.uuid4().hex
    form = {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "From": phone,
        "To": PRACTICE_NUMBER,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    result: dict[str, Any] = {"index": index, "error": None}
    began = time.monotonic()
    try:
        response = await http.post(
            base + "/incoming-call",
            data=form,
            headers={"X-Twilio-Signature": sign(AUTH_TOKEN, public + "/incoming-call", form)},
        )
        result["webhook_s"] = time.monotonic() - began
        if response.status_code != 200 or "<Stream" not in response.text:
            result["error"] = f"/incoming-call answered {response.status_code}"
            return result
        stream_url, parameters = parse_stream_twiml(response.text)
        ws_url = base.replace("http://", "ws://") + "/media-stream"
        call = BenchTwilioCall(ws_url, index)
        await call.connect(sign(AUTH_TOKEN, stream_url, {}))
        await call.start(call_sid, parameters)
        end = time.monotonic() + config["seconds"]
        while time.monotonic() < end and not call.closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.closed.wait(), end - time.monotonic())
        if call.closed.is_set():
            result["error"] = f"service closed the stream early (code {call.close_code})"
        result["stop"] = time.monotonic()
        await call.stop()
        status = {**form, "CallStatus": "completed", "CallDuration": str(config["seconds"])}
        with contextlib.suppress(httpx.HTTPError):
            await http.post(
                base + "/call-status",
                data=status,
                headers={"X-Twilio-Signature": sign(AUTH_TOKEN, public + "/call-status", status)},
            )
        result.update(
            start=call.started_at,
            first_audio=call.first_audio_at,
            out_latency=[(round(t, 6), round(s, 6)) for t, s in call.out_latency],
            frames_sent=call.frames_sent,
            audio_received_ms=call.audio_received_ms,
            played_ms=call.played_ms,
            marks_received=call.marks_received,
            clears=call.clears,
            send_lag_max=call.send_lag_max,
            unexpected=call.unexpected,
        )
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"[:300]
        result.setdefault("stop", time.monotonic())
    return result


async def _generate(config: dict[str, Any]) -> dict[str, Any]:
    calls, ramp = config["calls"], config["ramp"]
    limits = httpx.Limits(max_connections=calls + 10, max_keepalive_connections=calls + 10)
    begin = max(time.monotonic() + 0.2, config.get("start_at") or 0.0)
    cpu0 = os.times()
    lags: list[float] = []
    watcher = asyncio.create_task(_watch_loop(lags))
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        results = await asyncio.gather(
            *(
                _one_call(config, i, http, begin + (ramp * i / calls if calls > 1 else 0))
                for i in range(calls)
            )
        )
    watcher.cancel()
    cpu1 = os.times()
    return {
        "calls": results,
        "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "loop_lag": lags,
    }


def generator_main(config_path: str) -> None:
    """The load generator's process: run the calls, write what it saw next to its config."""
    config = json.loads(Path(config_path).read_text())
    # The stand-ins' own full collections took 80-120 ms, which showed up as relay latency.
    freeze_startup_heap()
    out = uvloop.run(_generate(config))
    Path(config["output"]).write_text(json.dumps(out))


# ================================================================== orchestration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    queue += [int(c) for c in children.read().split()]
    return found


def _cpu_seconds(pids: list[int], part: str = "both") -> float:
    """utime + stime (or one of them: part "user", "system") of these processes, in seconds."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
            user, system = int(fields[11]), int(fields[12])
            ticks += {"user": user, "system": system}.get(part, user + system)
    return ticks / os.sysconf("SC_CLK_TCK")


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def _system_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    total = sum(values[:8])
    idle = values[3] + values[4]
    hz = os.sysconf("SC_CLK_TCK")
    return (total - idle) / hz, total / hz


def prepare_database(directory: Path, url: str | None) -> str:
    """A migrated database with the demo data: a temporary SQLite file unless `url` is given
    (a PostgreSQL database named there is created when missing)."""
    from core import migrate
    from core.db import make_engine, make_session_factory, transaction
    from core.seed import seed_demo

    if url is None:
        url = f"sqlite:///{directory / 'bridge.db'}"
    elif url.startswith("postgresql"):
        import psycopg
        from sqlalchemy import make_url

        target = make_url(url)
        admin = target.set(drivername="postgresql", database="postgres")
        with psycopg.connect(
            admin.render_as_string(hide_password=False), autocommit=True
        ) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{target.database}"')
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            seed_demo(session, now=datetime.now(UTC), password="bench-password-123")
    finally:
        engine.dispose()
    return url


async def _wait_quiet(max_wait: float, threshold: float = 0.3) -> float:
    """Wait (up to `max_wait` s) for a second in which the machine's other work took less than
    `threshold` cores; returns the cores it took in the last second sampled."""
    deadline = time.monotonic() + max_wait
    while True:
        busy0, total0 = _system_busy()
        await asyncio.sleep(1.0)
        busy1, total1 = _system_busy()
        cores = (busy1 - busy0) / ((total1 - total0) / (os.cpu_count() or 1) or 1)
        if cores < threshold or time.monotonic() >= deadline:
            return cores


async def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the voice service exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the voice service did not become healthy")


def _service_command(profile: Path | None) -> list[str]:
    """supervisord.conf's voice command (optionally under cProfile), run by a shell."""
    command = process_command("voice")
    if profile is not None:
        # The server runs in this one process (no worker processes), so cProfile sees the loop.
        command = command.replace(
            "exec python ", f"exec {sys.executable} -m cProfile -o {profile} ", 1
        )
    return ["sh", "-c", command]


async def _run_generator(
    work: Path,
    tag: str,
    calls: int,
    seconds: float,
    ramp: float,
    bases: list[str],
    start_at: float,
) -> dict[str, Any]:
    """Run the load generator in its own process; what it measured."""
    config_path = work / f"generator-{tag}.json"
    output_path = work / f"generator-{tag}.out.json"
    config = {
        "calls": calls,
        "seconds": seconds,
        "ramp": ramp,
        "bases": bases,
        "patients": _patients(),
        "output": str(output_path),
        "start_at": start_at,
    }
    config_path.write_text(json.dumps(config))
    generator = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).resolve()), "--generator", str(config_path), cwd=ROOT
    )
    try:
        await asyncio.wait_for(generator.wait(), seconds + ramp + 150)
    except TimeoutError:
        generator.kill()
        await generator.wait()
        raise
    result: dict[str, Any] = json.loads(output_path.read_text())
    return result


@dataclass(frozen=True)
class Variant:
    """What serves the calls in a run: this checkout, another one, or the Twilio sample."""

    label: str
    kind: str  # "carematix" or "sample"
    root: Path
    processes: int = 1  # voice service processes, each on its own port

    @classmethod
    def parse(cls, spec: str) -> Variant:
        """`LABEL=carematix`, `LABEL=carematix:DIR` or `LABEL=sample:DIR`, with an optional
        `*N` to serve the calls from N product processes (`two=carematix*2`)."""
        label, _, rest = spec.partition("=")
        rest, star, count = rest.partition("*")
        kind, _, directory = rest.partition(":")
        processes = int(count) if star and count.isdigit() else 1
        if (
            not label
            or kind not in ("carematix", "sample")
            or (kind == "sample" and (not directory or processes != 1))
            or (star and not count.isdigit())
            or processes < 1
        ):
            raise argparse.ArgumentTypeError(f"bad variant {spec!r}")
        return cls(label, kind, Path(directory).resolve() if directory else ROOT, processes)

    def command(self, profile: Path | None) -> list[str]:
        """How to start it."""
        if self.kind == "sample":
            return [str(self.root / ".venv" / "bin" / "python"), str(self.root / "main.py")]
        return _service_command(profile)

    def env(self, port: int, fake: BenchRealtime) -> dict[str, str]:
        """What it needs on top of the product's environment."""
        if self.kind == "sample":
            realtime = fake.base_url.replace("http://", "ws://") + "/realtime?model=gpt-realtime"
            return {"PORT": str(port), "OPENAI_REALTIME_URL": realtime}
        # Another checkout's modules come before this one's (installed in the venv).
        return {"PYTHONPATH": str(self.root)} if self.root != ROOT else {}

    @property
    def health_path(self) -> str:
        """A URL that answers 200 once it serves."""
        return "/" if self.kind == "sample" else "/health"


async def run_scenario(
    calls: int,
    args: argparse.Namespace,
    database_url: str,
    work: Path,
    variant: Variant | None = None,
) -> dict[str, Any]:
    """Start the fake, the service and the generator; measure one run of `calls` calls."""
    variant = variant or Variant("carematix", "carematix", ROOT)
    sample = variant.kind == "sample"
    fake = BenchRealtime(
        delta_ms=args.delta_ms,
        speak_seconds=args.speak_seconds,
        listen_seconds=args.listen_seconds,
        tools=not args.no_tools and not sample,
        waits_for_response=not sample,
    )
    await fake.start()
    ports = [_free_port() for _ in range(variant.processes)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    services: list[subprocess.Popen[bytes]] = []
    logs = []
    log_paths: list[Path] = []
    try:
        for number, port in enumerate(ports):
            base = bases[number]
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "SECRET_KEY": "bench-secret-key",
                "INTERNAL_API_TOKEN": "bench-internal-token",
                "PUBLIC_BASE_URL": base,
                "VOICE_HOST": "127.0.0.1",
                "VOICE_PORT": str(port),
                "OPENAI_API_KEY": "sk-bench",
                "OPENAI_BASE_URL": fake.base_url,
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_PHONE_NUMBER": PRACTICE_NUMBER,
                "TWILIO_API_BASE_URL": "http://127.0.0.1:9",  # never used: no hang-up or transfer
                "STAFF_PHONE_NUMBER": "",
                "REDIS_URL": "",
                "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
                **variant.env(port, fake),
            }
            suffix = f"-{number + 1}" if variant.processes > 1 else ""
            profile = (
                work / f"service-{variant.label}-{calls}{suffix}.prof" if args.profile else None
            )
            log_paths.append(work / f"service-{variant.label}-{calls}{suffix}.log")
            logs.append(open(log_paths[-1], "wb"))  # noqa: SIM115 (closed below)
            services.append(
                subprocess.Popen(
                    variant.command(profile),
                    cwd=variant.root,
                    env=env,
                    stdout=logs[-1],
                    stderr=subprocess.STDOUT,
                )
            )
        for base, service in zip(bases, services, strict=True):
            await _wait_healthy(base + variant.health_path, service, 60)
        await asyncio.sleep(0.5)
        pids = [pid for service in services for pid in _tree(service.pid)]
        ramp = args.ramp if args.ramp is not None else min(5.0, 0.05 * calls)
        if args.warmup:
            # A long-running service has its lazy imports and first connections behind it.
            await _run_generator(work, f"warmup-{calls}", len(bases), args.warmup, 0.0, bases, 0.0)
            await asyncio.sleep(CLOSE_GRACE_SECONDS + 0.5)
            fake.sessions.clear()
            fake.stats = ModelStats()
        # The fake lives in this process: its full collections (80-120 ms with the app's
        # modules imported) would show up as the service's latency.
        freeze_startup_heap()
        start_at = time.monotonic() + args.spawn_seconds
        lags: list[float] = []
        watcher = asyncio.create_task(_watch_loop(lags))
        generator = asyncio.create_task(
            _run_generator(work, str(calls), calls, args.seconds, ramp, bases, start_at)
        )
        await asyncio.sleep(max(0.0, start_at - 0.05 - time.monotonic()))
        load_before = os.getloadavg()
        service_cpu0 = _cpu_seconds(pids)
        service_sys0 = _cpu_seconds(pids, "system")
        busy0, total0 = _system_busy()
        own0 = os.times()
        generated = await generator
        results = generated["calls"]
        last_stop = max(r["stop"] for r in results if r.get("stop"))
        await asyncio.sleep(max(0.0, last_stop + CLOSE_GRACE_SECONDS + 0.05 - time.monotonic()))
        service_cpu1 = _cpu_seconds(pids)
        service_sys1 = _cpu_seconds(pids, "system")
        busy1, total1 = _system_busy()
        own1 = os.times()
        load_after = os.getloadavg()
        rss = _rss_mb(pids)
        served = [s for s in fake.sessions if isinstance(s, BenchModelSession)]
        sockets = _socket_report(served, results)
        watcher.cancel()
    finally:
        await asyncio.gather(
            *(_stop_service(service, profiled=args.profile) for service in services)
        )
        for log in logs:
            log.close()
        await fake.stop()

    own_cpu = (own1.user - own0.user) + (own1.system - own0.system)
    service_cpu = service_cpu1 - service_cpu0
    busy = busy1 - busy0
    elapsed = (total1 - total0) / (os.cpu_count() or 1)
    others = max(0.0, busy - service_cpu - own_cpu - generated["cpu_s"])
    summary = _summarise(
        calls=calls,
        args=args,
        ramp=ramp,
        fake=fake,
        results=results,
        sockets=sockets,
        cpu={
            "service_cpu_s": round(service_cpu, 3),
            "service_kernel_share": round((service_sys1 - service_sys0) / service_cpu, 3)
            if service_cpu
            else math.nan,
            "cpu_pct_per_call": round(100 * service_cpu / (calls * args.seconds), 3),
            "service_cores": round(service_cpu / elapsed, 3) if elapsed else math.nan,
            "fake_realtime_cores": round(own_cpu / elapsed, 3) if elapsed else math.nan,
            "generator_cores": round(generated["cpu_s"] / elapsed, 3) if elapsed else math.nan,
            "other_processes_cores": round(others / elapsed, 3) if elapsed else math.nan,
            "window_s": round(elapsed, 2),
            "service_rss_mb": round(rss, 1),
        },
        load={
            "before": [round(v, 2) for v in load_before],
            "after": [round(v, 2) for v in load_after],
        },
        service_log=_log_digest(log_paths),
        loop_lag={
            "fake_realtime": summarize(lags).as_dict(),
            "generator": summarize(generated["loop_lag"]).as_dict(),
        },
        profile=_profile_digest(work / f"service-{variant.label}-{calls}.prof")
        if args.profile and variant.processes == 1
        else None,
    )
    summary["variant"] = variant.label
    summary["processes"] = variant.processes
    return summary


def _socket_report(
    sessions: list[BenchModelSession], results: list[dict[str, Any]]
) -> dict[str, Any]:
    stops = {r["index"]: r["stop"] for r in results if r.get("stop")}
    now = time.monotonic()
    late, lags, orphans = 0, [], 0
    for session in sessions:
        if session.call_index is None or session.call_index not in stops:
            if session.closed_at is None:
                orphans += 1
            continue
        stop = stops[session.call_index]
        closed = session.closed_at if session.closed_at is not None else now
        lags.append(closed - stop)
        if session.closed_at is None or closed - stop > CLOSE_GRACE_SECONDS:
            late += 1
    return {
        "model_sockets": len(sessions),
        "open_1s_after_stop": late + orphans,
        "late": late,
        "unclaimed_open": orphans,
        "close_after_stop_ms": summarize(lags).as_dict() if lags else None,
    }


def _drift(samples: list[tuple[float, float]], begin: float, end: float) -> dict[str, Any]:
    """Median and p99 in the first and last 5 s of the steady window (all calls up), and how far
    the median of any one second of that window rose above the first 5 s (a backlog)."""
    first = [s * 1000 for t, s in samples if begin <= t < begin + DRIFT_WINDOW_SECONDS]
    last = [s * 1000 for t, s in samples if end - DRIFT_WINDOW_SECONDS <= t < end]
    if not first or not last or end - begin < 2 * DRIFT_WINDOW_SECONDS:
        return {"p50_drift_ms": math.nan, "max_rise_ms": math.nan}
    buckets: dict[int, list[float]] = {}
    for t, s in samples:
        if begin <= t < end:
            buckets.setdefault(int(t - begin), []).append(s * 1000)
    worst = max(percentile(v, 50) for v in buckets.values())
    return {
        "max_rise_ms": round(worst - percentile(first, 50), 3),
        "first_p50_ms": round(percentile(first, 50), 3),
        "last_p50_ms": round(percentile(last, 50), 3),
        "first_p99_ms": round(percentile(first, 99), 3),
        "last_p99_ms": round(percentile(last, 99), 3),
        "p50_drift_ms": round(percentile(last, 50) - percentile(first, 50), 3),
        "p99_drift_ms": round(percentile(last, 99) - percentile(first, 99), 3),
    }


def _per_second(samples: list[tuple[float, float]], begin: float) -> list[float]:
    """Median latency (ms) per second of the run: a growing backlog shows as a rising line."""
    buckets: dict[int, list[float]] = {}
    for t, s in samples:
        buckets.setdefault(int(t - begin), []).append(s * 1000)
    return [round(percentile(buckets[k], 50), 2) for k in sorted(buckets) if k >= 0]


def _summarise(
    *,
    calls: int,
    args: argparse.Namespace,
    ramp: float,
    fake: BenchRealtime,
    results: list[dict[str, Any]],
    sockets: dict[str, Any],
    cpu: dict[str, Any],
    load: dict[str, Any],
    service_log: dict[str, Any],
    loop_lag: dict[str, Any],
    profile: list[str] | None,
) -> dict[str, Any]:
    ok = [r for r in results if r.get("start")]
    out_samples = [(t, s) for r in ok for t, s in r["out_latency"]]
    in_samples = fake.stats.in_latency
    first_audio = [r["first_audio"] - r["start"] for r in ok if r.get("first_audio")]
    begin = min((r["start"] for r in ok), default=0.0)
    steady_begin = max((r["start"] for r in ok), default=0.0) + 1.0
    steady_end = min((r["stop"] for r in ok), default=0.0)
    frames_sent = sum(r["frames_sent"] for r in ok)
    tool_by_name: dict[str, list[float]] = {}
    for name, seconds in fake.stats.tool_rtt:
        tool_by_name.setdefault(name, []).append(seconds)
    return {
        "calls": calls,
        "seconds_per_call": args.seconds,
        "ramp_s": ramp,
        "delta_ms": args.delta_ms,
        "calls_failed": [r["error"] for r in results if r.get("error")][:10],
        "twilio_to_model": summarize([s for _, s in in_samples]).as_dict(),
        "model_to_twilio": summarize([s for _, s in out_samples]).as_dict(),
        "tool_round_trip": summarize([s for _, s in fake.stats.tool_rtt]).as_dict(),
        "tool_round_trip_by_name": {k: summarize(v).as_dict() for k, v in tool_by_name.items()},
        "tool_errors": sorted(set(fake.stats.tool_errors))[:10],
        "first_audio": summarize(first_audio).as_dict(),
        "webhook": summarize([r["webhook_s"] for r in results if "webhook_s" in r]).as_dict(),
        "drift_twilio_to_model": _drift(in_samples, steady_begin, steady_end),
        "drift_model_to_twilio": _drift(out_samples, steady_begin, steady_end),
        "per_second_p50_twilio_to_model": _per_second(in_samples, begin),
        "per_second_p50_model_to_twilio": _per_second(out_samples, begin),
        "frames_sent": frames_sent,
        "frames_relayed": len(in_samples),
        "audio_sent_to_twilio_ms": round(sum(r["audio_received_ms"] for r in ok)),
        "marks_received": sum(r["marks_received"] for r in ok),
        "clears": sum(r["clears"] for r in ok),
        "generator_send_lag_max_ms": round(
            max((r["send_lag_max"] for r in ok), default=0) * 1000, 2
        ),
        "sockets": sockets,
        "cpu": cpu,
        "loadavg": load,
        "client_events": fake.stats.client_events,
        "script_errors": fake.stats.script_errors[:10],
        "service_log": service_log,
        "measuring_loop_lag": loop_lag,
        "profile_top": profile,
    }


async def _stop_service(service: subprocess.Popen[bytes], *, profiled: bool) -> None:
    if service.poll() is None:
        # uvicorn re-raises the signal once it has shut down; only SIGINT (a
        # KeyboardInterrupt) still lets cProfile write its file.
        service.send_signal(signal.SIGINT if profiled else signal.SIGTERM)
        try:
            await asyncio.to_thread(service.wait, 20)
        except subprocess.TimeoutExpired:
            service.kill()
            await asyncio.to_thread(service.wait)


def _log_digest(paths: list[Path]) -> dict[str, Any]:
    lines = [
        line
        for path in paths
        if path.exists()
        for line in path.read_text(errors="replace").splitlines()
    ]
    interesting = [
        line for line in lines if "WARNING" in line or "ERROR" in line or "Traceback" in line
    ]
    return {"lines": len(lines), "warnings_or_errors": len(interesting), "sample": interesting[:5]}


def _profile_digest(path: Path) -> list[str]:
    import io
    import pstats

    if not path.exists():
        return ["(no profile written)"]
    buffer = io.StringIO()
    pstats.Stats(str(path), stream=buffer).sort_stats("tottime").print_stats(25)
    return buffer.getvalue().splitlines()[-40:]


def _verdict(value: float, target: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return "PASS" if value <= target else "MISS"


def report(runs: list[dict[str, Any]]) -> None:
    """Print the figures and the targets."""
    headers = [
        "variant",
        "calls",
        "T->M p50",
        "T->M p99",
        "M->T p50",
        "M->T p99",
        "tool p50",
        "tool p99",
        "1st audio p50",
        "1st audio p99",
        "CPU %/call",
        "open >1s",
        "failed",
        "load before",
        "others (cores)",
    ]
    rows = []
    for run in runs:
        rows.append(
            [
                run.get("variant", ""),
                run["calls"],
                run["twilio_to_model"]["p50_ms"],
                run["twilio_to_model"]["p99_ms"],
                run["model_to_twilio"]["p50_ms"],
                run["model_to_twilio"]["p99_ms"],
                run["tool_round_trip"]["p50_ms"],
                run["tool_round_trip"]["p99_ms"],
                run["first_audio"]["p50_ms"],
                run["first_audio"]["p99_ms"],
                run["cpu"]["cpu_pct_per_call"],
                run["sockets"]["open_1s_after_stop"],
                len(run["calls_failed"]),
                f"{run['loadavg']['before'][0]:.2f}",
                f"{run['cpu']['other_processes_cores']:.2f}",
            ]
        )
    print("\nLatencies in ms (T->M: Twilio frame sent -> append received by the model; M->T: delta")
    print("sent by the model -> media frame received by Twilio; tool: arguments done -> output).")
    print_table(headers, rows)

    print("\nLatency over the run (p50/p99 of the first vs last 5 s with every call up, ms):")
    drift_rows = []
    for run in runs:
        for label, key in (("T->M", "drift_twilio_to_model"), ("M->T", "drift_model_to_twilio")):
            d = run[key]
            drift_rows.append(
                [
                    f"{run.get('variant', '')} {run['calls']}".strip(),
                    label,
                    d.get("first_p50_ms", math.nan),
                    d.get("last_p50_ms", math.nan),
                    d.get("first_p99_ms", math.nan),
                    d.get("last_p99_ms", math.nan),
                    d.get("p50_drift_ms", math.nan),
                    d.get("max_rise_ms", math.nan),
                ]
            )
    print_table(
        [
            "calls",
            "dir",
            "first p50",
            "last p50",
            "first p99",
            "last p99",
            "p50 drift",
            "max 1-s p50 rise",
        ],
        drift_rows,
    )

    print("\nTargets (issue 3):")
    target_rows = []
    by_calls = {run["calls"]: run for run in runs}
    if 50 in by_calls:
        run = by_calls[50]
        for label, key in (("T->M", "twilio_to_model"), ("M->T", "model_to_twilio")):
            value = run[key]["p99_ms"]
            target_rows.append([f"50 calls: {label} p99 <= 15 ms", value, _verdict(value, 15.0)])
        value = run["cpu"]["cpu_pct_per_call"]
        target_rows.append(
            ["50 calls: CPU <= 0.8% of a core per call", value, _verdict(value, 0.8)]
        )
    if 100 in by_calls:
        run = by_calls[100]
        for label, key in (("T->M", "drift_twilio_to_model"), ("M->T", "drift_model_to_twilio")):
            value = run[key].get("max_rise_ms", math.nan)
            target_rows.append(
                [
                    f"100 calls: {label} flat (1-s p50 rise <= {DRIFT_TARGET_MS:g} ms)",
                    value,
                    _verdict(value, DRIFT_TARGET_MS),
                ]
            )
    tool_p99s = [run["tool_round_trip"]["p99_ms"] for run in runs]
    worst_tool = max((v for v in tool_p99s if not math.isnan(v)), default=math.nan)
    target_rows.append(
        ["tool round trip p99 <= 50 ms (worst run)", worst_tool, _verdict(worst_tool, 50.0)]
    )
    worst_open = max((run["sockets"]["open_1s_after_stop"] for run in runs), default=0)
    target_rows.append(
        ["model sockets open 1 s after stop = 0", worst_open, _verdict(worst_open, 0)]
    )
    print_table(["target", "measured", "verdict"], target_rows, align="lrl")

    print("\nContext per run (cores = CPU seconds / wall seconds of the run window):")
    context_rows = [
        [
            f"{run.get('variant', '')} {run['calls']}".strip(),
            run["cpu"]["service_cores"],
            run["cpu"]["service_kernel_share"],
            run["cpu"]["fake_realtime_cores"],
            run["cpu"]["generator_cores"],
            run["cpu"]["other_processes_cores"],
            " ".join(f"{v:.2f}" for v in run["loadavg"]["before"]),
            " ".join(f"{v:.2f}" for v in run["loadavg"]["after"]),
            run["cpu"]["service_rss_mb"],
            run["sockets"]["model_sockets"],
            f"{run['frames_relayed']}/{run['frames_sent']}",
            run["measuring_loop_lag"]["fake_realtime"]["p99_ms"],
            run["measuring_loop_lag"]["generator"]["p99_ms"],
        ]
        for run in runs
    ]
    print_table(
        [
            "calls",
            "service",
            "svc kernel share",
            "fake model",
            "generator",
            "other procs",
            "loadavg before",
            "loadavg after",
            "RSS MB",
            "model sockets",
            "frames relayed/sent",
            "fake loop lag p99",
            "gen loop lag p99",
        ],
        context_rows,
    )
    print(
        f"\nMachine: {machine_description()}. Other work may share these cores: the "
        "'other procs' column is CPU used by processes outside this benchmark during each run."
    )
    for run in runs:
        problems = run["calls_failed"] + run["script_errors"] + run["tool_errors"]
        if problems or run["service_log"]["warnings_or_errors"]:
            print(f"\n{run['calls']} calls: problems: {problems[:5]}")
            print(f"  service log: {run['service_log']}")
        if run.get("profile_top"):
            print(f"\n{run['calls']} calls: service profile (tottime):")
            print("\n".join(run["profile_top"]))


def _span(values: list[float]) -> str:
    """`low-high` of the values (one value alone)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    low, high = min(values), max(values)
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def compare(runs: list[dict[str, Any]]) -> None:
    """Per count of calls, each variant's range over its rounds (when variants alternated)."""
    if len({run.get("variant") for run in runs}) < 2:
        return
    rows = []
    for calls in sorted({run["calls"] for run in runs}):
        for variant in dict.fromkeys(run.get("variant") for run in runs):
            same = [r for r in runs if r["calls"] == calls and r.get("variant") == variant]
            if not same:
                continue
            rows.append(
                [
                    calls,
                    variant,
                    len(same),
                    _span([r["cpu"]["cpu_pct_per_call"] for r in same]),
                    _span(
                        [
                            max(r["twilio_to_model"]["p99_ms"], r["model_to_twilio"]["p99_ms"])
                            for r in same
                        ]
                    ),
                    _span(
                        [
                            max(
                                r["drift_twilio_to_model"].get("max_rise_ms", math.nan),
                                r["drift_model_to_twilio"].get("max_rise_ms", math.nan),
                            )
                            for r in same
                        ]
                    ),
                    max(r["sockets"]["open_1s_after_stop"] for r in same),
                    sum(len(r["calls_failed"]) for r in same),
                    _span([r["cpu"]["other_processes_cores"] for r in same]),
                ]
            )
    print("\nSide by side (range over the rounds; relay p99 is the worse direction, ms):")
    print_table(
        [
            "calls",
            "variant",
            "runs",
            "CPU %/call",
            "relay p99",
            "max 1-s p50 rise",
            "open >1s",
            "failed",
            "others (cores)",
        ],
        rows,
    )


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run every scenario in turn; write the results as they come."""
    work = Path(tempfile.mkdtemp(prefix="bench-bridge-"))
    runs: list[dict[str, Any]] = []
    try:
        database_url = await asyncio.to_thread(prepare_database, work, args.database_url)
        variants = args.variants or [Variant("carematix", "carematix", ROOT)]
        plan = [
            (calls, variant)
            for calls in args.calls
            for _ in range(args.rounds)
            for variant in variants
        ]
        for calls, variant in plan:
            busy = math.nan
            if args.wait_quiet:
                busy = await _wait_quiet(args.wait_quiet)
                print(f"   (other work before starting: {busy:.2f} cores)", flush=True)
            print(
                f"== {variant.label}: {calls} concurrent calls x {args.seconds:g} s "
                f"(loadavg {' '.join(f'{v:.2f}' for v in os.getloadavg())})",
                flush=True,
            )
            run = await run_scenario(calls, args, database_url, work, variant)
            run["other_work_before_cores"] = round(busy, 2)
            runs.append(run)
            print(
                f"   T->M p99 {run['twilio_to_model']['p99_ms']} ms, "
                f"M->T p99 {run['model_to_twilio']['p99_ms']} ms, "
                f"tool p99 {run['tool_round_trip']['p99_ms']} ms, "
                f"CPU {run['cpu']['cpu_pct_per_call']}%/call, "
                f"open sockets {run['sockets']['open_1s_after_stop']}, "
                f"failed {len(run['calls_failed'])}",
                flush=True,
            )
            _write(runs, args)
            await asyncio.sleep(1)
    finally:
        if args.keep:
            print(f"work files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return runs


def _write(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "bench/bridge.py",
        "command": " ".join([".venv/bin/python", "bench/bridge.py", *sys.argv[1:]]),
        "machine": machine_description(),
        "database": (args.database_url or "sqlite (temporary file)").split(":", 1)[0],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "targets": TARGETS,
        "runs": runs,
    }
    output = Path(args.output) if args.output else RESULTS
    output.write_text(json.dumps(payload, indent=1) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 20, 50, 100])
    parser.add_argument("--seconds", type=float, default=25.0, help="length of each call")
    parser.add_argument("--ramp", type=float, default=None, help="spread call starts (s)")
    parser.add_argument("--delta-ms", type=int, default=20, help="audio per model delta")
    parser.add_argument("--speak-seconds", type=float, default=2.0, help="agent turn length")
    parser.add_argument("--listen-seconds", type=float, default=1.0, help="caller turn length")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=90.0,
        help="wait up to this long for the machine to be idle before each run (0: don't)",
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up call (s), 0: none")
    parser.add_argument("--spawn-seconds", type=float, default=3.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: a temporary SQLite file; a PostgreSQL database is created if missing",
    )
    parser.add_argument(
        "--no-tools", action="store_true", help="relay only: the model never calls a tool"
    )
    parser.add_argument(
        "--variants",
        type=Variant.parse,
        nargs="+",
        default=None,
        help="LABEL=carematix, LABEL=carematix:DIR or LABEL=sample:DIR, alternated (see above)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each variant per count")
    parser.add_argument("--profile", action="store_true", help="cProfile the service")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--output", default=None, help=f"default: {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--generator", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    """Entry point."""
    args = parse_args()
    if args.generator:
        generator_main(args.generator)
        return
    runs = uvloop.run(main_async(args))
    report(runs)
    compare(runs)


if __name__ == "__main__":
    main()
