"""Health, the OpenAI connection check, the OpenAPI document and its docs page."""

from __future__ import annotations

import json
import logging
import time

import httpx
from flask import Response, current_app, render_template
from sqlalchemy import text

from webapp import db
from webapp.api.openapi import openapi_document
from webapp.api.problems import PROBLEM_TYPES
from webapp.api.registry import Context, operation
from webapp.api.schemas import Health, OpenAICheck
from webapp.transactions import end_unit_of_work

logger = logging.getLogger(__name__)

API_VERSION = "1.0.0"
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_TIMEOUT_SECONDS = 5.0


@operation(
    "GET",
    "/health",
    summary="Liveness and database check",
    tag="meta",
    response=Health,
    auth=False,
    other_responses={503: Health},
)
def health(ctx: Context) -> tuple[Health, int]:
    """200 when the API and its database answer, 503 otherwise; needs no token."""
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception as exc:  # any failure means "not healthy"; the class name is enough
        logger.warning("API health: database unreachable (%s)", type(exc).__name__)
        return Health(status="error", database="error", version=API_VERSION), 503
    return Health(status="ok", database="ok", version=API_VERSION), 200


def _redact(message: str, secret: str) -> str:
    return message.replace(secret, "[redacted]") if secret else message


@operation(
    "GET",
    "/openai-check",
    summary="Check the connection to the configured OpenAI endpoint",
    tag="meta",
    response=OpenAICheck,
    roles={"admin"},
)
def openai_check(ctx: Context) -> OpenAICheck:
    """List models at {OPENAI_BASE_URL}/models with the configured key (5 s timeout) and
    report whether the endpoint answered; the key itself is never shown."""
    settings = current_app.config["SETTINGS"]
    key = current_app.config.get("OPENAI_API_KEY", settings.openai_api_key) or ""
    base_url = (
        current_app.config.get("OPENAI_BASE_URL", settings.openai_base_url)
        or DEFAULT_OPENAI_BASE_URL
    ).rstrip("/")
    if not key:
        return OpenAICheck(
            reachable=False,
            configured=False,
            base_url=base_url,
            error="OPENAI_API_KEY is not set.",
        )
    end_unit_of_work()
    started = time.monotonic()
    try:
        answer = httpx.get(
            f"{base_url}/models",
            headers={"Authorization": f"Bearer {key}"},
            timeout=OPENAI_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        return OpenAICheck(
            reachable=False,
            configured=True,
            base_url=base_url,
            error=_redact(f"{type(exc).__name__}: {exc}", key)[:300],
        )
    latency = int((time.monotonic() - started) * 1000)
    if answer.status_code != 200:
        return OpenAICheck(
            reachable=False,
            configured=True,
            base_url=base_url,
            status_code=answer.status_code,
            latency_ms=latency,
            error=_redact(f"HTTP {answer.status_code}: {answer.text[:200]}", key),
        )
    return OpenAICheck(
        reachable=True,
        configured=True,
        base_url=base_url,
        status_code=200,
        latency_ms=latency,
    )


@operation(
    "GET",
    "/openapi.json",
    summary="This API's OpenAPI 3.1 document",
    tag="meta",
    auth=False,
    raw_response={"application/json": {"schema": {"type": "object"}}},
)
def openapi_json(ctx: Context) -> Response:
    """The OpenAPI 3.1 document, generated from the same models that validate requests."""
    return Response(json.dumps(openapi_document()), mimetype="application/json")


@operation(
    "GET",
    "/docs",
    summary="Readable API documentation",
    tag="meta",
    auth=False,
    raw_response={"text/html": {"schema": {"type": "string"}}},
)
def docs(ctx: Context) -> Response:
    """A self-contained HTML page describing every operation (no external assets)."""
    html = render_template("api/docs.html", spec=openapi_document(), problem_types=PROBLEM_TYPES)
    return Response(html, mimetype="text/html")
