"""The waitlist on a real database (SQLite and PostgreSQL): offers, holds, answers, lapses."""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import InvalidState, SlotUnavailable, ValidationError
from core.models import (
    Appointment,
    AppointmentStatus,
    AuditEvent,
    Notification,
    OfferStatus,
    PatientNurseAssignment,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
)
from core.notifications.settings import NotifySettings
from core.notifications.worker import Worker
from core.operations import SeriesDetails
from core.services import waitlist
from core.services.assignments import assign_nurse
from core.services.availability import add_override, remove_override
from core.services.booking import (
    book_appointment,
    cancel_appointment,
    check_availability,
    free_slots,
    reschedule_appointment,
)
from core.services.people import create_nurse, update_nurse
from core.services.series import book_series, move_following
from tests.services.world import ACTOR, World, assign_backup, build_world, local

TUESDAY = date(2025, 3, 4)
HOLD = timedelta(minutes=30)


@pytest.fixture
def world(session_factory: sessionmaker[Session], frozen_now: datetime) -> World:
    """Nurse 1 is both patients' primary; Mon-Fri 09-17 New York; no minimum notice."""
    return build_world(session_factory, frozen_now)


def join(factory: sessionmaker[Session], now: datetime, patient_id: int, **kwargs: object) -> int:
    """Put the patient on the waitlist (any nurse, this week unless told) and commit."""
    kwargs.setdefault("until_date", date(2025, 3, 7))
    with factory() as session:
        entry = waitlist.join(session, patient_id=patient_id, actor=ACTOR, now=now, **kwargs)
        session.commit()
        return entry.id


def free(
    factory: sessionmaker[Session], now: datetime, nurse_id: int, start: datetime, minutes: int = 30
) -> list[int]:
    """Offer [start, start + minutes) of the nurse's time, committed; the offers' ids."""
    with factory() as session:
        offers = waitlist.offer_freed_time(
            session, nurse_id, start, start + timedelta(minutes=minutes), now, hold=HOLD
        )
        session.commit()
        return [o.id for o in offers]


def offer_of(factory: sessionmaker[Session], offer_id: int) -> WaitlistOffer:
    """The offer as stored, with its entry loaded."""
    with factory() as session:
        offer = session.get_one(WaitlistOffer, offer_id)
        _ = offer.entry.status
        session.expunge_all()
        return offer


def entry_status(factory: sessionmaker[Session], entry_id: int) -> str:
    """The entry's stored status."""
    with factory() as session:
        return session.get_one(WaitlistEntry, entry_id).status


def test_freed_time_goes_to_the_first_in_line_held_texted_and_audited(
    session_factory, frozen_now, world
):
    first = join(session_factory, frozen_now, world.patient_id)
    second = join(session_factory, frozen_now + timedelta(minutes=1), world.other_patient_id)
    [offer_id] = free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10))
    offer = offer_of(session_factory, offer_id)
    assert offer.entry_id == first
    assert offer.status == OfferStatus.OFFERED
    assert offer.start_at == local(TUESDAY, 10)
    assert offer.expires_at == frozen_now + HOLD
    assert entry_status(session_factory, first) == WaitlistStatus.OFFERED
    assert entry_status(session_factory, second) == WaitlistStatus.WAITING
    with session_factory() as session:
        text = session.scalars(
            select(Notification.body).where(Notification.event == "waitlist_offer")
        ).one()
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert "Reply YES to book Tuesday, March 4 at 10:00 AM EST with nurse Alice" in text
    assert "waitlist.offered" in actions


def test_a_freed_slot_is_offered_once(session_factory, frozen_now, world):
    join(session_factory, frozen_now, world.patient_id)
    join(session_factory, frozen_now + timedelta(minutes=1), world.other_patient_id)
    assert len(free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10))) == 1
    # Told twice (a retried event): the held time is busy, so nobody else is offered it.
    assert free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10)) == []
    with session_factory() as session:
        offers = session.scalars(select(WaitlistOffer)).all()
    assert [(o.start_at, o.status) for o in offers] == [(local(TUESDAY, 10), "offered")]


