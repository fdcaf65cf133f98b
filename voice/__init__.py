"""The Quart voice service: app factory and the database it shares with the dashboard."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quart import Quart
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings, with_shared_secrets
from core.db import make_engine, make_session_factory
from core.logs import log_failure
from voice.drain import Drain
from voice.log_writer import LogWriter
from voice.reconciler import CallReconciler
from voice.tool_processes import ToolProcesses

if TYPE_CHECKING:
    from voice.model_connection import PreopenedModels
    from voice.twilio_rest import TwilioRest

logger = logging.getLogger(__name__)

DATABASE_EXTENSION = "carematix.database"
TWILIO_EXTENSION = "carematix.twilio"
MODELS_EXTENSION = "carematix.preopened_models"
SIMULATOR_EXTENSION = "carematix.simulator"
SIMULATED_CALLS_EXTENSION = "carematix.simulated_calls"  # tasks of /simulate-call
FINISHING_CALLS_EXTENSION = "carematix.finishing_calls"  # calls storing their last lines
LOG_WRITER_EXTENSION = "carematix.log_writer"
TOOL_PROCESSES_EXTENSION = "carematix.tool_processes"
RECONCILER_EXTENSION = "carematix.reconciler"
DRAIN_EXTENSION = "carematix.drain"  # the calls in flight, and the drain on SIGTERM
FINISH_WAIT_SECONDS = 10


@dataclass(frozen=True)
class Database:
    """The engine and session factory opened for the life of the server."""

    engine: Engine
    sessions: sessionmaker[Session]


def create_app(test_config: dict[str, Any] | None = None) -> Quart:
    """Build the voice service from the environment (or `.env`), then apply `test_config`."""
    overrides = dict(test_config or {})
    settings: Settings = overrides.pop("SETTINGS", None) or Settings.from_env()

    if not overrides.get("TESTING"):
        # Same key file and derived internal token as the dashboard, so they trust each other.
        settings = with_shared_secrets(settings)
    app = Quart(__name__)
    app.config.from_mapping(SETTINGS=settings, DATABASE_URL=settings.database_url)
    app.config.update(overrides)

    @app.before_serving
    async def open_database() -> None:
        # Plain SQLAlchemy: Flask-SQLAlchemy does not work inside Quart.
        url = app.config["DATABASE_URL"]
        # Fail fast when PostgreSQL is unreachable, so /health answers 503 in good time.
        options = {"connect_args": {"connect_timeout": 10}} if url.startswith("postgresql") else {}
        engine = make_engine(url, **options)
        database = Database(engine, make_session_factory(engine))
        app.extensions[DATABASE_EXTENSION] = database
        app.extensions[LOG_WRITER_EXTENSION] = LogWriter(database.sessions)
        app.extensions[TOOL_PROCESSES_EXTENSION] = await _start_tool_processes(
            app.config.get("TOOL_PROCESSES", settings.voice_tool_processes), url
        )
        # Before the first call is taken: close what a crashed predecessor left open.
        reconciler = CallReconciler(
            database.sessions,
            get_instance_name(app),
            **app.config.get("RECONCILER_OPTIONS", {}),
        )
        await reconciler.start()
        app.extensions[RECONCILER_EXTENSION] = reconciler

    app.extensions[FINISHING_CALLS_EXTENSION] = set()
    app.extensions[DRAIN_EXTENSION] = Drain(settings.voice_drain_seconds)

    @app.after_serving
    async def close_database() -> None:
        finishing = app.extensions[FINISHING_CALLS_EXTENSION]
        if finishing:
            # Calls cut off by the shutdown still commit their transcripts and outcomes.
            await asyncio.wait(list(finishing), timeout=FINISH_WAIT_SECONDS)
        models = app.extensions.get(MODELS_EXTENSION)
        if models is not None:
            await models.close_all()
        for task in list(app.extensions.get(SIMULATED_CALLS_EXTENSION, ())):
            task.cancel()
        reconciler = app.extensions.pop(RECONCILER_EXTENSION, None)
        if reconciler is not None:
            await reconciler.stop()
        processes = app.extensions.pop(TOOL_PROCESSES_EXTENSION, None)
        if processes is not None:
            await processes.close()
        writer = app.extensions.pop(LOG_WRITER_EXTENSION, None)
        if writer is not None:
            await asyncio.to_thread(writer.stop)
        database = app.extensions.pop(DATABASE_EXTENSION, None)
        if database is not None:
            database.engine.dispose()

    _warn_about_signatures(settings)
    from voice import health, media, metrics, webhooks
    from voice.model_connection import ModelConnector, PreopenedModels
    from voice.prompts import session_update_text
    from voice.simulator import SimulatedRealtime
    from voice.twilio_rest import TwilioRest

    app.extensions[TWILIO_EXTENSION] = TwilioRest(settings)
    # Without an OpenAI key the built-in simulator runs, but it answers only simulated calls:
    # those our own simulator places, signed with a secret derived from SECRET_KEY that Twilio
    # never has (voice.security.simulator_signing_token). A real caller, signed by Twilio, still
    # gets an apology and a callback request, never a fake agent. With no Twilio account
    # either, no real caller can reach the service: every call is simulated (SIMULATED).
    simulator_wanted = app.config.setdefault("SIMULATOR", not settings.openai_api_key)
    app.config.setdefault("SIMULATED", simulator_wanted and not settings.twilio_account_sid)
    if simulator_wanted or app.config["SIMULATED"]:
        simulator = SimulatedRealtime(pace=app.config.get("SIMULATOR_PACE", 1.0))
        app.extensions[SIMULATOR_EXTENSION] = simulator
        app.before_serving(simulator.start)
        app.after_serving(simulator.stop)
        if app.config["SIMULATED"]:
            app.config.setdefault("REALTIME_CONNECT", simulator.connect)
        elif not settings.openai_api_key:
            logger.warning(
                "OPENAI_API_KEY is empty: real callers get an apology and a callback request"
            )
    # REALTIME_CONNECT (the simulator, tests) replaces how model sockets are opened.
    app.config.setdefault("REALTIME_CONNECT", ModelConnector())
    # Pre-opening needs a model to open: none for real calls without a key.
    app.config.setdefault("PREOPEN_MODEL", bool(settings.openai_api_key or app.config["SIMULATED"]))
    app.config.setdefault("PREOPEN_TTL_SECONDS", 60)

    def database_sessions() -> sessionmaker[Session] | None:
        database = get_database(app)
        return database.sessions if database is not None else None

    app.extensions[MODELS_EXTENSION] = PreopenedModels(
        settings,
        app.config["REALTIME_CONNECT"],
        app.config["PREOPEN_TTL_SECONDS"],
        sessions=database_sessions,
        session_update=session_update_text,
    )
    app.register_blueprint(health.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(metrics.bp)
    lag_sampler = metrics.LoopLagSampler()
    app.before_serving(lag_sampler.start)
    app.after_serving(lag_sampler.stop)
    # The media stream skips Quart's per-message websocket layer (see voice.media).
    app.asgi_app = media.MediaStreamRoute(app, app.asgi_app)  # type: ignore[method-assign,assignment]
    return app


async def _start_tool_processes(workers: int, database_url: str) -> ToolProcesses | None:
    """The worker processes for read-only tools; None (tools run in threads) if none start."""
    if workers <= 0:
        return None
    processes = ToolProcesses(workers)
    try:
        await processes.start(database_url)
    except Exception:
        # start() has already stopped any worker that did start.
        log_failure(logger, "tool worker processes did not start; tools run in threads")
        return None
    return processes


def _warn_about_signatures(settings: Settings) -> None:
    if settings.twilio_auth_token:
        return
    if settings.allow_unsigned_webhooks:
        logger.warning(
            "!!! ALLOW_UNSIGNED_WEBHOOKS is set and TWILIO_AUTH_TOKEN is empty: the voice "
            "service accepts UNSIGNED webhooks and media streams. Local development only !!!"
        )
    elif settings.openai_api_key or settings.twilio_account_sid:
        logger.warning("TWILIO_AUTH_TOKEN is not set: every Twilio request will be refused")


def get_settings(app: Quart) -> Settings:
    """The settings the app was built with."""
    settings: Settings = app.config["SETTINGS"]
    return settings


def get_twilio(app: Quart) -> TwilioRest:
    """The app's Twilio REST wrapper."""
    rest: TwilioRest = app.extensions[TWILIO_EXTENSION]
    return rest


