"""The states of one live call and the moves its table allows (pure, no sockets)."""

from __future__ import annotations

import pytest

from voice.call_state import ALLOWED_MOVES, CallLifecycle, CallState, IllegalMove


def walk(*states: CallState) -> CallLifecycle:
    """A lifecycle moved through `states` in order."""
    lifecycle = CallLifecycle(call_id=7)
    for state in states:
        lifecycle.move(state)
    return lifecycle


def test_a_call_starts_by_connecting_to_the_model() -> None:
    assert CallLifecycle(call_id=7).state is CallState.CONNECTING


def test_an_ordinary_call_greets_converses_closes_and_ends() -> None:
    lifecycle = walk(CallState.GREETING, CallState.CONVERSING, CallState.CLOSING, CallState.ENDED)
    assert lifecycle.state is CallState.ENDED
    assert lifecycle.closing


def test_a_dropped_model_reconnects_and_the_conversation_goes_on() -> None:
    lifecycle = walk(CallState.GREETING, CallState.CONVERSING, CallState.RECONNECTING)
    assert not lifecycle.hearing  # the fresh session is still being told the call
    lifecycle.move(CallState.CONVERSING)
    assert lifecycle.hearing


def test_a_handed_over_call_still_lets_the_model_hear_the_caller() -> None:
    lifecycle = walk(CallState.GREETING, CallState.HANDING_OVER)
    assert lifecycle.handing_over
    assert lifecycle.hearing


def test_an_illegal_move_is_refused_and_changes_nothing() -> None:
    lifecycle = walk(CallState.GREETING, CallState.CONVERSING, CallState.HANDING_OVER)

    with pytest.raises(IllegalMove, match="handing_over -> conversing"):
        lifecycle.move(CallState.CONVERSING)

    assert lifecycle.state is CallState.HANDING_OVER


def test_a_second_hand_over_is_not_allowed() -> None:
    lifecycle = walk(CallState.GREETING, CallState.HANDING_OVER)
    assert not lifecycle.move_if_allowed(CallState.HANDING_OVER)
    assert lifecycle.state is CallState.HANDING_OVER


def test_nothing_is_handed_over_once_the_call_is_closing() -> None:
    lifecycle = walk(CallState.GREETING, CallState.CONVERSING, CallState.CLOSING)
    assert not lifecycle.move_if_allowed(CallState.HANDING_OVER)
    assert lifecycle.state is CallState.CLOSING


def test_a_call_that_never_reached_the_model_is_lost_then_closes() -> None:
    lifecycle = walk(CallState.MODEL_LOST, CallState.CLOSING, CallState.ENDED)
    assert lifecycle.state is CallState.ENDED


@pytest.mark.parametrize("state", list(CallState))
def test_every_state_has_a_row_and_every_live_state_can_close(state: CallState) -> None:
    assert state in ALLOWED_MOVES
    if state not in (CallState.CLOSING, CallState.ENDED):
        assert CallState.CLOSING in ALLOWED_MOVES[state]


def test_an_ended_call_moves_nowhere() -> None:
    lifecycle = walk(CallState.CLOSING, CallState.ENDED)
    for state in CallState:
        assert not lifecycle.can_move(state)
