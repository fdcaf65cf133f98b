"""gunicorn reads this file from the working directory; supervisord.conf's flags set the rest."""

from __future__ import annotations

import errno
import socket
from typing import Any


def on_starting(server: Any) -> None:
    """Refuse to start on an address that another server is already listening on.

    supervisord.conf asks for SO_REUSEPORT so that the kernel spreads connections across the
    workers. The same option would let a second dashboard (a second `make run`, an old one
    left running) share the port silently, each answering some of the requests with its own
    code and database. A probe bound without it fails while anyone listens there.
    """
    for address in server.cfg.address:
        if not isinstance(address, tuple):
            continue  # a Unix socket path: gunicorn itself refuses one in use
        host, port = address[0], address[1]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # Connections of a previous run in TIME_WAIT do not count as "in use".
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise SystemExit(
                        f"{host}:{port} is already in use: is the dashboard running already?"
                    ) from exc
                raise


def post_worker_init(worker: Any) -> None:
    """Freeze what the worker built while loading the app out of full garbage collections."""
    from core.heap import freeze_startup_heap

    freeze_startup_heap()
