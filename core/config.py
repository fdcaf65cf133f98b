"""Settings read from the environment (and a `.env` file), resolved in one place."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "instance" / "carematix.db"
DEV_SECRET_KEY_PATH = PROJECT_ROOT / "instance" / "dev-secret-key"

logger = logging.getLogger(__name__)


def development_secret_key(key_file: Path = DEV_SECRET_KEY_PATH) -> str:
    """A random key kept in the instance folder, so every process, worker and restart shares it.

    Only for running without SECRET_KEY (development): the dashboard, the voice service and
    the worker must agree on it, or sessions and signed tokens break between them.
    """
    logger.warning(
        "SECRET_KEY is not set: using a generated development key (set SECRET_KEY in production)"
    )
    try:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        if not key_file.exists():
            # Write then link: link fails if another process won the race, and readers never
            # see a half-written file.
            temp = key_file.with_name(f".{key_file.name}.{os.getpid()}")
            temp.write_text(secrets.token_hex(32))
            temp.chmod(0o600)
            try:
                os.link(temp, key_file)
            except FileExistsError:
                pass
            finally:
                temp.unlink(missing_ok=True)
        key = key_file.read_text().strip()
        if key:
            return key
    except OSError as exc:
        logger.warning("cannot keep the development key in %s: %s", key_file, exc.strerror)
    return secrets.token_hex(32)


def with_shared_secrets(settings: Settings, key_file: Path = DEV_SECRET_KEY_PATH) -> Settings:
    """Settings whose SECRET_KEY and INTERNAL_API_TOKEN are filled in for a running service.

    Without SECRET_KEY every process falls back to the same generated key file; without
    INTERNAL_API_TOKEN the token is derived from the key. So `make run` works with nothing
    configured, and the dashboard can still reach the voice service.
    """
    secret_key = settings.secret_key or development_secret_key(key_file)
    internal = settings.internal_api_token or derive_internal_token(secret_key)
    return replace(settings, secret_key=secret_key, internal_api_token=internal)


def derive_internal_token(secret_key: str) -> str:
    """The dashboard-to-voice-service bearer token when INTERNAL_API_TOKEN is not set.

    Both processes read the same SECRET_KEY, so both derive the same token; a separate
    INTERNAL_API_TOKEN still wins when configured.
    """
    return hmac.new(secret_key.encode(), b"carematix:internal-api:v1", hashlib.sha256).hexdigest()


def resolve_database_url(url: str | None, base_dir: Path = PROJECT_ROOT) -> str:
    """Return a SQLAlchemy URL with SQLite paths made absolute and PostgreSQL using psycopg 3.

    Flask-SQLAlchemy and plain SQLAlchemy resolve relative SQLite paths differently, so both
    the dashboard and the voice service call this to land on the same file.
    """
    if not url:
        return f"sqlite:///{DEFAULT_SQLITE_PATH}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url[len("sqlite:///") :]
        if relative and relative != ":memory:":
            return f"sqlite:///{(base_dir / relative).resolve()}"
    return url


def async_database_url(url: str) -> str:
    """Return the async-driver form of a resolved URL (aiosqlite or psycopg async)."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Every setting the product reads; `.env.example` documents each one."""

    database_url: str
    secret_key: str
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8000
    voice_host: str = "127.0.0.1"
    voice_port: int = 8001
    public_base_url: str = ""
    voice_service_url: str = "http://127.0.0.1:8001"
    voice_tool_processes: int = 1
    voice_instance_name: str = ""
    internal_api_token: str = ""
    openai_api_key: str = ""
    openai_base_url: str = ""
    openai_realtime_model: str = "gpt-realtime"
    openai_voice: str = "marin"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_phone_number: str = ""
    twilio_api_base_url: str = "https://api.twilio.com"
    staff_phone_number: str = ""
    allow_unsigned_webhooks: bool = False
    session_cookie_secure: bool = True
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    trusted_proxy_hops: int = 0
    redis_url: str = ""
    demo_password: str = ""
    default_time_zone: str = "America/New_York"
    waitlist_hold_minutes: int = 30
    metrics_token: str = ""
    voice_drain_seconds: int = 60
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(
        cls, env: dict[str, str] | None = None, *, load_dotenv_file: bool = True
    ) -> Settings:
        """Build settings from `env` (default: the process environment plus `.env`)."""
        if env is None:
            if load_dotenv_file:
                load_dotenv(PROJECT_ROOT / ".env", override=False)
            env = dict(os.environ)
        dashboard_port = int(env.get("DASHBOARD_PORT", "8000"))
        voice_host = env.get("VOICE_HOST", "127.0.0.1")
        voice_port = int(env.get("VOICE_PORT", "8001"))
        return cls(
            database_url=resolve_database_url(env.get("DATABASE_URL")),
            secret_key=env.get("SECRET_KEY", ""),
            dashboard_host=env.get("DASHBOARD_HOST", "127.0.0.1"),
            dashboard_port=dashboard_port,
            voice_host=voice_host,
            voice_port=voice_port,
            public_base_url=env.get("PUBLIC_BASE_URL", "").rstrip("/"),
            voice_service_url=env.get(
                "VOICE_SERVICE_URL", f"http://{voice_host}:{voice_port}"
            ).rstrip("/"),
            voice_tool_processes=max(0, int(env.get("VOICE_TOOL_PROCESSES", "1"))),
            voice_instance_name=env.get("VOICE_INSTANCE_NAME", "")[:128],
            internal_api_token=env.get("INTERNAL_API_TOKEN", ""),
            openai_api_key=env.get("OPENAI_API_KEY", ""),
            openai_base_url=env.get("OPENAI_BASE_URL", ""),
            openai_realtime_model=env.get("OPENAI_REALTIME_MODEL", "gpt-realtime"),
            openai_voice=env.get("OPENAI_VOICE", "marin"),
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
            twilio_phone_number=env.get("TWILIO_PHONE_NUMBER", ""),
            twilio_api_base_url=env.get("TWILIO_API_BASE_URL", "https://api.twilio.com").rstrip(
                "/"
            ),
            staff_phone_number=env.get("STAFF_PHONE_NUMBER", ""),
            allow_unsigned_webhooks=_flag(env.get("ALLOW_UNSIGNED_WEBHOOKS")),
            session_cookie_secure=_flag(env.get("SESSION_COOKIE_SECURE", "true")),
            session_idle_minutes=max(1, int(env.get("SESSION_IDLE_MINUTES", "30"))),
            session_max_hours=max(1, int(env.get("SESSION_MAX_HOURS", "12"))),
            trusted_proxy_hops=max(0, int(env.get("TRUSTED_PROXY_HOPS", "0"))),
            redis_url=env.get("REDIS_URL", ""),
            demo_password=env.get("DEMO_PASSWORD", ""),
            default_time_zone=env.get("DEFAULT_TIME_ZONE", "America/New_York"),
            waitlist_hold_minutes=max(1, int(env.get("WAITLIST_HOLD_MINUTES", "30"))),
            metrics_token=env.get("METRICS_TOKEN", ""),
            voice_drain_seconds=max(0, int(env.get("VOICE_DRAIN_SECONDS", "60"))),
        )
