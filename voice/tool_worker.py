"""A tool worker process: runs read-only tools on request lines from the service
(see voice.tool_processes, which starts and talks to it)."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_session_factory, read_only
from core.heap import freeze_startup_heap
from core.logs import log_failure
from core.models import Patient, PatientNurseAssignment
from voice.tool_calls import ReadToolCall, WriteNeeded
from voice.tools import CallContext, ToolBox

logger = logging.getLogger(__name__)

# Tests serve many databases from one process; a worker keeps this many engines open.
MAX_DATABASES_PER_WORKER = 8

_databases: OrderedDict[str, sessionmaker[Session]] = OrderedDict()


def serve(sock: socket.socket) -> None:
    """The worker: answer request lines until the service closes the socket."""
    # Ctrl-C in a terminal reaches the whole process group; the service decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with sock, sock.makefile("rwb") as stream:
        stream.write(b'{"ready": true}\n')
        stream.flush()
        for line in stream:
            request = orjson.loads(line)
            request_id = request.pop("id", None)
            try:
                if "warm" in request:
                    _warm(request["warm"])
                    freeze_startup_heap()
                    reply = {"id": request_id, "result": {}}
                    stream.write(orjson.dumps(reply) + b"\n")
                    stream.flush()
                    continue
                request["context"] = CallContext(**request["context"])
                reply = {"id": request_id, "result": _run(ReadToolCall(**request))}
            except WriteNeeded:
                reply = {"id": request_id, "write_needed": True}
            except Exception as exc:
                log_failure(logger, "a tool worker could not run a request")
                reply = {"id": request_id, "error": type(exc).__name__}
            stream.write(orjson.dumps(reply) + b"\n")
            stream.flush()


def _sessions(url: str) -> sessionmaker[Session]:
    """Read-only sessions on `url`, opened once per worker; the database refuses writes."""
    if url in _databases:
        _databases.move_to_end(url)
        return _databases[url]
    if len(_databases) >= MAX_DATABASES_PER_WORKER:
        _, oldest = _databases.popitem(last=False)
        oldest.kw["bind"].dispose()
    if url.startswith("postgresql"):
        engine = make_engine(url, connect_args={"options": "-c default_transaction_read_only=on"})
    else:
        engine = make_engine(url)
        event.listen(engine, "connect", _sqlite_query_only)
    _databases[url] = make_session_factory(read_only(engine))
    return _databases[url]


def _sqlite_query_only(dbapi_connection: Any, _record: Any) -> None:
    # A worker only reads: should a tool try to write here, the database refuses it.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


def _run(call: ReadToolCall) -> dict[str, Any]:
    tools = ToolBox(_sessions(call.database_url), call.context, reads_only=True)
    tools.patient_id, tools.time_zone = call.patient_id, call.time_zone
    return tools.dispatch_sync(call.name, call.arguments, call.tool_call_id)


def _warm(url: str) -> None:
    """Run each read-only tool once for a patient who has a nurse, discarding the answers.

    A worker's first tool call opened its database connection, compiled its statements and
    loaded time zones: about 60 ms, which the first caller of each worker used to wait for.
    """
    sessions = _sessions(url)
    with sessions() as session:
        found = session.execute(
            select(Patient.id, Patient.time_zone)
            .join(PatientNurseAssignment, PatientNurseAssignment.patient_id == Patient.id)
            .limit(1)
        ).first()
    if found is None:
        return  # an empty database: nothing to warm on
    tools = ToolBox(sessions, CallContext(0, "", "inbound", "", ""), reads_only=True)
    tools.patient_id, tools.time_zone = found
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    for name, arguments in (
        ("check_availability", {"date": day, "time": "10:00"}),
        ("check_availability", {"date": day, "time": "03:00"}),  # refused: alternatives
        ("check_availability", {"date": day}),
        ("list_appointments", {}),
        ("get_assigned_nurse", {}),
    ):
        with contextlib.suppress(WriteNeeded):  # the assignment has ended: nothing to read
            tools.dispatch_sync(name, arguments, "warm-up")
