"""The waitlist: join, list, read and leave it; accept or decline a held time for a patient."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.models import WaitlistEntry, WaitlistOffer, Weekday
from core.services import waitlist
from core.services.common import get_or_raise
from webapp import db
from webapp.api.appointments import actor
from webapp.api.queries import appointment_out, paginate, visible_patient
from webapp.api.registry import ID, STAFF, Context, operation
from webapp.api.schemas import (
    AppointmentOut,
    Page,
    WaitlistCreate,
    WaitlistEntryOut,
    WaitlistListQuery,
    WaitlistOfferOut,
)

TAG = "waitlist"
JOIN_RULES = (
    "`until_date` is before `from_date`",
    "`from_date` is before the patient's today, or `until_date` more than 92 days after it",
    "`nurse_id` is inactive or not on the patient's care team in the window",
    "`kind` is `home_visit` and the patient has no address on record",
)


def offer_out(offer: WaitlistOffer, ctx: Context) -> WaitlistOfferOut:
    """The API's view of an offer; `held` as of this request."""
    return WaitlistOfferOut(
        id=offer.id,
        nurse_id=offer.nurse_id,
        start=offer.start_at,
        end=offer.end_at,
        expires_at=offer.expires_at,
        status=offer.status,  # type: ignore[arg-type]
        held=offer.status == "offered" and offer.expires_at > ctx.now,
        appointment_id=offer.appointment_id,
        created_at=offer.created_at,
        responded_at=offer.responded_at,
    )


def entry_out(entry: WaitlistEntry, ctx: Context) -> WaitlistEntryOut:
    """The API's view of a waitlist entry with its offers."""
    return WaitlistEntryOut(
        id=entry.id,
        patient_id=entry.patient_id,
        nurse_id=entry.nurse_id,
        appointment_id=entry.appointment_id,
        from_date=entry.from_date,
        until_date=entry.until_date,
        weekdays=[Weekday.numbered(n) for n in entry.weekdays],
        parts_of_day=entry.parts_of_day,  # type: ignore[arg-type]
        kind=entry.kind,  # type: ignore[arg-type]
        status=entry.status,  # type: ignore[arg-type]
        joined_at=entry.joined_at,
        offers=[offer_out(o, ctx) for o in entry.offers],
    )


@operation(
    "POST",
    "/waitlist",
    summary="Put a patient on the waitlist",
    tag=TAG,
    body=WaitlistCreate,
    response=WaitlistEntryOut,
    status=201,
    roles=STAFF,
    errors=(404, 409),
    rules=JOIN_RULES,
)
def join_waitlist(ctx: Context, body: WaitlistCreate) -> WaitlistEntryOut:
    """Wait for an earlier time with `nurse_id` (on the patient's care team), or without it
    any nurse of the care team or who covers the patient's conditions (accepting time with
    one off the care team makes her their backup for that day, when they have none), within
    `from_date`..`until_date`, `weekdays` and `parts_of_day` in the patient's zone.
    When such time frees up, the first in line is offered it and it is held for them
    (WAITLIST_HOLD_MINUTES); a patient already waiting answers 409."""
    visible_patient(ctx, body.patient_id)
    entry = waitlist.join(
        db.session(),
        patient_id=body.patient_id,
        nurse_id=body.nurse_id,
        from_date=body.from_date,
        until_date=body.until_date,
        weekdays=[day.number for day in body.weekdays],
        parts_of_day=[part.value for part in body.parts_of_day],
        kind=body.kind,
        appointment_id=body.appointment_id,
        actor=actor(ctx),
        now=ctx.now,
    )
    db.session.flush()
    db.session.refresh(entry)
    return entry_out(entry, ctx)


@operation(
    "GET",
    "/waitlist",
    summary="List the waitlist",
    tag=TAG,
    query=WaitlistListQuery,
    response=Page[WaitlistEntryOut],
    roles=STAFF,
)
def list_waitlist(ctx: Context, query: WaitlistListQuery) -> Page[WaitlistEntryOut]:
    """Waitlist entries in joining order (first in line first), by patient and status."""
    stmt = select(WaitlistEntry).options(selectinload(WaitlistEntry.offers))
    if query.patient_id is not None:
        stmt = stmt.where(WaitlistEntry.patient_id == query.patient_id)
    if query.status is not None:
        stmt = stmt.where(WaitlistEntry.status == query.status.value)
    stmt = stmt.order_by(WaitlistEntry.joined_at, WaitlistEntry.id)
    return paginate(stmt, query, lambda entry: entry_out(entry, ctx))


@operation(
    "GET",
    f"/waitlist/<{ID}:entry_id>",
    summary="One waitlist entry",
    tag=TAG,
    response=WaitlistEntryOut,
    roles=STAFF,
    errors=(404,),
)
def get_waitlist_entry(ctx: Context, entry_id: int) -> WaitlistEntryOut:
    """A waitlist entry and every time offered to it."""
    return entry_out(get_or_raise(db.session(), WaitlistEntry, entry_id, "waitlist entry"), ctx)


@operation(
    "POST",
    f"/waitlist/<{ID}:entry_id>/cancel",
    summary="Take a patient off the waitlist",
    tag=TAG,
    response=WaitlistEntryOut,
    roles=STAFF,
    errors=(404, 409),
)
def cancel_waitlist_entry(ctx: Context, entry_id: int) -> WaitlistEntryOut:
    """The patient stops waiting; a time held for them goes to the next in line. Cancelling
    again answers the same; a booked or expired entry answers 409."""
    entry = waitlist.cancel(db.session(), entry_id, actor=actor(ctx), now=ctx.now)
    db.session.flush()
    db.session.refresh(entry)
    return entry_out(entry, ctx)


@operation(
    "POST",
    f"/waitlist-offers/<{ID}:offer_id>/accept",
    summary="Accept a held time for the patient",
    tag=TAG,
    response=AppointmentOut,
    roles=STAFF,
    errors=(404, 409),
)
def accept_offer(ctx: Context, offer_id: int) -> AppointmentOut:
    """Book the held time for the patient it is held for, through the ordinary booking checks.
    Accepting again answers the same visit; a lapsed, declined or withdrawn offer answers 409
    and nothing is booked."""
    appointment = waitlist.accept(db.session(), offer_id, actor=actor(ctx), now=ctx.now)
    return appointment_out(appointment)


@operation(
    "POST",
    f"/waitlist-offers/<{ID}:offer_id>/decline",
    summary="Decline a held time for the patient",
    tag=TAG,
    response=WaitlistOfferOut,
    roles=STAFF,
    errors=(404, 409),
)
def decline_offer(ctx: Context, offer_id: int) -> WaitlistOfferOut:
    """The patient passes on the held time: it goes to the next in line, and they keep
    waiting for other times. Declining again answers the same; a lapsed or accepted offer
    answers 409."""
    offer = waitlist.decline(db.session(), offer_id, actor=actor(ctx), now=ctx.now)
    return offer_out(offer, ctx)
