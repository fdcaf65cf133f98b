"""Print where the dashboard and the voice service listen, and which logins exist."""

from __future__ import annotations

import sys

from sqlalchemy import case, func, select

from core.config import Settings
from core.db import make_engine
from core.models import Role, User

# Wildcard binds are not addresses a browser can open; show the loopback one instead.
_DISPLAY_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}
MAX_LISTED_LOGINS = 20


def url(host: str, port: int) -> str:
    """An http URL a browser on this machine can open for a bind address."""
    shown = _DISPLAY_HOSTS.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def logins(database_url: str) -> tuple[list[tuple[str, str]], int]:
    """Up to MAX_LISTED_LOGINS active (email, role) pairs, admins first, and the total count."""
    role_order = case((User.role == Role.ADMIN, 0), (User.role == Role.COORDINATOR, 1), else_=2)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            total = (
                connection.scalar(
                    select(func.count()).select_from(User).where(User.active.is_(True))
                )
                or 0
            )
            rows = connection.execute(
                select(User.email, User.role)
                .where(User.active.is_(True))
                .order_by(role_order, User.email)
                .limit(MAX_LISTED_LOGINS)
            ).all()
    finally:
        engine.dispose()
    return [(email, role) for email, role in rows], total


def main() -> int:
    """Write the banner to stdout."""
    settings = Settings.from_env()
    out = sys.stdout
    out.write("\nCarematix\n")
    out.write(f"  Dashboard      {url(settings.dashboard_host, settings.dashboard_port)}\n")
    out.write(f"  Voice service  {url(settings.voice_host, settings.voice_port)}\n")
    try:
        listed, total = logins(settings.database_url)
    except Exception as exc:  # The banner is informative only; never stop `make run` over it.
        out.write(f"  (logins unavailable: {type(exc).__name__})\n")
        return 0
    if not listed:
        out.write("  No logins yet: flask --app wsgi create-user EMAIL --role admin\n")
        return 0
    out.write("  Logins:\n")
    for email, role in listed:
        out.write(f"    {email:<42} {role}\n")
    if total > len(listed):
        out.write(f"    ... and {total - len(listed)} more\n")
    if settings.demo_password:
        out.write("  Demo password: the value of DEMO_PASSWORD\n")
    else:
        out.write("  Demo password: printed when the demo data was created\n")
        out.write("  (forgotten? .venv/bin/flask --app wsgi set-password EMAIL)\n")
    out.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
