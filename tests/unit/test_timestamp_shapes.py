"""The cheap parse of `YYYY-MM-DDTHH:MM:SS.mmmZ` agrees with `datetime.fromisoformat`."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas.timestamps import MAX_MS, MIN_MS, TimestampError, datetime_to_ms, to_epoch_ms


def _reference(text: str) -> int | None:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    epoch_ms = datetime_to_ms(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    return epoch_ms if MIN_MS <= epoch_ms <= MAX_MS else None


def _parsed(text: str) -> int | None:
    try:
        return to_epoch_ms(text)
    except TimestampError:
        return None


# Canonical-looking strings, with fields past their ranges as often as within them.
canonical_shaped = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z".format,
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.integers(0, 999),
)


@settings(max_examples=500)
@given(canonical_shaped)
@example("2024-02-29T23:59:59.999Z")
@example("2023-02-29T00:00:00.000Z")
@example("2026-11-24T24:00:00.000Z")
@example("9999-12-31T23:59:59.999Z")
@example("2026-11-24T08:00:60.000Z")
@example("2026-11-24T08:60:00.000Z")
@example("0000-01-01T00:00:00.000Z")
@example("1969-12-31T23:59:59.999Z")
def test_canonical_timestamps_parse_like_fromisoformat(text: str) -> None:
    assert _parsed(text) == _reference(text)


@given(canonical_shaped, st.integers(0, 23), st.sampled_from("0123456789-:.TZ+ _t²٣"))
def test_near_canonical_timestamps_parse_like_fromisoformat(
    text: str, position: int, char: str
) -> None:
    mutated = text[:position] + char + text[position + 1 :]
    assert _parsed(mutated) == _reference(mutated)
