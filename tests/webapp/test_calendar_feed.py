"""A nurse's private calendar feed over HTTP: the URL secret is the only credential."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import select

from core.db import make_engine, make_session_factory
from core.models import Nurse
from core.notifications.feeds import calendar_feed_path, rotate_calendar_token
from core.services.booking import book_appointment, cancel_appointment
from tests.services.world import ACTOR, build_world, local
from webapp import create_app, db

NOW = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


@pytest.fixture
def feed_world(db_url):
    """A nurse with one kept and one cancelled visit, and her feed token."""
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    world = build_world(factory, NOW)
    with factory() as session:
        kept = book_appointment(
            session,
            patient_id=world.patient_id,
            start=local(NOW.date() + timedelta(days=1), 10),
            actor=ACTOR,
            now=NOW,
        )
        dropped = book_appointment(
            session,
            patient_id=world.other_patient_id,
            start=local(NOW.date() + timedelta(days=1), 11),
            actor=ACTOR,
            now=NOW,
        )
        cancel_appointment(session, dropped.id, actor=ACTOR, now=NOW)
        token = rotate_calendar_token(session, world.nurse_id, ACTOR, NOW)
        session.commit()
        ids = (kept.id, dropped.id)
    engine.dispose()
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": db_url,
            "FEED_CLOCK": lambda: NOW,
        }
    )
    yield app, token, ids
    with app.app_context():
        db.engine.dispose()


def test_the_feed_lists_visits_with_stable_uids_and_cancellations(feed_world):
    app, token, (kept_id, dropped_id) = feed_world
    response = app.test_client().get(calendar_feed_path(token))
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    assert response.headers["Cache-Control"] == "no-store"  # it names patients
    events = {
        str(event["uid"]): event for event in Calendar.from_ical(response.data).walk("VEVENT")
    }
    assert set(events) == {
        f"appointment-{kept_id}@carematix",
        f"appointment-{dropped_id}@carematix",
    }
    assert str(events[f"appointment-{kept_id}@carematix"]["status"]) == "CONFIRMED"
    cancelled = events[f"appointment-{dropped_id}@carematix"]
    assert str(cancelled["status"]) == "CANCELLED"
    assert int(cancelled["sequence"]) == 1
    assert b"Diabetes" not in response.data  # no clinical details in the feed


def test_an_unknown_or_rotated_token_is_a_plain_404(feed_world, db_url):
    app, token, _ = feed_world
    client = app.test_client()
    assert client.get(calendar_feed_path("not-a-token")).status_code == 404
    engine = make_engine(db_url)
    with make_session_factory(engine)() as session:
        nurse_id = session.scalar(select(Nurse.id).where(Nurse.calendar_token_hash.isnot(None)))
        rotate_calendar_token(session, nurse_id, ACTOR, NOW)
        session.commit()
    engine.dispose()
    assert client.get(calendar_feed_path(token)).status_code == 404
