"""Search parameters: declared once per resource (the CapabilityStatement lists the same table),
parsed strictly (an unknown or malformed parameter is a 400, never silently ignored), and the
searchset Bundle with its paging links.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource
from flask import request, url_for

from core.limits import MAX_ID
from webapp.fhir.errors import FhirError

SPEC = "http://hl7.org/fhir/SearchParameter/"
DEFAULT_COUNT = 50
MAX_COUNT = 500
MAX_OFFSET = 100_000


@dataclass(frozen=True)
class SearchParam:
    """One search parameter a resource type supports, as the CapabilityStatement states it."""

    name: str
    type: str  # http://hl7.org/fhir/search-param-type
    documentation: str
    definition: str | None = None  # the standard SearchParameter it implements


SEARCH_PARAMS: dict[str, tuple[SearchParam, ...]] = {
    "Schedule": (
        SearchParam(
            "actor",
            "reference",
            "The nurse: Practitioner/{id} (or the bare id).",
            SPEC + "Schedule-actor",
        ),
    ),
    "Slot": (
        SearchParam(
            "schedule",
            "reference",
            "The nurse's schedule: Schedule/{id} (a nurse's schedule has her id).",
            SPEC + "Slot-schedule",
        ),
        SearchParam(
            "schedule.actor",
            "reference",
            "The nurse: Practitioner/{id}.",
        ),
        SearchParam(
            "start",
            "date",
            "Free times starting in a range: ge/gt/le/lt/eq with a date or a dateTime with an "
            "offset; dates are UTC days. Default: the next 7 days; at most 31 days at once.",
            SPEC + "Slot-start",
        ),
        SearchParam(
            "specialty",
            "token",
            "A specialisation of the nurse, by name (case-insensitive), e.g. Cardiology.",
            SPEC + "Slot-specialty",
        ),
        SearchParam(
            "status",
            "token",
            "Only free is published: busy time is never shown.",
            SPEC + "Slot-status",
        ),
    ),
    "Appointment": (
        SearchParam("patient", "reference", "Patient/{id}.", SPEC + "clinical-patient"),
        SearchParam(
            "practitioner", "reference", "Practitioner/{id}.", SPEC + "Appointment-practitioner"
        ),
        SearchParam(
            "date",
            "date",
            "The start: ge/gt/le/lt/eq with a date (a UTC day) or a dateTime with an offset.",
            SPEC + "clinical-date",
        ),
        SearchParam(
            "status",
            "token",
            "booked, fulfilled, cancelled, noshow or entered-in-error; several with commas.",
            SPEC + "Appointment-status",
        ),
    ),
}
# Result parameters every search takes: page size and where the page starts.
PAGING_PARAMS = ("_count", "_offset")


def search_args(resource_type: str) -> dict[str, list[str]]:
    """The request's search parameters for `resource_type`, refusing any it does not support."""
    known = {param.name for param in SEARCH_PARAMS[resource_type]}
    args = {name: request.args.getlist(name) for name in request.args}
    for name in args:
        if name not in known and name not in PAGING_PARAMS:
            supported = ", ".join(sorted(known | set(PAGING_PARAMS)))
            raise FhirError(
                400,
                f"{resource_type} search does not support the parameter {name!r}; use {supported}.",
                expression=name,
            )
    return args


def _values(args: dict[str, list[str]], name: str) -> list[list[str]]:
    """Each occurrence of a parameter (repeats are AND) split on commas (alternatives: OR)."""
    return [[part.strip() for part in value.split(",")] for value in args.get(name, [])]


def reference_ids(args: dict[str, list[str]], name: str, resource_type: str) -> set[int] | None:
    """Ids a reference parameter allows (Type/123, 123 or an absolute URL ending so), or None."""
    allowed: set[int] | None = None
    for alternatives in _values(args, name):
        ids = set()
        for value in alternatives:
            match = re.fullmatch(rf"(?:(?:https?://\S*/)?{resource_type}/)?([0-9]{{1,10}})", value)
            if match is None:
                raise FhirError(
                    400, f"{name} must be {resource_type}/{{id}}, not {value!r}.", expression=name
                )
            record_id = int(match[1])
            if 1 <= record_id <= MAX_ID:
                ids.add(record_id)
        allowed = ids if allowed is None else allowed & ids
    return allowed


