"""Nurse calendar feeds: stable UIDs, rising SEQUENCE, cancellations, revocable tokens."""

from __future__ import annotations

from icalendar import Calendar
from sqlalchemy import select

from core.models import AuditEvent, Nurse
from core.notifications.feeds import (
    calendar_feed,
    nurse_for_calendar_token,
    revoke_calendar_token,
    rotate_calendar_token,
)
from core.services.booking import cancel_appointment, reschedule_appointment
from tests.notifications.helpers import TUESDAY, book
from tests.services.world import ACTOR, build_world, local


def _events(factory, nurse_id: int, now) -> dict[str, object]:
    with factory() as session:
        nurse = session.get(Nurse, nurse_id)
        feed = calendar_feed(session, nurse, now)
    calendar = Calendar.from_ical(feed)
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


def test_the_feed_parses_and_shows_only_first_name_and_kind(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    appointment_id = book(session_factory, frozen_now, world.patient_id)
    events = _events(session_factory, world.nurse_id, frozen_now)
    event = events[f"appointment-{appointment_id}@carematix"]
    assert str(event["SUMMARY"]) == "Phone call with John"
    assert event["DTSTART"].dt == local(TUESDAY, 10)
    assert event["DTSTART"].dt.utcoffset().total_seconds() == 0  # written in UTC
    assert event["DTEND"].dt == local(TUESDAY, 10, 30)
    assert int(event["SEQUENCE"]) == 0
    assert str(event["STATUS"]) == "CONFIRMED"
    raw = event.to_ical().decode()
    assert "Smith" not in raw and "Diabetes" not in raw and "+1202" not in raw
    assert _events(session_factory, world.other_nurse_id, frozen_now) == {}


def test_the_feed_round_trips_a_reschedule_and_a_cancellation(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    first = book(session_factory, frozen_now, world.patient_id)
    before = _events(session_factory, world.nurse_id, frozen_now)
    with session_factory() as session:
        moved = reschedule_appointment(
            session, first, new_start=local(TUESDAY, 13), actor=ACTOR, now=frozen_now
        )
        session.commit()
        moved_id = moved.id
    after = _events(session_factory, world.nurse_id, frozen_now)
    old_uid, new_uid = f"appointment-{first}@carematix", f"appointment-{moved_id}@carematix"
    assert int(after[old_uid]["SEQUENCE"]) > int(before[old_uid]["SEQUENCE"])
    assert str(after[old_uid]["STATUS"]) == "CANCELLED"
    assert str(after[new_uid]["STATUS"]) == "CONFIRMED"
    assert after[new_uid]["DTSTART"].dt == local(TUESDAY, 13)

    with session_factory() as session:
        cancel_appointment(session, moved_id, actor=ACTOR, now=frozen_now)
        session.commit()
    final = _events(session_factory, world.nurse_id, frozen_now)
    assert str(final[new_uid]["STATUS"]) == "CANCELLED"
    assert int(final[new_uid]["SEQUENCE"]) == int(after[new_uid]["SEQUENCE"]) + 1
    assert set(final) == {old_uid, new_uid}  # UIDs are stable: no duplicates appear


def test_rotating_the_token_revokes_the_old_link(session_factory, frozen_now):
    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        first = rotate_calendar_token(session, world.nurse_id, ACTOR, frozen_now)
        session.commit()
    with session_factory() as session:
        assert nurse_for_calendar_token(session, first).id == world.nurse_id
        stored = session.get(Nurse, world.nurse_id).calendar_token_hash
        assert stored != first and len(stored) == 64
        second = rotate_calendar_token(session, world.nurse_id, ACTOR, frozen_now)
        session.commit()
    with session_factory() as session:
        assert nurse_for_calendar_token(session, first) is None
        assert nurse_for_calendar_token(session, second).id == world.nurse_id
        assert nurse_for_calendar_token(session, "") is None
        revoke_calendar_token(session, world.nurse_id, ACTOR, frozen_now)
        session.commit()
    with session_factory() as session:
        assert nurse_for_calendar_token(session, second) is None
        actions = session.scalars(select(AuditEvent.action)).all()
        assert actions.count("nurse.calendar_token_rotated") == 2


def test_a_visit_of_a_series_is_in_the_feed_and_says_which_visit_it_is(session_factory, frozen_now):
    from core.operations import SeriesDetails
    from core.services.series import book_series

    world = build_world(session_factory, frozen_now)
    with session_factory() as session:
        booked = book_series(
            session,
            SeriesDetails.model_validate(
                {
                    "patient_id": world.patient_id,
                    "start": local(TUESDAY, 10).isoformat(),
                    "weekdays": ["tue"],
                    "count": 2,
                }
            ),
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
        ids = [a.id for a in booked.booked]
    events = _events(session_factory, world.nurse_id, frozen_now)
    second = events[f"appointment-{ids[1]}@carematix"]
    assert str(second["DESCRIPTION"]).startswith("Visit 2 of a series: Every week on Tuesday")
    assert str(second["SUMMARY"]) == "Phone call with John"
