"""The simulator's console tables: figures shown as they are."""

from __future__ import annotations

import pytest

from simulator.report import size_text


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (3 * 1024**2 // 2, "1.5 MiB"),
        (5 * 1024**4, "5120.0 GiB"),
    ],
)
def test_sizes_are_shown_in_their_unit_with_the_fraction(n: int, shown: str) -> None:
    assert size_text(n) == shown
