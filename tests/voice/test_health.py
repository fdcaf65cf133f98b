"""The voice service's app factory and /health."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from voice import create_app, get_database


async def _get_health(app: Any) -> tuple[int, Any]:
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/health")
        return response.status_code, await response.get_json()


def test_health_reports_ok_while_serving(sqlite_url: str) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": sqlite_url})

    assert asyncio.run(_get_health(app)) == (200, {"status": "ok", "database": "ok"})


def test_health_is_503_when_the_database_is_unusable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file-not-a-folder"
    blocker.write_text("")
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{blocker}/carematix.db"})

    assert asyncio.run(_get_health(app)) == (503, {"status": "error", "database": "error"})


def test_database_is_open_only_while_serving(sqlite_url: str) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": sqlite_url})

    async def scenario() -> bool:
        async with app.test_app():
            return get_database(app) is not None

    assert get_database(app) is None
    assert asyncio.run(scenario()) is True
    assert get_database(app) is None
