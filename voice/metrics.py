"""GET /metrics for the voice service, and the loop-lag sampler behind its relay lag figure.

One voice instance is one process, so prometheus_client's default registry holds all of its
counts. The relay shares one event loop with every call: a timer that fires late means every
frame waiting on that loop was held back as long, so the loop's lateness is the relay's lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from quart import Blueprint, Response, current_app, request

from core.metrics import RELAY_LAG_SECONDS
from core.security import metrics_token_ok
from voice import get_settings

bp = Blueprint("metrics", __name__)

SAMPLE_EVERY_SECONDS = 0.25


class LoopLagSampler:
    """Sleeps a fixed interval over and over and records how late each wake-up was."""

    def __init__(self, every: float = SAMPLE_EVERY_SECONDS) -> None:
        self.every = every
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin sampling on the running loop."""
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _sample(self) -> None:
        while True:
            began = time.monotonic()
            await asyncio.sleep(self.every)
            RELAY_LAG_SECONDS.observe(max(0.0, time.monotonic() - began - self.every))


@bp.get("/metrics")
async def metrics() -> Response:
    """Prometheus text format; 404 while METRICS_TOKEN is unset, 401 without it."""
    settings = get_settings(current_app)
    if not settings.metrics_token:
        return Response("Not Found\n", 404, mimetype="text/plain")
    if not metrics_token_ok(settings, request.headers.get("Authorization")):
        return Response(
            "Unauthorized\n", 401, {"WWW-Authenticate": "Bearer"}, mimetype="text/plain"
        )
    response = Response(generate_latest(REGISTRY), 200, content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response
