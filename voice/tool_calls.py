"""What the service and its tool workers send each other (no tool code, so both import it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class WriteNeeded(Exception):
    """The tool has to change something (a worker only reads): run it in the service."""


@dataclass(frozen=True)
class ReadToolCall:
    """One read-only tool call, with what its ToolBox knows of the verified caller."""

    database_url: str
    context: Any  # voice.tools.CallContext
    patient_id: int
    time_zone: str
    name: str
    arguments: Any
    tool_call_id: str
