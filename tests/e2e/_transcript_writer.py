"""Stands in for the voice service: another process appending transcript lines to a call.

Usage: python -m tests.e2e._transcript_writer DATABASE_URL CALL_ID DELAY LINE...
Prints "wrote <line index> <unix time>" after each commit, so the test can time the update.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from core.db import make_engine, make_session_factory, transaction
from core.models import LogRole
from core.services.calls import append_log


def main(argv: list[str]) -> None:
    """Write each line in its own short transaction, `delay` seconds apart."""
    url, call_id, delay, lines = argv[0], int(argv[1]), float(argv[2]), argv[3:]
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    try:
        for index, text in enumerate(lines):
            time.sleep(delay)
            role = LogRole.USER if index % 2 == 0 else LogRole.ASSISTANT
            with transaction(sessions) as session:
                append_log(
                    session,
                    call_id=call_id,
                    position=index,
                    role=role,
                    text=text,
                    now=datetime.now(UTC),
                )
            print(f"wrote {index} {time.time():.3f}", flush=True)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
