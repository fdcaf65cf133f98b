"""What every dashboard view shares: partial-or-page rendering, forms, times, paging."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from flask import Blueprint, current_app, flash, g, make_response, redirect, render_template
from flask import request as flask_request
from flask_htmx import make_response as htmx_response
from flask_login import current_user, login_required
from flask_sqlalchemy.pagination import Pagination
from markupsafe import Markup, escape
from sqlalchemy import Select, func, literal_column, select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

from core.db import read_only_options
from core.errors import DomainError, NotFound, ValidationError
from core.limits import EARLIEST_YEAR, LATEST_YEAR, MAX_ID
from core.models import Appointment, AppointmentKind, Choices, Role
from core.scheduling import local_to_utc, repeated_time, require_aware, skipped_time, zone
from core.services.access import Viewer
from core.services.common import Actor
from core.timefmt import short_date, short_local
from webapp import db, htmx
from webapp.auth import now_utc, protect_state_changes

PER_PAGE = 25
F = TypeVar("F", bound=Callable[..., Any])


def blueprint(name: str, import_name: str, url_prefix: str | None = None) -> Blueprint:
    """A dashboard blueprint: login, CSRF, 404 for missing records and impossible ids, 400s."""
    bp = Blueprint(name, import_name, url_prefix=url_prefix)
    bp.url_value_preprocessor(_ids_in_range)
    bp.before_request(_require_login)
    bp.before_request(protect_state_changes)

    @bp.errorhandler(NotFound)
    def _not_found(exc: NotFound) -> tuple[str, int]:
        return render_template("errors/error.html", code=404, message="Not found."), 404

    @bp.errorhandler(ValidationError)
    def _invalid(exc: ValidationError) -> Response:
        # A link or filter with a value out of range (a date in year 9999, say): the message
        # says which, and nothing was changed.
        return bad_request(exc.message)

    @bp.errorhandler(403)
    def _forbidden(exc: Exception) -> tuple[str, int]:
        message = "Your role does not give access to this page."
        return render_template("errors/error.html", code=403, message=message), 403

    return bp


@login_required
def _require_login() -> None:
    return None


def _ids_in_range(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """url_value_preprocessor: a path id past PostgreSQL's integer range is a 404."""
    # Such a record cannot exist, and PostgreSQL refuses the query outright (a 500).
    for value in (values or {}).values():
        if isinstance(value, int) and not 0 <= value <= MAX_ID:
            raise NotFound("Not found.")


# Tab, line feed and carriage return are how text areas break lines; every other control
# character (NUL above all, which PostgreSQL cannot store) is never typed on purpose.
ALLOWED_CONTROLS = frozenset("\t\n\r")
CONTROL_CHARACTERS_MESSAGE = (
    "Some of the text sent contains invisible control characters that cannot be saved "
    "(often from copying and pasting). Retype it and try again."
)


def has_control_characters(value: str) -> bool:
    """Whether `value` holds a control character other than a tab or a line break."""
    return any(
        unicodedata.category(char) == "Cc" and char not in ALLOWED_CONTROLS for char in value
    )


def bad_request(message: str) -> Response:
    """A 400 page saying what was wrong, the message also in the X-Problem header."""
    # htmx swaps no 400 answer into the page: static/app.js shows X-Problem instead. Headers
    # carry Latin-1 only, so the message travels percent-encoded (a zone name may be Hebrew).
    response = make_response(render_template("errors/error.html", code=400, message=message), 400)
    response.headers["X-Problem"] = quote(message)
    return response


def refuse_control_characters() -> Response | None:
    """before_request: a page's query or form value with a control character answers 400."""
    # Before any view reads it, so none is ever stored; the JSON API checks its own input.
    if flask_request.blueprint == "api":
        return None
    values = [*flask_request.args.values(), *flask_request.form.values()]
    if any(has_control_characters(value) for value in values):
        return bad_request(CONTROL_CHARACTERS_MESSAGE)
    return None


# ------------------------------------------------------------------ read-only views


READS_ONLY = "carematix_reads_only"


