"""Recurring visits: book a series, read it, move or cancel one visit or it and the following."""

from __future__ import annotations

from core.models import AppointmentSeries, SeriesScope, Weekday
from core.services.series import (
    MoveRefused,
    OccurrencePlan,
    SeriesRefused,
    book_series,
    cancel_occurrences,
    move_following,
    move_occurrence,
)
from webapp import db
from webapp.api.appointments import BOOKING_RULES, actor, own_nurse, refuse_nurse_waiver
from webapp.api.problems import ApiProblem
from webapp.api.queries import appointment_out, visible_patient, visible_series
from webapp.api.registry import ID, Context, operation
from webapp.api.schemas import (
    FieldError,
    OccurrenceOut,
    SeriesCancelRequest,
    SeriesCreate,
    SeriesMoveRequest,
    SeriesOut,
    SlotOut,
)

TAG = "appointment series"
SERIES_RULES = (
    *BOOKING_RULES,
    "the first visit (`start`, in the nurse's zone) does not fall on one of `weekdays`",
    "`until` is before the first visit or more than 52 weeks after it",
)


def occurrence_out(plan: OccurrencePlan) -> OccurrenceOut:
    """The API's view of one checked visit of a series."""
    return OccurrenceOut(
        index=plan.index,
        start=plan.start,
        end=plan.end,
        reason=plan.refusal,
        message=plan.message,
        alternatives=[SlotOut.model_validate(s) for s in plan.alternatives],
        escalate=plan.escalate,
    )


def series_out(series: AppointmentSeries, refused: list[OccurrencePlan] | None = None) -> SeriesOut:
    """The API's view of a series with its visits."""
    return SeriesOut(
        id=series.id,
        patient_id=series.patient_id,
        nurse_id=series.nurse_id,
        weekdays=[Weekday.numbered(n) for n in series.weekdays],
        interval_weeks=series.interval_weeks,
        start_date=series.start_date,
        time=series.wall_time.strftime("%H:%M"),
        time_zone=series.time_zone,
        duration_minutes=series.duration_minutes,
        count=series.count,
        until=series.until,
        ends_on=series.ends_on,
        kind=series.kind,  # type: ignore[arg-type]
        reason=series.reason,
        created_at=series.created_at,
        appointments=[appointment_out(a) for a in series.appointments],
        refused=[occurrence_out(o) for o in refused or []],
    )


@operation(
    "POST",
    "/appointment-series",
    summary="Book recurring visits",
    tag=TAG,
    body=SeriesCreate,
    response=SeriesOut,
    status=201,
    idempotent_header=True,
    errors=(404, 409),
    rules=SERIES_RULES,
)
def create_series(
    ctx: Context, body: SeriesCreate, idempotency_key: str | None
) -> tuple[SeriesOut, int]:
    """Book visits every `interval_weeks` weeks on `weekdays` at the wall-clock time of `start`
    in the nurse's zone (kept across DST changes), for `count` visits or until `until`. Every
    visit is checked as a single booking is. With `book` `all` (the default) nothing is booked
    while any visit is refused: 409 `series_refused` lists the `refused` (reasons and
    alternatives) and the `free`. With `free_only` the free visits are booked and the answer
    lists the refused. `moves` give other starts for some visits (an offered alternative, say)
    and `skip` leaves some out; both name visits by `index`, as a 409 does. Retrying with the
    same Idempotency-Key returns the first series (200)."""
    visible_patient(ctx, body.patient_id)
    refuse_nurse_waiver(ctx, body.override_reason)
    moves = {move.index: move.start for move in body.moves}
    if len(moves) != len(body.moves):
        raise ApiProblem(
            "invalid",
            "Each visit can be moved once.",
            errors=[FieldError(field="moves", message="Each visit can be moved once.")],
        )
    details = body.model_copy(update={"nurse_id": own_nurse(ctx, body.nurse_id)})
    try:
        booked = book_series(
            db.session(),
            details,
            actor=actor(ctx),
            now=ctx.now,
            mode=body.book,
            replacements=moves,
            skip=set(body.skip),
            waive=body.override_reason is not None,
            override_reason=body.override_reason,
            idempotency_key=idempotency_key,
        )
    except SeriesRefused as refused:
        raise ApiProblem(
            "series_refused",
            refused.message,
            refused=[occurrence_out(o) for o in refused.plan.refused],
            free=[occurrence_out(o) for o in refused.plan.free],
        ) from refused
    if ctx.nurse_id is not None and booked.series.nurse_id != ctx.nurse_id:
        raise ApiProblem(
            "invalid", "That Idempotency-Key was already used for another booking; use a new one."
        )
    db.session.flush()
    db.session.refresh(booked.series)
    return series_out(booked.series, booked.refused), 200 if booked.replayed else 201


@operation(
    "GET",
    f"/appointment-series/<{ID}:series_id>",
    summary="One series of recurring visits",
    tag=TAG,
    response=SeriesOut,
    errors=(404,),
)
def get_series(ctx: Context, series_id: int) -> SeriesOut:
    """A series' rule and every visit booked in it, cancelled and moved ones included (a
    moved visit is cancelled and its successor, in the same series, is scheduled)."""
    return series_out(visible_series(ctx, series_id))


@operation(
    "POST",
    f"/appointment-series/<{ID}:series_id>/cancel",
    summary="Cancel a visit of a series, or it and the following",
    tag=TAG,
    body=SeriesCancelRequest,
    response=SeriesOut,
    errors=(404, 409),
)
def cancel_series_visits(ctx: Context, series_id: int, body: SeriesCancelRequest) -> SeriesOut:
    """Cancel the visit `appointment_id` of the series (`scope` `this`), or it and every
    scheduled visit after it (`following`: the series then ends the day before). To move
    visits, use `/move`."""
    series = visible_series(ctx, series_id)
    cancel_occurrences(
        db.session(),
        series.id,
        body.appointment_id,
        scope=body.scope,
        actor=actor(ctx),
        now=ctx.now,
        reason_code=body.reason_code,
        note=body.note,
    )
    db.session.flush()
    db.session.refresh(series)
    return series_out(series)


@operation(
    "POST",
    f"/appointment-series/<{ID}:series_id>/move",
    summary="Move a visit of a series, or it and the following",
    tag=TAG,
    body=SeriesMoveRequest,
    response=SeriesOut,
    errors=(404, 409),
    rules=BOOKING_RULES,
)
def move_series_visits(ctx: Context, series_id: int, body: SeriesMoveRequest) -> SeriesOut:
    """Move the visit `appointment_id` to `start` (`scope` `this`: it stays in the series; 409
    `slot_unavailable` with alternatives when the time is taken), or move it and every later
    scheduled visit by the same change of date and wall-clock time (`following`): all or
    nothing, 409 `series_move_refused` lists the `refused` and the `free`. Moved together, the
    visits continue as a new series, which is returned; the old one ends the day before."""
    series = visible_series(ctx, series_id)
    if body.scope == SeriesScope.THIS:
        move_occurrence(
            db.session(),
            series.id,
            body.appointment_id,
            new_start=body.start,
            actor=actor(ctx),
            now=ctx.now,
        )
    else:
        try:
            series = move_following(
                db.session(),
                series.id,
                body.appointment_id,
                new_start=body.start,
                actor=actor(ctx),
                now=ctx.now,
            ).series
        except MoveRefused as refused:
            raise ApiProblem(
                "series_move_refused",
                refused.message,
                refused=[occurrence_out(o) for o in refused.refused],
                free=[occurrence_out(o) for o in refused.free],
            ) from refused
    db.session.flush()
    db.session.refresh(series)
    return series_out(series)
