"""The agent's reply time: from the caller's end of speech to the first audio relayed."""

from __future__ import annotations

import pytest

from voice.reply_timer import ReplyTimer


def test_a_turn_is_timed_once_from_end_of_speech_to_first_audio() -> None:
    now = [100.0]
    timer = ReplyTimer(clock=lambda: now[0])
    assert timer.agent_spoke() is None  # the greeting: nobody was waiting
    timer.caller_stopped()
    now[0] = 100.8
    assert timer.agent_spoke() == pytest.approx(0.8)
    now[0] = 100.9
    assert timer.agent_spoke() is None  # the rest of the same reply
    timer.caller_stopped()
    now[0] = 102.0
    timer.caller_stopped()  # the caller spoke again before the agent answered
    now[0] = 102.5
    assert timer.agent_spoke() == pytest.approx(0.5)
