"""Helpers for the pure tests."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from tests.replaying import replay_in_memory
from tests.unit.builders import line
from transform.state import Timing

Replay = Callable[..., dict[str, dict[str, Any]]]


def replay_payloads(
    deliveries: Iterable[object], batch_size: int = 100, timing: Timing | None = None
) -> dict[str, dict[str, Any]]:
    """Replay deliveries (payloads, arrays or raw bytes) and return records by conversation id."""
    data = b"".join((d if isinstance(d, bytes) else line(d)) + b"\n" for d in deliveries)
    records, _, _ = replay_in_memory(io.BytesIO(data), batch_size=batch_size, timing=timing)
    return records.records


@pytest.fixture
def replayed() -> Replay:
    """The replay helper as a fixture."""
    return replay_payloads