def reads_only(view: F) -> F:
    """Mark a view whose GET only reads: its request runs on a read-only connection.

    On SQLite the page then never takes the write lock (calls and bookings write beside it);
    on PostgreSQL it skips the BEGIN and ROLLBACK round trips.
    """
    setattr(view, READS_ONLY, True)
    return view


def begin_read_only_views() -> None:
    """before_request, ahead of sign-in: a read-only connection for a `reads_only` GET."""
    view = current_app.view_functions.get(flask_request.endpoint or "")
    if flask_request.method in ("GET", "HEAD") and getattr(view, READS_ONLY, False):
        options = read_only_options(db.engine.dialect.name)
        db.session.connection(execution_options=options)


# ------------------------------------------------------------------ htmx


def is_partial() -> bool:
    """An htmx request that wants a fragment (not a boosted navigation or history restore)."""
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(
    page_template: str, partial_template: str | None = None, /, *, status: int = 200, **context: Any
) -> Response:
    """The partial for htmx requests, the full page otherwise; always `Vary: HX-Request`."""
    partial = partial_template is not None and is_partial()
    template = partial_template if partial and partial_template else page_template
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def finish(url: str, message: str | None = None, category: str = "success") -> Response:
    """After a successful change: flash, then go to `url` (HX-Redirect for htmx requests)."""
    if message:
        flash(message, category)
    if htmx:
        return htmx_response("", redirect=url)
    return redirect(url, code=303)


def flashes_shown_once(response: Response) -> Response:
    """after_request: an htmx action's answer also replaces the page's messages (out of band).

    Without it "Nurse added." stayed on screen through every later action on the page.
    Answers that redirect keep their message for the next page; reads (searches, polls) leave
    the messages alone, so a message about a call in progress stays while it lasts.
    """
    if (
        flask_request.method == "GET"
        or not is_partial()
        or "HX-Redirect" in response.headers
        or response.mimetype != "text/html"
        or response.status_code not in (200, 409, 422)
    ):
        return response
    flashes = render_template("_flashes.html", oob=True)
    response.set_data(response.get_data() + flashes.encode())
    return response


# ------------------------------------------------------------------ who and when


def viewer() -> Viewer:
    """The signed-in user as the access rules see them."""
    return current_user.viewer  # type: ignore[no-any-return]


def actor() -> Actor:
    """The signed-in user as the services record them."""
    return Actor.user(current_user.id)


def viewer_zone() -> str:
    """The viewer's zone: their nurse's for a nurse login, else the DEFAULT_TIME_ZONE setting."""
    if "viewer_zone" not in g:
        name = current_app.config["SETTINGS"].default_time_zone
        user = current_user
        if user.is_authenticated and user.role == Role.NURSE and user.nurse_zone:
            name = user.nurse_zone
        g.viewer_zone = name
    return str(g.viewer_zone)


def when(instant: datetime | None, other_zone: str | None = None) -> Markup:
    """An instant in the viewer's zone, with `other_zone`'s local time beside it if it differs."""
    return when_in(viewer_zone(), instant, other_zone)


# Pages show the same visits request after request (today's list, a nurse's week), and
# formatting two zones costs more than the lookup: remember recent answers.
@lru_cache(maxsize=4096)
def when_in(mine: str, instant: datetime | None, other_zone: str | None = None) -> Markup:
    """`when` for a viewer zone already looked up (lists format many rows for one viewer)."""
    if instant is None:
        return Markup("&ndash;")
    here = require_aware(instant, "time").astimezone(zone(mine))
    text = escape(short_local(here))
    if other_zone and other_zone != mine:
        there = instant.astimezone(zone(other_zone))
        if here.utcoffset() != there.utcoffset():
            local = escape(f"{there:%H:%M} {there.tzname()}")
            return Markup(f'{text} <span class="muted">(patient {local})</span>')
    return text


def day_label(day: date | None) -> str:
    """A date as the dashboard writes it ("Wed 9 Dec", with the year if not this year's)."""
    if day is None:
        return "\u2013"  # an en dash, as tables show a missing value
    this_year = now_utc().astimezone(zone(viewer_zone())).year
    return short_date(day, this_year)


def local_day(instant: datetime, tz_name: str) -> date:
    """The local date of an instant in a zone."""
    return instant.astimezone(zone(tz_name)).date()


