"""Times as people read and hear them, in a given zone."""

from __future__ import annotations

from datetime import date, datetime

from core.scheduling import require_aware, zone


def local_iso(instant: datetime, time_zone: str) -> str:
    """ISO 8601 with the zone's offset, e.g. 2025-03-03T10:00:00-05:00."""
    return require_aware(instant, "time").astimezone(zone(time_zone)).isoformat()


def spoken(instant: datetime, time_zone: str) -> str:
    """A phrase ready to be spoken or texted, e.g. 'Monday, March 3 at 10:00 AM EST'."""
    local = require_aware(instant, "time").astimezone(zone(time_zone))
    hour = local.strftime("%I").lstrip("0") or "12"
    return f"{local:%A}, {local:%B} {local.day} at {hour}:{local:%M %p} {local.tzname()}"


def short(instant: datetime, time_zone: str) -> str:
    """A compact local form for tables, e.g. 'Mon 3 Mar 10:00 EST'."""
    return short_local(require_aware(instant, "time").astimezone(zone(time_zone)))


def short_local(local: datetime) -> str:
    """`short` for a datetime already in the zone it is shown in."""
    return f"{local:%a} {local.day} {local:%b %H:%M} {local.tzname()}"


def short_date(day: date, this_year: int | None = None) -> str:
    """A date as tables show it, e.g. 'Wed 9 Dec'; with its year unless it is `this_year`."""
    label = f"{day:%a} {day.day} {day:%b}"
    return label if day.year == this_year else f"{label} {day.year}"
