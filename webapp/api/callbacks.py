"""Callback requests: people who need a coordinator to call them back (the phone agent records
them when no one can take a call; staff and integrations may add them too)."""

from __future__ import annotations

from sqlalchemy import select

from core.models import CallbackRequest, CallbackStatus
from core.services.calls import request_callback, resolve_callback_request
from webapp import db
from webapp.api.appointments import actor
from webapp.api.queries import paginate
from webapp.api.registry import ID, STAFF, Context, operation
from webapp.api.schemas import CallbackCreate, CallbackListQuery, CallbackRequestOut, Page

TAG = "callbacks"


def callback_out(row: CallbackRequest) -> CallbackRequestOut:
    """The API's view of a callback request."""
    return CallbackRequestOut(
        id=row.id,
        call_id=row.call_id,
        patient_id=row.patient_id,
        phone=row.phone,
        reason=row.reason,
        status=row.status,  # type: ignore[arg-type]
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        resolved_by_user_id=row.resolved_by_user_id,
    )


@operation(
    "GET",
    "/callback-requests",
    summary="List callback requests",
    tag=TAG,
    query=CallbackListQuery,
    response=Page[CallbackRequestOut],
    roles=STAFF,
)
def list_callback_requests(ctx: Context, query: CallbackListQuery) -> Page[CallbackRequestOut]:
    """As the dashboard's queue: open ones oldest first, or done ones latest done first."""
    stmt = select(CallbackRequest).where(CallbackRequest.status == query.status.value)
    if query.status == CallbackStatus.DONE:
        stmt = stmt.order_by(CallbackRequest.resolved_at.desc(), CallbackRequest.id.desc())
    else:
        stmt = stmt.order_by(CallbackRequest.created_at, CallbackRequest.id)
    return paginate(stmt, query, callback_out)


@operation(
    "POST",
    "/callback-requests",
    summary="Ask for someone to be called back",
    tag=TAG,
    body=CallbackCreate,
    response=CallbackRequestOut,
    status=201,
    roles=STAFF,
    errors=(404,),
    rules=(
        "neither `patient_id` nor `phone` is given",
        "`phone` is not a possible phone number",
    ),
    keeps_answers=True,
)
def create_callback_request(ctx: Context, body: CallbackCreate) -> CallbackRequestOut:
    """Queue a call back for the coordinators: for the patient (at their phone unless `phone`
    is given) or for a phone number alone, with why; recorded in the audit trail."""
    row = request_callback(
        db.session(),
        patient_id=body.patient_id,
        phone=body.phone,
        call_id=body.call_id,
        reason=body.reason,
        actor=actor(ctx),
        now=ctx.now,
    )
    return callback_out(row)


@operation(
    "POST",
    f"/callback-requests/<{ID}:request_id>/resolve",
    summary="Mark a callback request done",
    tag=TAG,
    response=CallbackRequestOut,
    roles=STAFF,
    errors=(404, 409),
    keeps_answers=True,
)
def resolve_callback(ctx: Context, request_id: int) -> CallbackRequestOut:
    """The person has been called back; one already done answers 409."""
    return callback_out(
        resolve_callback_request(db.session(), request_id, actor=actor(ctx), now=ctx.now)
    )
