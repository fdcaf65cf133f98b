"""What the caller has heard of the agent: audio sent, marks echoed, what to cut on barge-in.

Pure bookkeeping, no I/O: the orchestrator sends what this returns (mark names, truncations).
Times are milliseconds of mu-law audio per assistant item. Twilio echoes a mark once the
audio before it has played, so what an echoed mark covers is what the caller heard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# A mark goes after at most this much audio (and at the end of each answer). Twilio echoes it
# once played, so barge-in truncates at the last echoed mark: never more than this much short
# of what was heard, at a fifth of the messages of marking every 20 ms delta.
MARK_INTERVAL_MS = 100.0


class AudioMarks(NamedTuple):
    """The marks to send around one audio delta (None: no mark)."""

    # A tuple, not a dataclass: one is built for every 20 ms delta of every call.
    before: str | None  # closes the previous item's audio, sent before this delta
    after: str | None  # closes this delta's stretch, sent after it


@dataclass(frozen=True)
class Truncation:
    """One assistant item cut off at what the caller heard of it."""

    item_id: str
    audio_end_ms: int
    heard_share: float  # of the audio sent for it, 0..1


@dataclass
class PlayoutTracker:
    """Audio sent to Twilio and heard by the caller, per assistant item, for one call."""

    mark_interval_ms: float = MARK_INTERVAL_MS
    sent_ms: dict[str, float] = field(default_factory=dict)
    played_ms: dict[str, float] = field(default_factory=dict)
    marks: dict[str, tuple[str, float]] = field(default_factory=dict)
    item_response: dict[str, str | None] = field(default_factory=dict)
    # Cut off: their remaining audio (and the rest of their response) is never sent.
    dropped_items: set[str] = field(default_factory=set)
    dropped_responses: set[str] = field(default_factory=set)
    # Of each interrupted answer, the share of its audio the caller heard (for a replay).
    heard_shares: dict[str, float] = field(default_factory=dict)
    _mark_counter: int = 0
    _unmarked_item: str | None = None  # audio sent since the last mark, and its item
    _unmarked_ms: float = 0.0

    def is_dropped(self, item_id: str, response_id: str | None) -> bool:
        """Audio (or text) of a cut-off item or response: not for the caller."""
        return item_id in self.dropped_items or response_id in self.dropped_responses

    def response_dropped(self, response_id: str | None) -> bool:
        """A response cut off by a barge-in: its later deltas are not part of the call."""
        return response_id in self.dropped_responses

    def audio_sent(self, item_id: str, response_id: str | None, ms: float) -> AudioMarks:
        """Count `ms` of `item_id`'s audio as sent; the marks to send around it."""
        before = self.flush() if self._unmarked_item not in (None, item_id) else None
        self.item_response[item_id] = response_id
        self.sent_ms[item_id] = self.sent_ms.get(item_id, 0.0) + ms
        self._unmarked_item = item_id
        self._unmarked_ms += ms
        after = self.flush() if self._unmarked_ms >= self.mark_interval_ms else None
        return AudioMarks(before, after)

    def flush(self) -> str | None:
        """A mark for the audio sent since the last one (None if there is none)."""
        item_id = self._unmarked_item
        if item_id is None:
            return None
        self._unmarked_item, self._unmarked_ms = None, 0.0
        self._mark_counter += 1
        name = f"a{self._mark_counter}"
        self.marks[name] = (item_id, self.sent_ms.get(item_id, 0.0))
        return name

    def mark_played(self, name: str) -> bool:
        """Twilio echoed mark `name`: its audio was heard. False for a stale (cleared) mark."""
        entry = self.marks.pop(name, None)
        if entry is None:
            return False
        item_id, ms = entry
        if ms > self.played_ms.get(item_id, 0.0):
            self.played_ms[item_id] = ms
        return True

    def forget_marks(self) -> None:
        """Twilio's queue was dropped: the marks it will echo (or not) mean nothing now."""
        self.marks.clear()
        self._unmarked_item, self._unmarked_ms = None, 0.0

    def audio_unheard(self) -> bool:
        """Audio sent to Twilio that it has not confirmed playing yet."""
        return bool(self.marks) or self._unmarked_item is not None

    def unheard_items(self, generating: str | None) -> list[str]:
        """Items not heard in full (or of response `generating`, still growing), in send order."""
        unheard = []
        for item_id, sent in self.sent_ms.items():
            if item_id in self.dropped_items:
                continue
            still_generating = generating is not None and self.item_response.get(item_id) == (
                generating
            )
            if self.played_ms.get(item_id, 0.0) < sent or still_generating:
                unheard.append(item_id)
        return unheard

    def cut(self, generating: str | None) -> list[Truncation]:
        """Cut every unheard item at what was heard (none: all heard, nothing to do).

        `generating` is the response the model is still producing, if any: it is dropped too.
        """
        unheard = self.unheard_items(generating)
        if not unheard:
            return []
        cuts = []
        for item_id in unheard:
            # A reply queued behind another was cleared at Twilio too: its heard part (maybe
            # none) is what the model must keep, or it believes the caller heard it all.
            sent = self.sent_ms[item_id]
            audio_end_ms = int(min(sent, self.played_ms.get(item_id, 0.0)))
            share = audio_end_ms / sent if sent else 0.0
            self.heard_shares[item_id] = share
            self.dropped_items.add(item_id)
            cuts.append(Truncation(item_id, audio_end_ms, share))
        if generating is not None:
            self.dropped_responses.add(generating)
        self.forget_marks()  # Twilio echoes the cleared marks; they are stale now
        return cuts

    def heard_share(self, item_id: str) -> float | None:
        """The share of an interrupted item the caller heard (None if it was not cut)."""
        return self.heard_shares.get(item_id)

    def new_model_session(self) -> None:
        """A fresh model session: the old one's item ids mean nothing there, never truncate them."""
        self.forget_marks()
        self.sent_ms.clear()
        self.played_ms.clear()
        self.item_response.clear()
