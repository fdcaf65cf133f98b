"""GET /metrics: the dashboard's Prometheus metrics, for a scraper that holds METRICS_TOKEN.

gunicorn runs several workers; with PROMETHEUS_MULTIPROC_DIR set (supervisord.conf sets it)
their counts are summed by prometheus_client's multiprocess collector, so a scrape that reaches
any worker sees them all. The notification backlog is read from the database at each scrape.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from core.notifications.queries import Backlog, backlog
from core.security import metrics_token_ok
from webapp import db

bp = Blueprint("metrics", __name__)


class NotificationBacklog(Collector):
    """Due texts, emails and in-app messages not yet sent, and how long the oldest has waited."""

    def __init__(self, rows: list[Backlog], now: datetime) -> None:
        self.rows = rows
        self.now = now

    def collect(self) -> Iterator[Metric]:
        """One reading of the queue, by channel."""
        due = GaugeMetricFamily(
            "carematix_notifications_due", "Due messages not yet sent", labels=["channel"]
        )
        age = GaugeMetricFamily(
            "carematix_notifications_oldest_due_age_seconds",
            "How long the oldest due message has waited",
            labels=["channel"],
        )
        for row in self.rows:
            due.add_metric([row.channel], row.due)
            age.add_metric([row.channel], max(0.0, (self.now - row.oldest_due).total_seconds()))
        yield due
        yield age


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format; 404 while METRICS_TOKEN is unset, 401 without it."""
    settings = current_app.config["SETTINGS"]
    if not settings.metrics_token:
        abort(404)
    if not metrics_token_ok(settings, request.headers.get("Authorization")):
        return Response(
            "Unauthorized\n", 401, {"WWW-Authenticate": "Bearer"}, mimetype="text/plain"
        )
    process_registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process_registry = CollectorRegistry()
        MultiProcessCollector(process_registry)
    now = datetime.now(UTC)
    try:
        rows = backlog(db.session(), now)
    finally:
        db.session.rollback()  # on SQLite a read left open holds back writers
    queue_registry = CollectorRegistry(auto_describe=False)
    queue_registry.register(NotificationBacklog(rows, now))
    body = generate_latest(process_registry) + generate_latest(queue_registry)
    response = Response(body, 200, content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response
