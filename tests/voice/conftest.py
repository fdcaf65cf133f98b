"""Fixtures for the voice tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.voice.stack import dispose_engines


@pytest.fixture(autouse=True)
def _dispose_test_engines() -> Iterator[None]:
    """Engines opened by a test's helpers are disposed after it (no leaked connections)."""
    yield
    dispose_engines()
