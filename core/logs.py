"""Logging failures without PHI: exception messages and tracebacks can carry SQL parameters,
transcript text or phone numbers, so only the exception's class is logged above DEBUG."""

from __future__ import annotations

import logging
import sys


def log_failure(log: logging.Logger, message: str, *args: object) -> None:
    """ERROR naming the current exception's class; the full traceback only at DEBUG."""
    exc = sys.exc_info()[1]
    log.error(message + " (%s)", *args, type(exc).__name__ if exc else "no exception")
    log.debug("traceback of the failure above", exc_info=True)
