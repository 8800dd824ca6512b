"""Integer epoch milliseconds and their ISO-8601 form; the simulator never reads the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from simulator.errors import UsageError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# A fixed default start, so that generation never depends on when it runs.
DEFAULT_START = "2026-11-24T08:00:00.000Z"

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE


@lru_cache(maxsize=1 << 16)
def _iso_second(second: int) -> str:
    return f"{EPOCH + timedelta(seconds=second):%Y-%m-%dT%H:%M:%S}"


def iso(ms: int) -> str:
    """Format epoch milliseconds as `2026-11-24T10:15:30.123Z`."""
    second, milli = divmod(ms, 1000)
    return f"{_iso_second(second)}.{milli:03d}Z"


def iso_offset(ms: int, offset_minutes: int) -> str:
    """Format epoch milliseconds as ISO-8601 in another UTC offset (`…+02:00`), same instant."""
    moment = EPOCH + timedelta(milliseconds=ms + offset_minutes * MINUTE)
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}{sign}{hours:02d}:{minutes:02d}"


def parse_iso(text: str) -> int:
    """Parse an ISO-8601 timestamp (naive means UTC) into epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        msg = f"{text!r} is not an ISO-8601 timestamp; use e.g. {DEFAULT_START!r}"
        raise UsageError(msg) from e
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
