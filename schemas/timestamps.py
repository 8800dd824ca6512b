"""Timestamp parsing and formatting: epoch milliseconds inside, ISO-8601 `...Z` outside."""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BeforeValidator

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_MS = 0
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant ISO-8601 can show


class TimestampError(ValueError):
    """A value that is neither an ISO-8601 timestamp nor epoch milliseconds."""


def to_epoch_ms(value: object) -> int:
    """Parse an ISO-8601 string (naive means UTC) or epoch milliseconds (number or digits)."""
    epoch_ms = _parse_epoch_ms(value)
    if not MIN_MS <= epoch_ms <= MAX_MS:
        raise TimestampError(f"timestamp {value!r} is outside 1970-01-01 .. 9999-12-31")
    return epoch_ms


def _parse_epoch_ms(value: object) -> int:
    if isinstance(value, str):  # first: the usual case
        text = value.strip()
        if text.isascii() and text.lstrip("-").isdigit() and len(text) <= 20:
            return int(text)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as e:
            msg = f"expected ISO-8601 or epoch milliseconds, got {value[:64]!r}"
            raise TimestampError(msg) from e
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        delta = parsed - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    if isinstance(value, bool):
        raise TimestampError(f"expected a timestamp, got the boolean {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TimestampError(f"expected a timestamp, got {value!r}")
        return int(value)
    raise TimestampError(f"expected a timestamp, got {type(value).__name__}")


def iso_ms(epoch_ms: int) -> str:
    """Format epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    seconds, millis = divmod(epoch_ms, 1000)
    return _iso_seconds(seconds) + _MILLIS_SUFFIXES[millis]


_MILLIS_SUFFIXES = tuple(f".{millis:03d}Z" for millis in range(1000))
"""`.000Z` to `.999Z`: looked up, which is twice as fast as formatting them."""


@functools.lru_cache(maxsize=1 << 16)
def _iso_seconds(seconds: int) -> str:
    # Records repeat the same seconds many times (lifecycle order and timestamps).
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}"


def datetime_to_ms(moment: datetime) -> int:
    """Aware datetime to epoch milliseconds."""
    if moment.tzinfo is None:
        raise TimestampError("naive datetimes are not accepted: pass an aware UTC datetime")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def ms_to_datetime(epoch_ms: int) -> datetime:
    """Epoch milliseconds to an aware UTC datetime."""
    seconds, millis = divmod(epoch_ms, 1000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=millis * 1000)


EpochMs = Annotated[int, BeforeValidator(to_epoch_ms)]
"""A pydantic field type accepting ISO-8601 strings or epoch milliseconds."""