def test_an_hour_freed_is_shared_one_visit_each_in_joining_order(
    session_factory, frozen_now, world
):
    first = join(session_factory, frozen_now, world.patient_id)
    second = join(session_factory, frozen_now + timedelta(minutes=1), world.other_patient_id)
    ids = free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10), minutes=60)
    offers = [offer_of(session_factory, i) for i in ids]
    assert [(o.entry_id, o.start_at) for o in offers] == [
        (first, local(TUESDAY, 10)),
        (second, local(TUESDAY, 10, 30)),
    ]


def test_a_hold_is_busy_for_everyone_but_its_patient_until_it_expires(
    session_factory, frozen_now, world
):
    join(session_factory, frozen_now, world.other_patient_id)
    [offer_id] = free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10))
    with session_factory() as session:
        answer = check_availability(
            session, patient_id=world.patient_id, start=local(TUESDAY, 10), now=frozen_now
        )
        assert not answer.available and answer.refusal == "conflict"
        listed = free_slots(
            session, world.nurse_id, start=local(TUESDAY, 9), end=local(TUESDAY, 12), now=frozen_now
        )
        assert local(TUESDAY, 10) not in [s.start for s in listed]
        with pytest.raises(SlotUnavailable):
            book_appointment(
                session,
                patient_id=world.patient_id,
                start=local(TUESDAY, 10),
                actor=ACTOR,
                now=frozen_now,
            )
        session.rollback()
        held_for = check_availability(
            session, patient_id=world.other_patient_id, start=local(TUESDAY, 10), now=frozen_now
        )
        assert held_for.available
    # Past its expiry the hold blocks nobody, though nothing has marked it lapsed yet.
    later = frozen_now + HOLD
    assert offer_of(session_factory, offer_id).status == OfferStatus.OFFERED
    with session_factory() as session:
        answer = check_availability(
            session, patient_id=world.patient_id, start=local(TUESDAY, 10), now=later
        )
        assert answer.available


def test_accepting_books_through_the_booking_path_and_again_gives_the_same_visit(
    session_factory, frozen_now, world
):
    entry_id = join(session_factory, frozen_now, world.patient_id, kind="video")
    [offer_id] = free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10))
    answered = frozen_now + timedelta(minutes=5)
    with session_factory() as session:
        visit = waitlist.accept(session, offer_id, actor=ACTOR, now=answered)
        session.commit()
        visit_id = visit.id
    with session_factory() as session:
        again = waitlist.accept(session, offer_id, actor=ACTOR, now=answered)
        session.commit()
        assert again.id == visit_id
        booked = session.get_one(Appointment, visit_id)
        assert (booked.patient_id, booked.nurse_id) == (world.patient_id, world.nurse_id)
        assert (booked.start_at, booked.kind) == (local(TUESDAY, 10), "video")
        assert booked.status == AppointmentStatus.SCHEDULED
        assert session.scalar(select(func.count()).select_from(Appointment)) == 1
        actions = session.scalars(select(AuditEvent.action)).all()
    offer = offer_of(session_factory, offer_id)
    assert (offer.status, offer.appointment_id) == (OfferStatus.ACCEPTED, visit_id)
    assert entry_status(session_factory, entry_id) == WaitlistStatus.BOOKED
    assert {"appointment.booked", "waitlist.accepted"} <= set(actions)


def test_a_lapsed_hold_goes_to_the_next_in_line(session_factory, frozen_now, world):
    first = join(session_factory, frozen_now, world.patient_id)
    second = join(session_factory, frozen_now + timedelta(minutes=1), world.other_patient_id)
    [offer_id] = free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10))
    with session_factory() as session:
        assert waitlist.lapse_expired(session, frozen_now + HOLD - timedelta(seconds=1)) == (0, 0)
        assert waitlist.lapse_expired(session, frozen_now + HOLD, hold=HOLD) == (1, 0)
        session.commit()
    with session_factory() as session:
        offers = session.scalars(select(WaitlistOffer).order_by(WaitlistOffer.id)).all()
        assert [(o.entry_id, o.status) for o in offers] == [
            (first, "lapsed"),
            (second, "offered"),
        ]
        assert offers[1].start_at == local(TUESDAY, 10)
        assert offers[1].expires_at == frozen_now + 2 * HOLD
        # Run again: nothing more to do.
        assert waitlist.lapse_expired(session, frozen_now + HOLD, hold=HOLD) == (0, 0)
    assert entry_status(session_factory, first) == WaitlistStatus.WAITING
    with session_factory() as session, pytest.raises(InvalidState, match="lapsed"):
        waitlist.accept(session, offer_id, actor=ACTOR, now=frozen_now + HOLD)


