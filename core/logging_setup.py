"""How every process logs: plain lines by default, one JSON object per line with LOG_FORMAT=json.

Each record carries the id of the call it concerns (`call_id`, from a context variable the
voice service sets when a call's stream starts, inherited by the tasks that call spawns), so a
log search can follow one call without any patient detail: our messages name calls by id and
failures by exception class only (core.logs). httpx logs request URLs at INFO, which may carry
phone numbers, so it is held to warnings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS

CURRENT_CALL_ID: ContextVar[int | None] = ContextVar("carematix_call_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(call_id)s"
LOG_FORMATS = ("text", "json")


class CallIdFilter(logging.Filter):
    """Adds `call_id` (None outside a call) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record."""
        record.call_id = CURRENT_CALL_ID.get()
        return True


def logging_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A `logging.config.dictConfig` for LOG_FORMAT (text or json) and LOG_LEVEL."""
    env = os.environ if env is None else env
    log_format = env.get("LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"LOG_LEVEL {level!r} is not a logging level")
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            # uvicorn repeats some messages with terminal colour codes: the plain one is enough.
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
        }
        if log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    quiet = {"level": "WARNING"}
    # Servers' own loggers (uvicorn, gunicorn) write through our handler, in our format.
    ours = {"handlers": ["stderr"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"call_id": {"()": CallIdFilter}},
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["call_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "httpx": quiet,
            "httpcore": quiet,
            "uvicorn": ours,
            "uvicorn.error": {"level": level},
            "uvicorn.access": ours,
            "gunicorn.error": ours,
            "gunicorn.access": ours,
        },
    }