def day_start(day: date, tz_name: str) -> datetime:
    """The UTC instant a local day starts in a zone."""
    return local_to_utc(day, 0, zone(tz_name))


# ------------------------------------------------------------------ appointment rows


@dataclass(frozen=True, slots=True)
class AppointmentRow:
    """What an appointment row in a list or calendar shows (templates/appointments/_row.html)."""

    id: int
    start_at: datetime
    when: Markup  # the start, as `when` shows it beside the patient's local time
    status: str
    kind: str
    patient_name: str
    nurse_name: str
    address: str = ""  # where a home visit happens; empty for other kinds


def with_people(stmt: Select[Appointment]) -> Select[Appointment]:
    """`stmt` loading each appointment's patient and nurse in the same statement."""
    return stmt.options(joinedload(Appointment.patient), joinedload(Appointment.nurse))


def appointment_rows(appointments: Iterable[Appointment]) -> list[AppointmentRow]:
    """Rows for appointments loaded `with_people`, their times in the viewer's zone."""
    mine = viewer_zone()
    return [
        AppointmentRow(
            id=visit.id,
            start_at=visit.start_at,
            when=when_in(mine, visit.start_at, visit.patient.time_zone),
            status=visit.status,
            kind=visit.kind,
            patient_name=visit.patient.full_name,
            nurse_name=visit.nurse.display_name,
            address=visit.patient.address if visit.kind == AppointmentKind.HOME_VISIT else "",
        )
        for visit in appointments
    ]


# ------------------------------------------------------------------ query strings and times
# What a write may contain is checked by its operation (core/operations.py, `validate_form`);
# these read what only the pages have: filters in the query string, and where a booking's
# time came from (a slot button, an offered alternative or a typed local time).


def text(name: str, default: str = "") -> str:
    """A trimmed form field."""
    return (flask_request.form.get(name) or default).strip()


def is_whole_number(raw: str) -> bool:
    """Whether `raw` is ASCII digits only (str.isdigit also takes "²", which int() refuses)."""
    return raw.isascii() and raw.isdigit()


def id_field(name: str, label: str, *, required: bool = True, source: Any = None) -> int | None:
    """A record's id from the form (or `source`): a whole number from 1 to MAX_ID."""
    raw = ((source or flask_request.form).get(name) or "").strip()
    if not raw:
        if required:
            raise ValidationError(f"Choose a {label.lower()}.", field=name)
        return None
    if not is_whole_number(raw) or not 1 <= int(raw) <= MAX_ID:
        raise ValidationError(
            f"There is no such {label.lower()}: choose one from the list.", field=name
        )
    return int(raw)


def whole_number_arg(name: str, label: str, default: int = 0, high: int = MAX_ID) -> int:
    """A whole number from the query string (`default` if none), a ValidationError past `high`."""
    raw = flask_request.args.get(name, "").strip()
    if not is_whole_number(raw):
        return default
    if int(raw) > high:
        raise ValidationError(f"{label} is out of range: go back to the list and try again.")
    return int(raw)


# Years a date field accepts unless told otherwise (core.limits says why).
SCHEDULING_YEARS = (EARLIEST_YEAR, LATEST_YEAR)


def date_field(
    name: str,
    label: str,
    *,
    required: bool = True,
    source: Any = None,
    years: tuple[int, int] | None = SCHEDULING_YEARS,
) -> date | None:
    """A YYYY-MM-DD date from the form (or `source`) in `years` (None: any year)."""
    # None is for a date the service checks itself by comparison, safe at any year.
    raw = ((source or flask_request.form).get(name) or "").strip()
    if not raw:
        if required:
            raise ValidationError(f"{label} is required.", field=name)
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationError(f"{label} must be a date (YYYY-MM-DD).", field=name) from exc
    if years is not None:
        check_year(value, label, name, years)
    return value


def check_year(
    value: date | datetime, label: str, field: str, years: tuple[int, int] = SCHEDULING_YEARS
) -> None:
    """A ValidationError on `field` unless `value`'s year is within `years`."""
    first, last = years
    if not first <= value.year <= last:
        raise ValidationError(f"{label} must be between {first} and {last}.", field=field)