def get_preopened_models(app: Quart) -> PreopenedModels:
    """Model sockets opened during /incoming-call, waiting for their stream."""
    models: PreopenedModels = app.extensions[MODELS_EXTENSION]
    return models


def simulator_running(app: Quart) -> bool:
    """Whether the built-in simulator answers simulated calls (no OpenAI key configured)."""
    return SIMULATOR_EXTENSION in app.extensions


def realtime_connect(app: Quart, *, simulated_call: bool) -> Any:
    """How to open a call's model socket: the simulator for a simulated call, otherwise
    REALTIME_CONNECT (which already is the simulator when every call is simulated, unless a
    test replaced it)."""
    simulator = app.extensions.get(SIMULATOR_EXTENSION)
    if simulated_call and simulator is not None and not app.config["SIMULATED"]:
        return simulator.connect
    return app.config["REALTIME_CONNECT"]


def get_drain(app: Quart) -> Drain:
    """The instance's calls in flight and its drain."""
    drain: Drain = app.extensions[DRAIN_EXTENSION]
    return drain


def get_finishing_calls(app: Quart) -> set[asyncio.Task[None]]:
    """Calls whose closing bookkeeping is still running."""
    finishing: set[asyncio.Task[None]] = app.extensions[FINISHING_CALLS_EXTENSION]
    return finishing


def get_log_writer(app: Quart) -> LogWriter | None:
    """The writer storing conversation lines, while serving."""
    return app.extensions.get(LOG_WRITER_EXTENSION)


def get_tool_processes(app: Quart) -> ToolProcesses | None:
    """The worker processes for read-only tools, while serving (None: tools run in threads)."""
    return app.extensions.get(TOOL_PROCESSES_EXTENSION)


def get_instance_name(app: Quart) -> str:
    """This voice service instance's name, which its calls carry (see core.call_recovery)."""
    settings = get_settings(app)
    return settings.voice_instance_name or f"{socket.gethostname()}:{settings.voice_port}"


def get_reconciler(app: Quart) -> CallReconciler | None:
    """The heartbeat and sweep of unfinishable calls, while serving."""
    return app.extensions.get(RECONCILER_EXTENSION)


def get_database(app: Quart) -> Database | None:
    """The open database, or None before serving starts (or after it stops)."""
    return app.extensions.get(DATABASE_EXTENSION)
