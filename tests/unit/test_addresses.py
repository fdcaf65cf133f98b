"""Addresses on one line (core.models.one_line_address). Pure: no database."""

from __future__ import annotations

import pytest

from core.models import one_line_address


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (
            ("412 Maple Avenue", "Apt 2", "Arlington", "VA", "22201"),
            "412 Maple Avenue, Apt 2, Arlington, VA 22201",
        ),
        (
            ("27 Oak Street", None, "Silver Spring", "MD", "20910"),
            "27 Oak Street, Silver Spring, MD 20910",
        ),
        (("1 Rue Verte", "", "Lyon", None, "69001"), "1 Rue Verte, Lyon, 69001"),
    ],
)
def test_an_address_on_one_line_skips_empty_parts(
    parts: tuple[str | None, ...], expected: str
) -> None:
    assert one_line_address(*parts) == expected