def instant_field(name: str, label: str, tz_name: str) -> datetime:
    """An instant: ISO 8601 with an offset, or a datetime-local value read in `tz_name`."""
    raw = text(name)
    if not raw:
        raise ValidationError(f"{label} is required.", field=name)
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationError(f"{label} must be a date and time.", field=name) from exc
    # Checked before any conversion: near year 1 or 9999 a zone's offset overflows datetime.
    check_year(parsed, label, name)
    if parsed.tzinfo is not None:
        return parsed
    minutes = parsed.hour * 60 + parsed.minute
    tz = zone(tz_name)
    # A time the clocks skip is refused with the nearest that exist, never moved silently.
    skipped = skipped_time(parsed.date(), minutes, tz)
    if skipped is not None:
        raise skipped.error(name)
    return local_to_utc(parsed.date(), minutes, tz)


def repeated_time_note(instant: datetime, tz_name: str) -> str:
    """Which of two equal clock times a visit is at, when the clocks go back that night; else
    an empty string."""
    tz = zone(tz_name)
    local = instant.astimezone(tz)
    both = repeated_time(local.date(), local.hour * 60 + local.minute, tz)
    if both is None:
        return ""
    which = "first" if local.utcoffset() == both[0].utcoffset() else "second"
    return (
        f" {local:%H:%M} happens twice on {local:%a %-d %b %Y} in {tz_name} (the clocks go "
        f"back): this visit is at the {which} one, {local:%H:%M %Z} (UTC{local:%z})."
    )


def label(value: Any, choices: type[Choices] | None = None) -> str:
    """Jinja filter: an enum value in words (`kind|label(AppointmentKind)` for a stored string)."""
    if isinstance(value, Choices):
        return value.label
    if choices is not None and value in {member.value for member in choices}:
        return choices(value).label
    return "" if value is None else str(value)


def choices_of(members: Iterable[Choices]) -> list[tuple[str, str]]:
    """(value, label) pairs for a select, from an enum's members."""
    return [(member.value, member.label) for member in members]


def errors_of(exc: DomainError) -> dict[str, str]:
    """A field-to-message map for templates; unknown fields go under "_form"."""
    return {exc.field or "_form": exc.message}


# ------------------------------------------------------------------ paging


# The API's limit too. Pages past the end show the last one; pages past this are refused, since
# their offset would overflow the database's integers long before any list is that long.
MAX_PAGE = 10_000


def page_number() -> int:
    """The ?page= argument, at least 1 (1 when it is not a number), at most MAX_PAGE."""
    return max(1, whole_number_arg("page", "That page", default=1, high=MAX_PAGE))


def paginate(
    stmt: Select[Any], per_page: int = PER_PAGE, count_limit: int | None = None
) -> Pagination:
    """The ?page= page of an ordered select; a page past the end shows the last one.

    With `count_limit`, rows past it are not counted: the total stops at `count_limit` + 1,
    which `pager(page, target, limit)` shows as "10000+" (people narrow the filters instead).
    """
    number = page_number()
    page = _page(stmt, number, per_page, count_limit)
    last = page.pages if count_limit is None else min(page.pages, math.ceil(count_limit / per_page))
    if number > last > 0:
        page = _page(stmt, last, per_page, count_limit)
    return page


def _page(stmt: Select[Any], number: int, per_page: int, count_limit: int | None) -> Pagination:
    if count_limit is None:
        return db.paginate(stmt, page=number, per_page=per_page, error_out=False)
    page = db.paginate(stmt, page=number, per_page=per_page, error_out=False, count=False)
    rows: Select[Any] = stmt.order_by(None).with_only_columns(
        literal_column("1"), maintain_column_froms=True
    )
    counted = rows.limit(count_limit + 1).subquery()
    page.total = db.session.scalar(select(func.count()).select_from(counted))
    return page


def page_url(page: int) -> str:
    """This URL with ?page= changed."""
    args = flask_request.args.to_dict(flat=True)
    args["page"] = str(page)
    return f"{flask_request.path}?{urlencode(args)}"


def options(values: Iterable[tuple[Any, str]]) -> list[tuple[str, str]]:
    """(value, label) pairs as strings, for selects."""
    return [(str(value), label) for value, label in values]