def test_an_expired_hold_cannot_be_accepted_even_before_any_worker_ran(
    session_factory, frozen_now, world
):
    join(session_factory, frozen_now, world.patient_id)
    [offer_id] = free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10))
    with session_factory() as session, pytest.raises(InvalidState, match="lapsed"):
        waitlist.accept(session, offer_id, actor=ACTOR, now=frozen_now + HOLD)
    assert offer_of(session_factory, offer_id).status == OfferStatus.OFFERED


def test_declining_offers_the_time_to_the_next_and_the_decliner_waits_on(
    session_factory, frozen_now, world
):
    first = join(session_factory, frozen_now, world.patient_id)
    second = join(session_factory, frozen_now + timedelta(minutes=1), world.other_patient_id)
    [offer_id] = free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10))
    with session_factory() as session:
        waitlist.decline(session, offer_id, actor=ACTOR, now=frozen_now, hold=HOLD)
        session.commit()
    with session_factory() as session:
        offers = session.scalars(select(WaitlistOffer).order_by(WaitlistOffer.id)).all()
        assert [(o.entry_id, o.status) for o in offers] == [
            (first, "declined"),
            (second, "offered"),
        ]
    assert entry_status(session_factory, first) == WaitlistStatus.WAITING
    with session_factory() as session, pytest.raises(InvalidState, match="declined"):
        waitlist.accept(session, offer_id, actor=ACTOR, now=frozen_now)
    # The decliner is first in line for other times.
    [later] = free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 14))
    assert offer_of(session_factory, later).entry_id == first


def test_leaving_the_waitlist_releases_the_hold_to_the_next(session_factory, frozen_now, world):
    first = join(session_factory, frozen_now, world.patient_id)
    second = join(session_factory, frozen_now + timedelta(minutes=1), world.other_patient_id)
    [offer_id] = free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10))
    with session_factory() as session:
        waitlist.cancel(session, first, actor=ACTOR, now=frozen_now, hold=HOLD)
        session.commit()
    assert entry_status(session_factory, first) == WaitlistStatus.CANCELLED
    assert offer_of(session_factory, offer_id).status == OfferStatus.DECLINED
    with session_factory() as session:
        open_offer = waitlist.open_offer(session, second)
        assert open_offer is not None and open_offer.start_at == local(TUESDAY, 10)


def test_windows_outside_the_freed_time_get_no_offer(session_factory, frozen_now, world):
    join(session_factory, frozen_now, world.patient_id, parts_of_day=["afternoon"])
    join(session_factory, frozen_now, world.other_patient_id, weekdays=[2, 3])
    assert free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10)) == []


def test_an_offer_for_another_patient_is_refused_and_nothing_changes(
    session_factory, frozen_now, world
):
    join(session_factory, frozen_now, world.patient_id)
    [offer_id] = free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10))
    with session_factory() as session, pytest.raises(InvalidState, match="another patient"):
        waitlist.accept(
            session, offer_id, actor=ACTOR, now=frozen_now, patient_id=world.other_patient_id
        )
    assert offer_of(session_factory, offer_id).status == OfferStatus.OFFERED