def token_codes(args: dict[str, list[str]], name: str) -> set[str] | None:
    """Codes a token parameter allows (system|code or code; matched case-insensitively)."""
    allowed: set[str] | None = None
    for alternatives in _values(args, name):
        codes = {value.rpartition("|")[2].strip().casefold() for value in alternatives}
        if "" in codes:
            raise FhirError(400, f"{name} needs a code.", expression=name)
        allowed = codes if allowed is None else allowed & codes
    return allowed


DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def _instant_range(value: str, name: str) -> tuple[datetime, datetime]:
    """The span a date (a UTC day) or a dateTime (to its precision) stands for, [low, high)."""
    value = value.replace(" ", "+")  # an unencoded "+" of an offset arrives as a space
    try:
        if DATE.fullmatch(value):
            low = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return low, low + timedelta(days=1)
        if DATE_TIME.fullmatch(value):
            low = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
            has_seconds = len(value) > 16 and value[16] == ":"
            step = timedelta(seconds=1) if has_seconds else timedelta(minutes=1)
            return low, low + step
    except ValueError:
        pass
    raise FhirError(
        400,
        f"{name} takes a date (2025-03-04) or a dateTime with an offset "
        f"(2025-03-04T09:00:00-05:00), with an optional prefix ge, gt, le, lt or eq; "
        f"not {value!r}.",
        expression=name,
    )


def date_range(args: dict[str, list[str]], name: str) -> tuple[datetime | None, datetime | None]:
    """The [low, high) instants every occurrence of a date parameter allows together."""
    low: datetime | None = None
    high: datetime | None = None
    for alternatives in _values(args, name):
        if len(alternatives) > 1:
            raise FhirError(400, f"{name} takes one value per occurrence.", expression=name)
        value = alternatives[0]
        prefix, rest = (value[:2], value[2:]) if value[:2].isalpha() else ("eq", value)
        if prefix not in {"eq", "ge", "gt", "le", "lt"}:
            raise FhirError(
                400, f"{name} supports the prefixes ge, gt, le, lt and eq.", expression=name
            )
        start, end = _instant_range(rest, name)
        floor = {"eq": start, "ge": start, "gt": end}.get(prefix)
        ceiling = {"eq": end, "le": end, "lt": start}.get(prefix)
        if floor is not None:
            low = floor if low is None else max(low, floor)
        if ceiling is not None:
            high = ceiling if high is None else min(high, ceiling)
    return low, high


@dataclass(frozen=True)
class Page:
    """Which matches a search answers with: `count` of them from `offset`."""

    count: int
    offset: int


def page(args: dict[str, list[str]]) -> Page:
    """The page asked for with _count (default 50, at most 500) and _offset."""
    count = _whole_number(args, "_count", DEFAULT_COUNT, MAX_COUNT)
    offset = _whole_number(args, "_offset", 0, MAX_OFFSET)
    return Page(count=count, offset=offset)


def _whole_number(args: dict[str, list[str]], name: str, default: int, most: int) -> int:
    values = args.get(name, [])
    if not values:
        return default
    if len(values) > 1 or not values[0].isdigit() or int(values[0]) > most:
        raise FhirError(400, f"{name} takes one whole number from 0 to {most}.", expression=name)
    return int(values[0])


def _link(relation: str, offset: int | None = None) -> dict[str, str]:
    """A link to this search, encoded afresh, at `offset` when given."""
    args = request.args.to_dict(flat=False)
    if offset is not None:
        args["_offset"] = [str(offset)]
    return {"relation": relation, "url": f"{request.base_url}?{urlencode(args, doseq=True)}"}


def base_url() -> str:
    """The facade's absolute base URL, as clients address it ([base]/Patient/1)."""
    return url_for("fhir.metadata", _external=True).removesuffix("/metadata")


def bundle(resources: Sequence[Resource], total: int, at: Page) -> Bundle:
    """A searchset Bundle of one page of matches, with self, next and previous links."""
    links = [_link("self")]
    if at.offset + at.count < total:
        links.append(_link("next", at.offset + at.count))
    if at.offset > 0:
        links.append(_link("previous", max(at.offset - at.count, 0)))
    entries = [
        {
            "fullUrl": f"{base_url()}/{resource.get_resource_type()}/{resource.id}",
            "resource": resource,
            "search": {"mode": "match"},
        }
        for resource in resources
    ]
    data = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links}
    if entries:
        data["entry"] = entries
    return Bundle.model_validate(data)
