"""Read-only tools run in worker processes, away from the relay's event loop.

The relay spends most of a busy service's CPU under one GIL. A tool run in a thread beside it
gives the GIL up at every database call and waits for it back each time, often the whole
switch interval (5 ms), so ten statements could cost a caller tens of milliseconds of silence,
and the handoffs cost the relay CPU too (bench/bridge.py). A worker process has its own GIL.

Only tools that only read go there (availability, the visit list, and the assigned nurse when
there is one): they change no state of the call, and writes stay in the service process, where
SQLite's writers queue on one lock. A tool that finds it must write (a patient without a nurse
gets one assigned) answers `WriteNeeded`, and the service runs it again in a thread. The
event loop talks to each worker over a socket, one JSON line per request and per reply, so no
thread of the service (and no GIL handoff) sits between a tool call and its answer. A worker
that dies fails only its requests in flight, which then run in a thread; a new one replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import socket
from typing import Any

import orjson

from core.logs import log_failure
from voice import tool_worker
from voice.tool_calls import ReadToolCall, WriteNeeded

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 5
MAX_REPLY_BYTES = 4 * 1024 * 1024


class ToolWorkerGone(RuntimeError):
    """No worker could answer (it died, or none is running): run the tool here instead."""


class ToolWorker:
    """One worker process and the socket to it, driven by the serving event loop."""

    def __init__(
        self,
        process: Any,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.process = process
        self.reader = reader
        self.writer = writer
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.alive = True
        self._next_id = 0
        self._replies = asyncio.get_running_loop().create_task(self._read_replies())

    @classmethod
    async def start(cls) -> ToolWorker:
        """Fork a worker from the preloaded fork server and wait until it is ready."""
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.to_thread(_launch, theirs)
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=MAX_REPLY_BYTES)
        try:
            ready = await asyncio.wait_for(reader.readline(), START_TIMEOUT_SECONDS)
        except BaseException:
            writer.close()
            process.kill()
            raise
        if orjson.loads(ready or b"{}").get("ready") is not True:
            writer.close()
            process.kill()
            raise ToolWorkerGone("the tool worker did not start")
        return cls(process, reader, writer)

    async def run(self, call: ReadToolCall) -> dict[str, Any]:
        """Send one call and wait for its result."""
        return await self._ask(dataclasses.asdict(call))

    async def warm(self, database_url: str) -> None:
        """Have the worker run each read-only tool once on `database_url` (see `_warm`)."""
        await self._ask({"warm": database_url})

    async def _ask(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self.alive:
            raise ToolWorkerGone("the tool worker has stopped")
        self._next_id += 1
        request_id = self._next_id
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[request_id] = answer
        try:
            self.writer.write(orjson.dumps({**body, "id": request_id}) + b"\n")
            return await answer
        finally:
            self.waiting.pop(request_id, None)

    async def _read_replies(self) -> None:
        try:
            while line := await self.reader.readline():
                reply = orjson.loads(line)
                answer = self.waiting.pop(reply.get("id"), None)
                if answer is None or answer.done():
                    continue
                if "result" in reply:
                    answer.set_result(reply["result"])
                elif reply.get("write_needed"):
                    answer.set_exception(WriteNeeded())
                else:
                    answer.set_exception(ToolWorkerGone(str(reply.get("error"))))
        except Exception:
            log_failure(logger, "unreadable reply from a tool worker")
        finally:
            self.alive = False
            for answer in self.waiting.values():
                if not answer.done():
                    answer.set_exception(ToolWorkerGone("the tool worker stopped"))
            self.waiting.clear()

    async def stop(self) -> None:
        """Close the socket (the worker exits when it reads the end) and reap the process."""
        self.alive = False
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        self._replies.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._replies
        await asyncio.to_thread(self.process.join, STOP_TIMEOUT_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            await asyncio.to_thread(self.process.join, STOP_TIMEOUT_SECONDS)


class ToolProcesses:
    """The worker processes of one serving app."""

    def __init__(self, workers: int) -> None:
        self.size = workers
        self.workers: list[ToolWorker] = []
        self.database_url: str | None = None
        self._replacing: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self, database_url: str | None = None) -> None:
        """Start every worker (forked from a server that has the tools imported), then warm
        each on `database_url` so that no caller waits for the first run's setup."""
        self.database_url = database_url
        started = await asyncio.gather(
            *(ToolWorker.start() for _ in range(self.size)), return_exceptions=True
        )
        self.workers = [worker for worker in started if isinstance(worker, ToolWorker)]
        failed = [error for error in started if isinstance(error, BaseException)]
        if failed:
            await self.close()
            raise failed[0]
        await self._warm(self.workers)

    async def _warm(self, workers: list[ToolWorker]) -> None:
        if self.database_url is None:
            return
        try:
            await asyncio.wait_for(
                asyncio.gather(*(worker.warm(self.database_url) for worker in workers)),
                START_TIMEOUT_SECONDS,
            )
        except Exception:  # a cold worker is slower, not wrong
            log_failure(logger, "tool workers could not warm up")

    async def run(self, call: ReadToolCall) -> dict[str, Any]:
        """The tool's result, from the least busy live worker."""
        alive = [worker for worker in self.workers if worker.alive]
        if len(alive) < self.size:
            self._replace_dead()
        if not alive:
            raise ToolWorkerGone("no tool worker is running")
        worker = min(alive, key=lambda w: len(w.waiting))
        return await worker.run(call)

    async def close(self) -> None:
        """Stop the workers."""
        self._closed = True
        if self._replacing is not None:
            self._replacing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._replacing
        workers, self.workers = self.workers, []
        await asyncio.gather(*(worker.stop() for worker in workers), return_exceptions=True)

    def _replace_dead(self) -> None:
        if self._closed or (self._replacing is not None and not self._replacing.done()):
            return
        self._replacing = asyncio.get_running_loop().create_task(self._replace())

    async def _replace(self) -> None:
        dead = [worker for worker in self.workers if not worker.alive]
        logger.warning("%d tool worker process(es) stopped; starting new ones", len(dead))
        for worker in dead:
            await worker.stop()
            try:
                fresh = await ToolWorker.start()
            except Exception:
                log_failure(logger, "could not start a tool worker")
                return
            await self._warm([fresh])
            self.workers = [fresh if w is worker else w for w in self.workers]


def _launch(theirs: socket.socket) -> Any:
    """Start a worker process holding `theirs` (blocking: run it in a thread)."""
    context = multiprocessing.get_context("forkserver")
    # Forked from a server that imported the tools once: a new worker is ready in milliseconds,
    # and nothing of the service (threads, sockets, locks) is copied into it.
    context.set_forkserver_preload(["voice.tool_worker"])
    process = context.Process(
        target=tool_worker.serve, args=(theirs,), name="carematix-tools", daemon=True
    )
    process.start()
    return process
