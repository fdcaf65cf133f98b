"""What the caller heard of the agent, and what a barge-in truncates (pure, no sockets)."""

from __future__ import annotations

from voice.playout import AudioMarks, PlayoutTracker, Truncation


def send(tracker: PlayoutTracker, item: str, response: str, *chunks: float) -> list[str]:
    """Send `chunks` (ms) of one item's audio; the names of the marks that went with it."""
    marks = []
    for ms in chunks:
        sent = tracker.audio_sent(item, response, ms)
        marks += [name for name in (sent.before, sent.after) if name is not None]
    return marks


def test_a_mark_follows_every_hundred_ms_of_audio() -> None:
    tracker = PlayoutTracker()

    assert tracker.audio_sent("item1", "resp1", 60.0) == AudioMarks(None, None)
    assert tracker.audio_sent("item1", "resp1", 60.0) == AudioMarks(None, "a1")
    assert tracker.marks == {"a1": ("item1", 120.0)}


def test_a_new_item_closes_the_previous_items_audio_with_a_mark_first() -> None:
    tracker = PlayoutTracker()
    tracker.audio_sent("item1", "resp1", 40.0)

    marks = tracker.audio_sent("item2", "resp1", 20.0)

    assert marks == AudioMarks("a1", None)
    assert tracker.marks["a1"] == ("item1", 40.0)


def test_the_end_of_an_answer_is_marked_once() -> None:
    tracker = PlayoutTracker()
    tracker.audio_sent("item1", "resp1", 40.0)

    assert tracker.flush() == "a1"
    assert tracker.flush() is None


def test_barge_in_truncates_at_the_last_echoed_mark() -> None:
    tracker = PlayoutTracker()
    marks = send(tracker, "item1", "resp1", 100.0, 100.0, 100.0)  # a1 at 100, a2 at 200, a3 at 300
    assert marks == ["a1", "a2", "a3"]
    assert tracker.mark_played("a1")
    assert tracker.mark_played("a2")

    cuts = tracker.cut(generating=None)

    assert cuts == [Truncation("item1", audio_end_ms=200, heard_share=200 / 300)]
    assert tracker.heard_share("item1") == 200 / 300
    assert not tracker.audio_unheard()  # Twilio's queue was cleared with the marks


def test_a_reply_queued_behind_another_is_cut_at_nothing_heard() -> None:
    tracker = PlayoutTracker()
    send(tracker, "item1", "resp1", 100.0)
    send(tracker, "item2", "resp1", 100.0)
    tracker.mark_played("a1")  # item1 heard in full, item2 not at all

    cuts = tracker.cut(generating=None)

    assert cuts == [Truncation("item2", audio_end_ms=0, heard_share=0.0)]


def test_an_answer_still_being_generated_is_cut_even_when_all_sent_was_heard() -> None:
    tracker = PlayoutTracker()
    send(tracker, "item1", "resp1", 100.0)
    tracker.mark_played("a1")

    cuts = tracker.cut(generating="resp1")

    assert cuts == [Truncation("item1", audio_end_ms=100, heard_share=1.0)]
    assert tracker.is_dropped("item1", "resp1")
    assert tracker.response_dropped("resp1")  # its later deltas never reach the caller


def test_nothing_is_cut_when_the_caller_heard_everything() -> None:
    tracker = PlayoutTracker()
    send(tracker, "item1", "resp1", 100.0)
    tracker.mark_played("a1")

    assert tracker.cut(generating=None) == []
    assert tracker.heard_share("item1") is None


def test_a_mark_echoed_after_a_barge_in_is_stale() -> None:
    tracker = PlayoutTracker()
    send(tracker, "item1", "resp1", 100.0, 100.0)
    tracker.cut(generating=None)

    assert not tracker.mark_played("a2")
    assert tracker.played_ms == {}


def test_marks_echoed_out_of_order_never_lower_what_was_heard() -> None:
    tracker = PlayoutTracker()
    send(tracker, "item1", "resp1", 100.0, 100.0)
    tracker.mark_played("a2")
    tracker.mark_played("a1")

    assert tracker.played_ms["item1"] == 200.0


def test_a_fresh_model_session_forgets_the_old_items_but_not_what_was_cut() -> None:
    tracker = PlayoutTracker()
    send(tracker, "item1", "resp1", 100.0, 50.0)
    tracker.mark_played("a1")
    tracker.cut(generating=None)
    send(tracker, "item2", "resp2", 100.0)

    tracker.new_model_session()

    assert not tracker.audio_unheard()
    assert tracker.cut(generating=None) == []  # never truncate the old session's items
    assert tracker.heard_share("item1") == 100 / 150  # still needed to replay the cut answer
