"""Keeping full garbage collections short in long-lived processes (the voice service and its
tool workers, the dashboard's gunicorn workers)."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Leave what startup built (modules, the SDK's models, the ORM's mappers) out of every
    later garbage collection.

    A full collection walks every tracked object, and after startup there are hundreds of
    thousands: 40-50 ms during which an event loop relays no audio for any call (a tool worker
    answers no tool, a dashboard worker serves no page). Frozen objects are never walked again,
    so the collections that remain see only what was made since.
    """
    gc.collect()
    gc.freeze()
