"""Comparing one record with its truth, field by field (docs/record-rules.md).

Every record field is compared exactly except the processing-dependent ones (`revision`,
`duplicate_count`, `late_event_count`, `first_seen_at`, `finalized_at`), which are checked for
consistency only ("What a ground truth can and cannot predict"). Seconds compare at
millisecond precision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from simulator.generate.truth import PROCESSING_FIELDS, RECORD_FIELDS
from simulator.timeutil import parse_iso

Json = dict[str, Any]

SECONDS_FIELDS: Final = frozenset(
    {"duration_seconds", "reported_duration_seconds", "hold_seconds", "wrap_up_seconds"}
)
SET_FIELDS: Final = frozenset(
    {"queue_ids", "agent_ids", "skill_ids", "unknown_events", "source_formats"}
)
ISO_MS: Final = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@dataclass(frozen=True, slots=True)
class Diff:
    """One field that does not match: what the truth says, what the record says, and why."""

    field: str
    expected: Any
    actual: Any
    note: str = ""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(name: str, expected: Any, actual: Any) -> bool:
    if name in SECONDS_FIELDS and _is_number(expected) and _is_number(actual):
        return round(float(expected), 3) == round(float(actual), 3)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int) and not isinstance(actual, int):
        return False
    return bool(expected == actual)


def _explain(name: str, expected: Any, actual: Any) -> str:
    if name in SET_FIELDS and isinstance(expected, list) and isinstance(actual, list):
        missing = [v for v in expected if v not in actual]
        extra = [v for v in actual if v not in expected]
        if missing or extra:
            return f"missing {missing}, extra {extra}"
        return "same values, different order"
    if isinstance(expected, list) and isinstance(actual, list):
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            if e != a:
                return f"first difference at [{i}]: expected {e!r}, got {a!r}"
        return f"{len(expected)} expected entries, {len(actual)} found"
    if type(expected) is not type(actual) and expected is not None and actual is not None:
        return f"type {type(expected).__name__} expected, got {type(actual).__name__}"
    return ""


def _count(value: Any) -> int | None:
    """A non-negative integer, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _timestamp(value: Any) -> int | None:
    if isinstance(value, str) and ISO_MS.match(value):
        return parse_iso(value)
    return None


def consistency(
    expected: Json, actual: Json, *, grace_ms: int, idle_ms: int, extra_duplicates: int = 0
) -> list[Diff]:
    """Checks on the processing-dependent fields that hold whatever the timing was."""
    diffs = []
    revision = _count(actual.get("revision"))
    duplicates = _count(actual.get("duplicate_count"))
    late = _count(actual.get("late_event_count"))
    events = _count(actual.get("event_count"))

    def wrong(name: str, want: str, note: str) -> None:
        diffs.append(Diff(name, want, actual.get(name), f"consistency: {note}"))

    if revision is None or revision < 1:
        wrong("revision", "an integer ≥ 1", "revision starts at 1")
    injected = _count(expected.get("duplicate_count"))
    if duplicates is None:
        wrong("duplicate_count", "an integer ≥ 0", "a count")
    elif injected is not None and duplicates > injected + extra_duplicates:
        bound = injected + extra_duplicates
        why = f"only {bound} duplicate copies were delivered"
        if extra_duplicates:
            why += f" ({injected} injected, {extra_duplicates} by sender retries)"
        wrong("duplicate_count", f"≤ {bound}", why)
    if late is None:
        wrong("late_event_count", "an integer ≥ 0", "a count")
    elif revision is not None and events is not None:
        if late > max(events - 1, 0):
            wrong("late_event_count", f"≤ {events - 1}", "revision 1 needs at least one event")
        if revision == 1 and late:
            wrong("late_event_count", "0", "revision 1 has no events applied after revision 1")
        if revision > 1 and late < revision - 1:
            wrong("late_event_count", f"≥ {revision - 1}", "every rewrite applies a new event")
    first_seen = _timestamp(actual.get("first_seen_at"))
    finalized = _timestamp(actual.get("finalized_at"))
    if first_seen is None:
        wrong("first_seen_at", "ISO-8601 with ms and Z", "a processing timestamp")
    if finalized is None:
        wrong("finalized_at", "ISO-8601 with ms and Z", "a processing timestamp")
    if first_seen is not None and finalized is not None:
        wait = min(grace_ms, idle_ms)
        if finalized - first_seen < wait:
            wrong(
                "finalized_at",
                f"≥ first_seen_at + {wait / 1000:g} s",
                "a record is written only after the grace (or idle) period",
            )
    return diffs


def compare(
    expected: Json, actual: Json, *, grace_ms: int, idle_ms: int, extra_duplicates: int = 0
) -> list[Diff]:
    """Every field of `actual` against the truth `expected`."""
    diffs = []
    for name in RECORD_FIELDS:
        if name in PROCESSING_FIELDS:
            continue
        if name not in actual:
            diffs.append(Diff(name, expected.get(name), None, "field missing from the record"))
            continue
        want, got = expected.get(name), actual[name]
        if not _same(name, want, got):
            diffs.append(Diff(name, want, got, _explain(name, want, got)))
    diffs += consistency(
        expected, actual, grace_ms=grace_ms, idle_ms=idle_ms, extra_duplicates=extra_duplicates
    )
    return diffs