def test_two_patients_accepting_the_same_offer_at_once_make_one_visit(
    session_factory, frozen_now, world
):
    join(session_factory, frozen_now, world.patient_id)
    [offer_id] = free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10))
    takers = [world.patient_id, world.other_patient_id] * 4
    barrier = threading.Barrier(len(takers))
    results: list[tuple[int, object]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def take(patient_id: int) -> None:
        barrier.wait()
        try:
            with session_factory() as session:
                try:
                    visit = waitlist.accept(
                        session, offer_id, actor=ACTOR, now=frozen_now, patient_id=patient_id
                    )
                    session.commit()
                    outcome: object = visit.id
                except InvalidState as refused:
                    session.rollback()
                    outcome = refused.message
        except BaseException as exc:  # collected: a thread's error must fail the test
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append((patient_id, outcome))

    threads = [threading.Thread(target=take, args=(p,)) for p in takers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with session_factory() as session:
        visits = session.scalars(select(Appointment)).all()
    assert len(visits) == 1 and visits[0].patient_id == world.patient_id
    assert {o for p, o in results if p == world.patient_id} == {visits[0].id}
    assert {o for p, o in results if p == world.other_patient_id} == {
        "This time is held for another patient."
    }


def test_a_held_time_cannot_be_taken_by_a_racing_direct_booking(session_factory, frozen_now, world):
    join(session_factory, frozen_now, world.patient_id)
    [offer_id] = free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10))
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def holder() -> None:
        barrier.wait()
        with session_factory() as session:
            waitlist.accept(session, offer_id, actor=ACTOR, now=frozen_now)
            session.commit()
            outcomes["holder"] = "booked"

    def other() -> None:
        barrier.wait()
        with session_factory() as session:
            try:
                book_appointment(
                    session,
                    patient_id=world.other_patient_id,
                    start=local(TUESDAY, 10),
                    actor=ACTOR,
                    now=frozen_now,
                )
                session.commit()
                outcomes["other"] = "booked"
            except SlotUnavailable as refused:
                outcomes["other"] = refused.reason

    threads = [threading.Thread(target=holder), threading.Thread(target=other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert outcomes == {"holder": "booked", "other": "conflict"}


def test_bad_waitlist_input_is_refused_and_nothing_written(session_factory, frozen_now, world):
    bad = [
        {"until_date": date(2025, 3, 2)},
        {"from_date": date(2025, 3, 1)},
        {"until_date": date(2025, 9, 1)},
        {"weekdays": [7]},
        {"parts_of_day": ["night"]},
        {"kind": "house_call"},
        {"kind": "home_visit"},  # no address on record
        {"nurse_id": world.other_nurse_id},  # not on the care team
    ]
    for fields in bad:
        with session_factory() as session, pytest.raises(ValidationError):
            waitlist.join(
                session,
                patient_id=world.patient_id,
                actor=ACTOR,
                now=frozen_now,
                **{"until_date": date(2025, 3, 7), **fields},  # type: ignore[arg-type]
            )
    join(session_factory, frozen_now, world.patient_id)
    with session_factory() as session, pytest.raises(InvalidState, match="already"):
        waitlist.join(
            session,
            patient_id=world.patient_id,
            actor=ACTOR,
            now=frozen_now,
            until_date=date(2025, 3, 7),
        )
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(WaitlistEntry)) == 1


def test_entries_whose_window_passed_expire(session_factory, frozen_now, world):
    entry_id = join(session_factory, frozen_now, world.patient_id, until_date=date(2025, 3, 4))
    with session_factory() as session:
        assert waitlist.lapse_expired(session, frozen_now + timedelta(days=1)) == (0, 0)
        assert waitlist.lapse_expired(session, frozen_now + timedelta(days=2)) == (0, 1)
        session.commit()
    assert entry_status(session_factory, entry_id) == WaitlistStatus.EXPIRED


# ---------------------------------------------------------------- the events that free time


def book_visit(
    factory: sessionmaker[Session], now: datetime, patient_id: int, start: datetime
) -> int:
    """A visit booked and committed; its id."""
    with factory() as session:
        visit = book_appointment(session, patient_id=patient_id, start=start, actor=ACTOR, now=now)
        session.commit()
        return visit.id


def offers(factory: sessionmaker[Session]) -> list[tuple[int, datetime, str]]:
    """(entry, start, status) of every offer, oldest first."""
    with factory() as session:
        return [
            (o.entry_id, o.start_at, o.status)
            for o in session.scalars(select(WaitlistOffer).order_by(WaitlistOffer.id))
        ]


def test_a_cancelled_visit_is_offered_in_the_same_transaction(session_factory, frozen_now, world):
    visit = book_visit(session_factory, frozen_now, world.other_patient_id, local(TUESDAY, 10))
    entry = join(session_factory, frozen_now, world.patient_id)
    with session_factory() as session:
        cancel_appointment(session, visit, actor=ACTOR, now=frozen_now)
        assert session.scalar(select(func.count()).select_from(WaitlistOffer)) == 1
        session.rollback()
    assert offers(session_factory) == []  # a cancel that never commits offers nothing
    with session_factory() as session:
        cancel_appointment(session, visit, actor=ACTOR, now=frozen_now)
        session.commit()
    assert offers(session_factory) == [(entry, local(TUESDAY, 10), "offered")]


def test_the_old_time_of_a_moved_visit_is_offered(session_factory, frozen_now, world):
    visit = book_visit(session_factory, frozen_now, world.other_patient_id, local(TUESDAY, 10))
    entry = join(session_factory, frozen_now, world.patient_id)
    with session_factory() as session:
        reschedule_appointment(
            session, visit, new_start=local(TUESDAY, 15), actor=ACTOR, now=frozen_now
        )
        session.commit()
    assert offers(session_factory) == [(entry, local(TUESDAY, 10), "offered")]


def test_extra_hours_added_are_offered(session_factory, frozen_now, world):
    saturday = date(2025, 3, 8)
    entry = join(session_factory, frozen_now, world.patient_id, until_date=saturday, weekdays=[5])
    with session_factory() as session:
        add_override(
            session,
            world.nurse_id,
            kind="extra_hours",
            start_date=saturday,
            start_time=time(9),
            end_time=time(12),
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
    assert offers(session_factory) == [(entry, local(saturday, 9), "offered")]


def test_time_off_removed_is_offered(session_factory, frozen_now, world):
    with session_factory() as session:
        override, _ = add_override(
            session,
            world.nurse_id,
            kind="time_off",
            start_date=TUESDAY,
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
        override_id = override.id
    entry = join(session_factory, frozen_now, world.patient_id, weekdays=[1])
    with session_factory() as session:
        remove_override(session, override_id, actor=ACTOR, now=frozen_now)
        session.commit()
    assert offers(session_factory) == [(entry, local(TUESDAY, 9), "offered")]


def test_the_worker_sweep_passes_a_lapsed_hold_on(session_factory, frozen_now, world):
    first = join(session_factory, frozen_now, world.patient_id)
    second = join(session_factory, frozen_now + timedelta(minutes=1), world.other_patient_id)
    free(session_factory, frozen_now, world.nurse_id, local(TUESDAY, 10))
    worker = Worker(session_factory, {}, NotifySettings())
    worker.sweep(frozen_now + HOLD)
    assert offers(session_factory) == [
        (first, local(TUESDAY, 10), "lapsed"),
        (second, local(TUESDAY, 10), "offered"),
    ]


def test_a_nurse_who_covers_the_patients_needs_is_offered_and_covers_that_day(
    session_factory, frozen_now, world
):
    with session_factory() as session:
        update_nurse(
            session, world.other_nurse_id, actor=ACTOR, now=frozen_now, specializations=["diabetes"]
        )
        session.commit()
    john = join(session_factory, frozen_now, world.patient_id)  # Diabetes, no backup nurse
    join(session_factory, frozen_now - timedelta(minutes=1), world.other_patient_id)  # no needs
    [offer_id] = free(session_factory, frozen_now, world.other_nurse_id, local(TUESDAY, 10))
    assert offer_of(session_factory, offer_id).entry_id == john
    with session_factory() as session:
        visit = waitlist.accept(session, offer_id, actor=ACTOR, now=frozen_now)
        session.commit()
        assert (visit.nurse_id, visit.patient_id) == (world.other_nurse_id, world.patient_id)
        cover = session.scalars(
            select(PatientNurseAssignment).where(
                PatientNurseAssignment.nurse_id == world.other_nurse_id
            )
        ).one()
        assert (cover.role, cover.valid_from, cover.valid_to) == ("backup", TUESDAY, TUESDAY)


def test_a_covering_nurse_is_not_offered_to_a_patient_with_a_backup(
    session_factory, frozen_now, world
):
    with session_factory() as session:
        update_nurse(
            session, world.other_nurse_id, actor=ACTOR, now=frozen_now, specializations=["diabetes"]
        )
        session.commit()
    join(session_factory, frozen_now, world.patient_id)
    with session_factory() as session:
        third = create_nurse(
            session,
            actor=ACTOR,
            now=frozen_now,
            first_name="Ana",
            last_name="Lopez",
            time_zone="America/New_York",
        )
        # A backup from Thursday on, inside the window: no stranger covers this patient.
        assign_nurse(
            session,
            patient_id=world.patient_id,
            nurse_id=third.id,
            role="backup",
            valid_from=date(2025, 3, 6),
            actor=ACTOR,
            now=frozen_now,
        )
        session.commit()
    assert free(session_factory, frozen_now, world.other_nurse_id, local(TUESDAY, 10)) == []


def test_times_a_series_moves_away_from_are_offered(session_factory, frozen_now, world):
    weekly = SeriesDetails.model_validate(
        {
            "patient_id": world.other_patient_id,
            "start": local(TUESDAY, 10).isoformat(),
            "weekdays": ["tue", "thu"],
            "count": 2,
        }
    )
    with session_factory() as session:
        booked = book_series(session, weekly, actor=ACTOR, now=frozen_now)
        session.commit()
        series_id, first = booked.series.id, booked.booked[0].id
    entry = join(session_factory, frozen_now, world.patient_id)
    with session_factory() as session:
        move_following(
            session, series_id, first, new_start=local(TUESDAY, 15), actor=ACTOR, now=frozen_now
        )
        session.commit()
    # One visit each: the first in line is offered the first time freed.
    assert offers(session_factory) == [(entry, local(TUESDAY, 10), "offered")]


def cancel_visit(factory: sessionmaker[Session], now: datetime, visit_id: int) -> None:
    """Cancel a visit at the patient's request, committed (its time is offered)."""
    with factory() as session:
        cancel_appointment(session, visit_id, actor=ACTOR, now=now)
        session.commit()


def test_a_visit_brought_earlier_is_moved_onto_the_held_time_not_doubled(
    session_factory, frozen_now, world
):
    thursday = date(2025, 3, 6)
    own = book_visit(session_factory, frozen_now, world.patient_id, local(thursday, 15))
    entry = join(
        session_factory, frozen_now, world.patient_id, appointment_id=own, until_date=thursday
    )
    later = book_visit(session_factory, frozen_now, world.other_patient_id, local(thursday, 16))
    earlier = book_visit(session_factory, frozen_now, world.other_patient_id, local(TUESDAY, 10))
    cancel_visit(session_factory, frozen_now, later)  # after their visit: not for them
    assert offers(session_factory) == []
    cancel_visit(session_factory, frozen_now, earlier)
    [(offered_entry, start, _)] = offers(session_factory)
    assert (offered_entry, start) == (entry, local(TUESDAY, 10))
    with session_factory() as session:
        offer_id = session.scalars(select(WaitlistOffer.id)).one()
        moved = waitlist.accept(session, offer_id, actor=ACTOR, now=frozen_now)
        session.commit()
        assert (moved.start_at, moved.rescheduled_from_id) == (local(TUESDAY, 10), own)
        theirs = session.scalars(
            select(Appointment).where(
                Appointment.patient_id == world.patient_id,
                Appointment.status == AppointmentStatus.SCHEDULED,
            )
        ).all()
        assert [a.id for a in theirs] == [moved.id]  # one visit, earlier: not two
        assert session.get_one(Appointment, own).cancel_reason == "rescheduled"


def test_bringing_forward_needs_the_patients_own_visit_and_a_window_that_ends_by_it(
    session_factory, frozen_now, world
):
    thursday = date(2025, 3, 6)
    theirs = book_visit(session_factory, frozen_now, world.other_patient_id, local(thursday, 15))
    own = book_visit(session_factory, frozen_now, world.patient_id, local(thursday, 11))
    for kwargs, field in (
        ({"appointment_id": theirs, "until_date": thursday}, "appointment_id"),
        ({"appointment_id": own, "until_date": date(2025, 3, 7)}, "until_date"),
    ):
        with pytest.raises(ValidationError) as refused:
            join(session_factory, frozen_now, world.patient_id, **kwargs)
        assert refused.value.field == field
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(WaitlistEntry)) == 0


def test_a_visit_brought_earlier_with_another_nurse_is_booked_and_the_old_one_cancelled(
    session_factory, frozen_now, world
):
    thursday = date(2025, 3, 6)
    own = book_visit(session_factory, frozen_now, world.patient_id, local(thursday, 15))
    with session_factory() as session:
        assign_backup(session, world.patient_id, world.other_nurse_id, frozen_now)
        session.commit()
    join(session_factory, frozen_now, world.patient_id, appointment_id=own, until_date=thursday)
    [offer_id] = free(session_factory, frozen_now, world.other_nurse_id, local(TUESDAY, 10))
    with session_factory() as session:
        booked = waitlist.accept(session, offer_id, actor=ACTOR, now=frozen_now)
        session.commit()
        assert (booked.nurse_id, booked.start_at) == (world.other_nurse_id, local(TUESDAY, 10))
        old = session.get_one(Appointment, own)
        assert old.status == AppointmentStatus.CANCELLED
        assert f"now appointment {booked.id}" in (old.cancel_note or "")
