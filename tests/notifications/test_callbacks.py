"""Twilio status callbacks move a sent text to delivered or failed; bad ones are refused."""

from __future__ import annotations

from datetime import timedelta

from twilio.request_validator import RequestValidator

from core.models import NotificationStatus
from core.notifications.callbacks import (
    apply_status_callback,
    status_callback_response,
    verify_twilio_signature,
)
from core.notifications.delivery import run_once
from tests.notifications.helpers import queue_sms, rows
from tests.services.world import build_world

URL = "https://carematix.example/twilio/message-status"


def _sent(factory, now, providers, config) -> str:
    world = build_world(factory, now)
    queue_sms(factory, now, world.patient_id, 1)
    run_once(factory, now, providers, config=config)
    [row] = rows(factory)
    assert row.provider_id
    return row.provider_id


def _apply(factory, params, now):
    with factory() as session:
        result = apply_status_callback(session, params, now)
        session.commit()
        return result


def test_a_delivered_callback_marks_the_text_delivered(
    session_factory, frozen_now, fake_twilio, providers, config
):
    sid = _sent(session_factory, frozen_now, providers, config)
    later = frozen_now + timedelta(seconds=5)
    result = _apply(session_factory, {"MessageSid": sid, "MessageStatus": "delivered"}, later)
    assert (result.ok, result.outcome, result.status) == (True, "updated", "delivered")
    [row] = rows(session_factory)
    assert (row.status, row.delivered_at) == (NotificationStatus.DELIVERED, later)
    # A late "sent" arriving after "delivered" changes nothing.
    late = _apply(session_factory, {"MessageSid": sid, "MessageStatus": "sent"}, later)
    assert late.outcome == "unchanged"
    assert rows(session_factory)[0].status == NotificationStatus.DELIVERED


def test_an_undelivered_callback_marks_it_failed_with_the_error_code(
    session_factory, frozen_now, fake_twilio, providers, config
):
    sid = _sent(session_factory, frozen_now, providers, config)
    params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert _apply(session_factory, params, frozen_now).status == "failed"
    [row] = rows(session_factory)
    assert row.status == NotificationStatus.FAILED
    assert row.last_error == "twilio reported undelivered (error 30003)"


def test_unknown_and_malformed_callbacks_are_refused_without_a_crash(session_factory, frozen_now):
    build_world(session_factory, frozen_now)
    unknown = _apply(
        session_factory, {"MessageSid": "SMnope", "MessageStatus": "delivered"}, frozen_now
    )
    assert (unknown.ok, unknown.outcome) == (False, "unknown message")
    for params in (
        {},
        {"MessageSid": "SM1"},
        {"MessageSid": "SM1", "MessageStatus": "weird"},
        {"MessageSid": "S" * 100, "MessageStatus": "sent"},
    ):
        result = _apply(session_factory, params, frozen_now)
        assert (result.ok, result.outcome) == (False, "malformed")


def test_signatures_are_checked_against_the_auth_token():
    params = {"MessageSid": "SM123", "MessageStatus": "delivered"}
    signature = RequestValidator("secret").compute_signature(URL, params)
    assert verify_twilio_signature("secret", URL, params, signature)
    assert not verify_twilio_signature("other", URL, params, signature)
    assert not verify_twilio_signature(
        "secret", URL, {**params, "MessageStatus": "failed"}, signature
    )
    assert not verify_twilio_signature("secret", URL, params, None)
    assert not verify_twilio_signature("", URL, params, signature)


def test_the_endpoint_logic_refuses_unsigned_callbacks_and_applies_signed_ones(
    session_factory, frozen_now, fake_twilio, providers, config
):
    sid = _sent(session_factory, frozen_now, providers, config)
    params = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": "AC1"}
    good = RequestValidator("secret").compute_signature(URL, params)
    common = {"auth_token": "secret", "url": URL, "params": params, "now": frozen_now}

    assert status_callback_response(session_factory, signature="forged", **common) == (
        403,
        "invalid signature",
    )
    assert rows(session_factory)[0].status == NotificationStatus.SENT
    assert status_callback_response(session_factory, signature=good, **common) == (204, "")
    assert rows(session_factory)[0].status == NotificationStatus.DELIVERED

    unknown = {**common, "params": {"MessageSid": "SMx", "MessageStatus": "failed"}}
    status, reason = status_callback_response(
        session_factory, signature=None, allow_unsigned=True, **unknown
    )
    assert (status, reason) == (404, "no notification has that sid")
    malformed = {**common, "params": {"MessageStatus": "failed"}}
    assert (
        status_callback_response(session_factory, signature=None, allow_unsigned=True, **malformed)[
            0
        ]
        == 400
    )
