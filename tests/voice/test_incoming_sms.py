"""Texts in over real loopback sockets: a patient's YES or NO answers the time held for them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Appointment, OfferStatus, WaitlistOffer
from core.services import waitlist
from core.services.booking import free_slots
from tests.services.world import ACTOR, World, build_world
from tests.voice.fakes import idle
from tests.voice.stack import open_factory, voice_stack

JOHN = "+12025550101"  # the world's first patient
SARAH = "+12025550102"
PATH = "/twilio/incoming-sms"


def _hold_a_time(factory: sessionmaker[Session], now: datetime) -> tuple[World, int]:
    """Both patients wait (John first); the nurse's first free visit from tomorrow is freed
    and held for John."""
    world = build_world(factory, now)
    with factory() as session:
        for patient_id in (world.patient_id, world.other_patient_id):
            waitlist.join(
                session,
                patient_id=patient_id,
                until_date=(now + timedelta(days=20)).date(),
                actor=ACTOR,
                now=now,
            )
            now += timedelta(seconds=1)
        first = free_slots(
            session,
            world.nurse_id,
            start=now + timedelta(days=1),
            end=now + timedelta(days=8),
            now=now,
        )[0]
        [offer] = waitlist.offer_freed_time(
            session, world.nurse_id, first.start, first.end, now, hold=timedelta(hours=1)
        )
        session.commit()
        return world, offer.id


def _offers(factory: sessionmaker[Session]) -> list[tuple[int, str]]:
    with factory() as session:
        return [
            (o.entry_id, o.status)
            for o in session.scalars(select(WaitlistOffer).order_by(WaitlistOffer.id))
        ]


def _reply(body: str) -> str:
    """The text of a MessagingResponse."""
    message = ElementTree.fromstring(body).find("Message")
    assert message is not None, body
    return message.text or ""


def _text(stack, from_number: str, words: str, **kwargs):  # type: ignore[no-untyped-def]
    return stack.post_twilio(
        PATH, {"From": from_number, "Body": words, "MessageSid": "SM1"}, **kwargs
    )


def test_yes_books_the_held_time_and_unsigned_unknown_or_unclear_texts_change_nothing(
    sqlite_url: str,
) -> None:
    factory = open_factory(sqlite_url)
    world, offer_id = _hold_a_time(factory, datetime.now(UTC))
    before = _offers(factory)

    async def scenario() -> None:
        async with voice_stack(sqlite_url, idle) as stack:
            for signature in (None, "forged"):
                forged = await _text(stack, JOHN, "YES", signature=signature)
                assert forged.status_code == 403
            unknown = await _text(stack, "+12025559999", "YES")
            assert unknown.status_code == 200
            assert "could not find a time held" in _reply(unknown.text)
            unclear = await _text(stack, JOHN, "what is this?")
            assert "reply YES to book" in _reply(unclear.text)
            assert _offers(factory) == before

            booked = await _text(stack, JOHN, " Yes! ")
            assert booked.headers["content-type"].startswith("text/xml")
            assert "you are booked for" in _reply(booked.text)
            again = await _text(stack, JOHN, "YES")
            assert "no time held for you" in _reply(again.text)

    asyncio.run(scenario())
    with factory() as session:
        offer = session.get_one(WaitlistOffer, offer_id)
        assert offer.status == OfferStatus.ACCEPTED
        [visit] = session.scalars(select(Appointment)).all()
        assert (visit.id, visit.patient_id) == (offer.appointment_id, world.patient_id)


def test_no_passes_the_time_to_the_next_in_line(sqlite_url: str) -> None:
    factory = open_factory(sqlite_url)
    _hold_a_time(factory, datetime.now(UTC))

    async def scenario() -> None:
        async with voice_stack(sqlite_url, idle) as stack:
            nothing = await _text(stack, SARAH, "yes")
            assert "no time held for you" in _reply(nothing.text)
            declined = await _text(stack, JOHN, "no")
            assert "passed that time on" in _reply(declined.text)

    asyncio.run(scenario())
    assert [status for _, status in _offers(factory)] == ["declined", "offered"]
    with factory() as session:
        assert session.scalars(select(Appointment)).all() == []
