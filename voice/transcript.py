"""The call's transcript: each line in conversation order, stored as it completes.

Lines go through the shared log writer (one group commit for every call), or, without one,
straight to the database in a worker thread. The turns are also kept in memory, in order, so
a fresh model session can be told the conversation (voice.model_link).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.db import RETRY_DELAYS_SECONDS, retry_transient, transaction
from core.logs import log_failure
from core.metrics import CALLS_FINISHED
from core.models import Call, LogRole
from core.services import calls
from voice.log_writer import LogWriter, store_lines

logger = logging.getLogger(__name__)

# A finished call waits this long for its last lines, which the writer keeps trying to store
# through a database blip, before it assembles the transcript.
LAST_LINES_WAIT_SECONDS = sum(RETRY_DELAYS_SECONDS) + 5


@dataclass
class Turn:
    """One item of the conversation, kept to replay into a fresh model session."""

    role: str  # a LogRole; TOOL for a function call
    text: str = ""
    item_id: str = ""
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    result: dict[str, Any] | None = None  # a function call's output, once it has one


class TranscriptWriter:
    """Keeps one call's turns in order and stores each line once it is complete."""

    def __init__(
        self, call_id: int, sessions: sessionmaker[Session], log_writer: LogWriter | None
    ) -> None:
        self.call_id = call_id
        self.sessions = sessions
        self.log_writer = log_writer
        # Conversation order: a position is reserved when an item first appears.
        self._positions: dict[str, int] = {}
        self._next_position = 0
        self.history: dict[int, Turn] = {}
        # An answer's transcript arrives whole only at its end: what was generated before a
        # cut-off (a barge-in, a dropped socket) is kept from the deltas.
        self._partial_text: dict[str, list[str]] = {}
        self._partial_response: dict[str, str | None] = {}
        self._stored_assistant_items: set[str] = set()
        self._interrupted_items: set[str] = set()
        self._writes: set[asyncio.Future[Any]] = set()

    def position(self, key: str) -> int:
        """The conversation position of an item (reserved the first time it is seen)."""
        if key not in self._positions:
            self._positions[key] = self._next_position
            self._next_position += 1
        return self._positions[key]

    def turns(self) -> list[Turn]:
        """The conversation so far, in order."""
        return [self.history[position] for position in sorted(self.history)]

    # ------------------------------------------------------------ lines

    def user_said(self, item_id: str, text: str) -> None:
        """The caller's words, as transcribed."""
        self.store_line(item_id, LogRole.USER, text)

    def system_line(self, key: str, text: str) -> None:
        """A line of ours (a keypress), under a key of ours rather than a model item id."""
        self.store_line(key, LogRole.SYSTEM, text, from_model=False)

    def assistant_delta(self, item_id: str, response_id: str | None, delta: str) -> None:
        """Part of an answer's transcript, kept in case the answer is cut off."""
        if item_id in self._stored_assistant_items:
            return
        self.position(item_id)
        self._partial_text.setdefault(item_id, []).append(delta)
        self._partial_response[item_id] = response_id

    def assistant_said(self, item_id: str, text: str) -> None:
        """An answer's whole transcript (ignored when it was already kept as cut off)."""
        self._partial_text.pop(item_id, None)
        self._partial_response.pop(item_id, None)
        if item_id in self._stored_assistant_items:
            return
        self._stored_assistant_items.add(item_id)
        self.store_line(
            item_id, LogRole.ASSISTANT, text, interrupted=item_id in self._interrupted_items
        )

    def interrupted(self, item_id: str) -> None:
        """The caller cut this answer off: flag its line (now, or when it is stored)."""
        self._interrupted_items.add(item_id)
        if item_id in self._stored_assistant_items:
            self._in_thread(self._mark_interrupted_sync, item_id)

    def keep_cut_off_answers(self, response_id: str | None = None) -> None:
        """Store what was generated of answers (of `response_id`) never to be whole."""
        for item_id in list(self._partial_text):
            if response_id is not None and self._partial_response.get(item_id) != response_id:
                continue
            text = "".join(self._partial_text.pop(item_id))
            self._partial_response.pop(item_id, None)
            if item_id in self._stored_assistant_items:
                continue
            self._stored_assistant_items.add(item_id)
            self._interrupted_items.add(item_id)
            self.store_line(item_id, LogRole.ASSISTANT, text, interrupted=True)

    def tool_called(self, item_id: str, call_id: str, name: str, raw_arguments: Any) -> int:
        """A function call the model made; its position (the tool's output fills the turn)."""
        position = self.position(item_id or call_id)
        self.history[position] = Turn(
            LogRole.TOOL,
            call_id=call_id,
            name=name,
            arguments=raw_arguments
            if isinstance(raw_arguments, str)
            else json.dumps(raw_arguments),
        )
        return position

    def store_line(
        self,
        item_id: str,
        role: str,
        text: str,
        *,
        interrupted: bool = False,
        from_model: bool = True,
    ) -> None:
        """Store one line at the place of `item_id` (a key of ours when not `from_model`)."""
        if not isinstance(text, str):
            text = ""
        position = self.position(item_id)
        self.history[position] = Turn(role, text, item_id if from_model else "")
        self.log(
            calls.log_row(
                call_id=self.call_id,
                position=position,
                role=role,
                text=text,
                item_id=(item_id or None) if from_model else None,
                interrupted=interrupted,
                now=datetime.now(UTC),
            )
        )

    def log(self, row: dict[str, Any]) -> None:
        """Store one conversation row (through the shared writer when there is one)."""
        if self.log_writer is None:
            self._in_thread(store_lines, self.sessions, [row])
            return
        stored = asyncio.wrap_future(self.log_writer.submit(row))
        self._writes.add(stored)
        stored.add_done_callback(self._line_stored)

    # ------------------------------------------------------------ the end

    async def assemble(self) -> None:
        """Wait for the last lines, then close the call's record with its transcript."""
        self.keep_cut_off_answers()  # the caller hung up mid-answer
        if self._writes:
            await asyncio.wait(list(self._writes), timeout=LAST_LINES_WAIT_SECONDS)
        try:
            outcome = await asyncio.to_thread(retry_transient, self._finish_sync)
        except Exception:
            log_failure(logger, "call %s: could not assemble the transcript", self.call_id)
            outcome = "unrecorded"
        CALLS_FINISHED.labels(outcome=outcome).inc()

    def _finish_sync(self, _attempt: int = 0) -> str:
        # Safe to repeat: the end time and outcome are kept once set, the transcript rebuilt.
        with transaction(self.sessions) as session:
            calls.finish_call(session, self.call_id, now=datetime.now(UTC))
            call = session.get(Call, self.call_id)
            return (call.outcome if call is not None else None) or "completed"

    def _in_thread(self, function: Callable[..., Any], *args: Any) -> None:
        task = asyncio.ensure_future(asyncio.to_thread(function, *args))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def _line_stored(self, stored: asyncio.Future[None]) -> None:
        self._writes.discard(stored)
        if not stored.cancelled() and stored.exception() is not None:
            logger.error("call %s: a conversation line was not stored", self.call_id)

    def _mark_interrupted_sync(self, item_id: str) -> None:
        with transaction(self.sessions) as session:
            calls.mark_interrupted(session, call_id=self.call_id, item_id=item_id)
