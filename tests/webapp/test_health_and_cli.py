"""The dashboard's app factory, /health, and the operator commands."""

from __future__ import annotations

import importlib.util
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import create_engine, func, pool, select

from core.models import User
from core.security import verify_password
from webapp import create_app, db

ROOT = Path(__file__).resolve().parents[2]


def _make_app(database_url: str, **extra: object) -> Flask:
    config: dict[str, object] = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "DEMO_PASSWORD": "",
    }
    config.update(extra)
    return create_app(config)


AppFactory = Callable[..., Flask]


@pytest.fixture
def app_factory() -> Iterator[AppFactory]:
    """Builds apps and disposes their engines, so no connection outlives the test."""
    apps: list[Flask] = []

    def build(database_url: str, **extra: object) -> Flask:
        app = _make_app(database_url, **extra)
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def _user_count(database_url: str) -> int:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(User)) or 0
    finally:
        engine.dispose()


def _password_hash(database_url: str, email: str) -> str | None:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.scalar(select(User.password_hash).where(User.email == email))
    finally:
        engine.dispose()


def test_health_reports_ok_when_the_database_answers(
    app_factory: AppFactory, sqlite_url: str
) -> None:
    client = app_factory(sqlite_url).test_client()

    response = client.get("/health")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_health_is_503_without_details_when_the_database_is_unusable(
    app_factory: AppFactory, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file-not-a-folder"
    blocker.write_text("")
    client = app_factory(f"sqlite:///{blocker}/carematix.db").test_client()

    response = client.get("/health")

    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "error"}
    assert b"sqlite" not in response.data.lower()


def test_app_creates_the_sqlite_folder_when_missing(
    app_factory: AppFactory, tmp_path: Path
) -> None:
    database = tmp_path / "fresh" / "nested" / "carematix.db"

    client = app_factory(f"sqlite:///{database}").test_client()

    assert database.parent.is_dir()
    assert client.get("/health").status_code == 200


def test_missing_secret_key_is_generated_once_and_shared(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str
) -> None:
    monkeypatch.setattr("webapp.PROJECT_ROOT", tmp_path)
    config = {"SQLALCHEMY_DATABASE_URI": sqlite_url, "SECRET_KEY": ""}

    first, second = create_app(dict(config)), create_app(dict(config))

    assert len(first.config["SECRET_KEY"]) >= 32
    # Gunicorn workers each build their own app: they must agree on the key.
    assert second.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    key_file = tmp_path / "instance" / "dev-secret-key"
    assert key_file.stat().st_mode & 0o077 == 0
    for app in (first, second):
        with app.app_context():
            db.engine.dispose()


def test_seed_demo_creates_logins_once_then_reports_them_present(
    app_factory: AppFactory, db_url: str
) -> None:
    runner: FlaskCliRunner = app_factory(db_url).test_cli_runner()

    first = runner.invoke(args=["seed-demo"])

    assert first.exit_code == 0, first.output
    assert "admin@carematix.local" in first.output
    assert "coordinator@carematix.local" in first.output
    match = re.search(r"shown once\): (\S+)", first.output)
    assert match, first.output
    admin_hash = _password_hash(db_url, "admin@carematix.local")
    assert admin_hash and verify_password(admin_hash, match.group(1))
    users_after_first = _user_count(db_url)
    assert users_after_first >= 3

    second = runner.invoke(args=["seed-demo"])

    assert second.exit_code == 0, second.output
    assert "demo data already present" in second.output
    assert _user_count(db_url) == users_after_first


def test_seed_demo_uses_demo_password_without_printing_it(
    app_factory: AppFactory, sqlite_url: str
) -> None:
    runner = app_factory(sqlite_url, DEMO_PASSWORD="correct-horse-battery").test_cli_runner()

    result = runner.invoke(args=["seed-demo"])

    assert result.exit_code == 0, result.output
    assert "correct-horse-battery" not in result.output
    admin_hash = _password_hash(sqlite_url, "admin@carematix.local")
    assert admin_hash and verify_password(admin_hash, "correct-horse-battery")


def test_seed_demo_rejects_a_short_demo_password_cleanly(
    app_factory: AppFactory, sqlite_url: str
) -> None:
    runner = app_factory(sqlite_url, DEMO_PASSWORD="short").test_cli_runner()

    result = runner.invoke(args=["seed-demo"])

    assert result.exit_code != 0
    assert "DEMO_PASSWORD" in result.output
    assert _user_count(sqlite_url) == 0


def test_create_user_with_a_bad_role_exits_non_zero_and_writes_nothing(
    app_factory: AppFactory, sqlite_url: str
) -> None:
    runner = app_factory(sqlite_url).test_cli_runner()

    result = runner.invoke(
        args=["create-user", "someone@example.org", "--role", "superuser", "--password", "x" * 16]
    )

    assert result.exit_code != 0
    assert "superuser" in result.output
    assert _user_count(sqlite_url) == 0


def test_create_user_prompts_for_the_password_and_stores_only_its_hash(
    app_factory: AppFactory, db_url: str
) -> None:
    runner = app_factory(db_url).test_cli_runner()

    result = runner.invoke(
        args=["create-user", "Coord@Example.org", "--role", "coordinator"],
        input="a-long-password-1\na-long-password-1\n",
    )

    assert result.exit_code == 0, result.output
    assert "a-long-password-1" not in result.output
    stored = _password_hash(db_url, "coord@example.org")
    assert stored and verify_password(stored, "a-long-password-1")


def test_create_user_refuses_a_duplicate_email(app_factory: AppFactory, db_url: str) -> None:
    runner = app_factory(db_url).test_cli_runner()
    args = ["create-user", "admin@example.org", "--role", "admin", "--password", "pw-" * 5]
    assert runner.invoke(args=args).exit_code == 0

    again = runner.invoke(args=args)

    assert again.exit_code != 0
    assert "Traceback" not in again.output
    assert _user_count(db_url) == 1


def test_set_password_replaces_the_hash(app_factory: AppFactory, sqlite_url: str) -> None:
    runner = app_factory(sqlite_url).test_cli_runner()
    created = [
        "create-user",
        "c@example.org",
        "--role",
        "coordinator",
        "--password",
        "first-pass-1",
    ]
    assert runner.invoke(args=created).exit_code == 0

    result = runner.invoke(args=["set-password", "C@example.org"], input="second-pass-2\n" * 2)

    assert result.exit_code == 0, result.output
    stored = _password_hash(sqlite_url, "c@example.org")
    assert stored and verify_password(stored, "second-pass-2")
    assert not verify_password(stored, "first-pass-1")


def test_set_password_for_an_unknown_email_exits_non_zero(
    app_factory: AppFactory, sqlite_url: str
) -> None:
    runner = app_factory(sqlite_url).test_cli_runner()

    result = runner.invoke(args=["set-password", "nobody@example.org", "--password", "x" * 12])

    assert result.exit_code != 0
    assert "No login" in result.output


def _gunicorn_config() -> Any:
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dashboard_refuses_a_port_another_server_listens_on_with_reuse_port() -> None:
    """SO_REUSEPORT spreads connections over gunicorn's workers; it must not let a second
    dashboard share the port of a running one."""
    config = _gunicorn_config()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as running:
        running.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        running.bind(("127.0.0.1", 0))
        running.listen()
        port = running.getsockname()[1]
        server = SimpleNamespace(cfg=SimpleNamespace(address=[("127.0.0.1", port)]))
        with pytest.raises(SystemExit, match="already in use"):
            config.on_starting(server)
    config.on_starting(server)  # free again: starts
