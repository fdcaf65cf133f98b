"""Loopback stand-ins for the providers: a fake Twilio REST API and an SMTP sink."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token"
FROM_NUMBER = "+15005550006"


@dataclass
class FakeTwilio:
    """Checks auth and form fields like the Messages API, records messages, fails on request."""

    messages: list[dict[str, str]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    # Each request pops one scripted failure (HTTP status, Twilio code) while any remain.
    failures: list[tuple[int, int]] = field(default_factory=list)
    fail_always: tuple[int, int] | None = None
    # Seconds to stall after accepting a message, before answering (a provider that hangs).
    stall_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    # Called with each accepted message while its sender waits for the answer.
    on_message: Callable[[dict[str, str]], None] | None = None

    def handle(self, path: str, auth: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        """The API's answer to one POST."""
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if auth != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if path != f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json":
            return 404, {"code": 20404, "message": "not found", "status": 404}
        form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
        if not form.get("To") or not form.get("Body"):
            return 400, {"code": 21604, "message": "'To' and 'Body' are required", "status": 400}
        if ("From" in form) == ("MessagingServiceSid" in form):
            return 400, {"code": 21603, "message": "From or MessagingServiceSid", "status": 400}
        with self.lock:
            failure = self.failures.pop(0) if self.failures else self.fail_always
            if failure is not None:
                status, code = failure
                self.rejected.append((status, form["To"]))
                return status, {
                    "code": code,
                    "message": f"The 'To' number {form['To']} is not valid",
                    "status": status,
                }
            sid = "SM" + secrets.token_hex(16)
            self.messages.append({**form, "sid": sid})
            stall = self.stall_seconds
        if self.on_message is not None:
            self.on_message(form)
        if stall:
            time.sleep(stall)
        return 201, {
            "sid": sid,
            "status": "queued",
            "to": form["To"],
            "body": form["Body"],
            "account_sid": ACCOUNT_SID,
        }

    def sent_to(self) -> list[str]:
        """Recipient numbers, in order received."""
        with self.lock:
            return [m["To"] for m in self.messages]


def start_fake_twilio() -> tuple[FakeTwilio, ThreadingHTTPServer]:
    """A FakeTwilio served on a free loopback port in a daemon thread."""
    fake = FakeTwilio()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, payload = fake.handle(
                self.path, self.headers.get("Authorization"), self.rfile.read(length)
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return fake, server


class SmtpSink:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.refuse: dict[str, str] = {}  # recipient -> SMTP reply, e.g. "550 no such user"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content)
        with self.lock:
            self.messages.append(
                {
                    "to": list(envelope.rcpt_tos),
                    "subject": parsed["Subject"],
                    "message_id": parsed["Message-ID"],
                    "body": parsed.get_payload(),
                }
            )
        return "250 OK"


def free_port() -> int:
    """A loopback port nobody is listening on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_smtp() -> tuple[SmtpSink, Controller]:
    """An SMTP sink on a free loopback port."""
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    return sink, controller
