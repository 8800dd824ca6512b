"""`verify`: every record and dead letter the pipeline wrote, against the ground truth.

Through the live pipeline a retrying sender adds copies the data set did not inject (a request
that timed out after Event Hubs took it, a 503 after some conversations were written):
`Allowances`, built from the sender's log, widens the duplicate bound per conversation and
admits extra dead letters that repeat an expected one, as many as that line was re-sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from simulator.generate.truth import RECORD_FIELDS
from simulator.verify.dead_letters import DeadLetterOutcome, match_dead_letters
from simulator.verify.expected import Expected
from simulator.verify.records import Diff, compare
from simulator.verify.sources import RecordSource
from transform.state import DEFAULT_GRACE_SECONDS, DEFAULT_IDLE_SECONDS, seconds_to_ms

Json = dict[str, Any]
Status = Literal["matched", "mismatched", "missing", "unexpected", "undelivered"]
"""`undelivered`: the record differs from the truth (or is absent) and the conversation had
deliveries the sender gave up on, never acknowledged: the route's loss (an EventBridge rule
puts them in its dead-letter queue), not the pipeline's."""
STATUSES: tuple[Status, ...] = ("matched", "mismatched", "missing", "unexpected", "undelivered")


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    conversation_id: str
    status: Status
    diffs: tuple[Diff, ...] = ()
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Allowances:
    """Copies a retrying sender may have added beyond what the data set injected."""

    duplicates: Mapping[str, int] = field(default_factory=dict)
    """Conversation id → extra duplicate micro-events it may show."""
    letter_copies: Mapping[int, int] = field(default_factory=dict)
    """Delivery line → extra dead letters repeating that line's expected ones."""
    undelivered: Mapping[str, int] = field(default_factory=dict)
    """Conversation id → deliveries of it the sender gave up on (never acknowledged)."""
    undelivered_lines: frozenset[int] = frozenset()
    """Delivery lines the sender gave up on: their injected dead letters may never exist."""


@dataclass(frozen=True, slots=True)
class Report:
    """The verdict of `verify`."""

    source: str
    records: tuple[RecordOutcome, ...]
    dead_letters: DeadLetterOutcome
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    extra_fields: dict[str, int] = field(default_factory=dict)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.records if r.status == status)

    @property
    def ok(self) -> bool:
        return (
            all(r.status in ("matched", "undelivered") for r in self.records)
            and self.dead_letters.ok
            and not self.problems
        )

    def as_json(self) -> Json:
        failures = [r for r in self.records if r.status != "matched"]
        return {
            "ok": self.ok,
            "source": self.source,
            "summary": {
                "records": {s: self.count(s) for s in STATUSES},
                "dead_letters": {
                    "expected": self.dead_letters.expected,
                    "found": self.dead_letters.found,
                    "matched": len(self.dead_letters.matched),
                    "missing": len(self.dead_letters.missing),
                    "unexpected": len(self.dead_letters.unexpected),
                    "retry_copies": len(self.dead_letters.copies),
                },
                "problems": len(self.problems),
            },
            "records": [
                {
                    "conversation_id": r.conversation_id,
                    "status": r.status,
                    "location": r.location,
                    "diffs": [
                        {
                            "field": d.field,
                            "expected": d.expected,
                            "actual": d.actual,
                            "note": d.note,
                        }
                        for d in r.diffs
                    ],
                }
                for r in failures
            ],
            "dead_letters": {
                "missing": [e.as_json() for e in self.dead_letters.missing],
                "unexpected": [
                    {"location": f.location, "value": f.value, "error": f.error}
                    for f in self.dead_letters.unexpected
                ],
            },
            "problems": list(self.problems),
            "notes": list(self.notes),
            "extra_fields": dict(sorted(self.extra_fields.items())),
        }


def _unless_undelivered(status: Status, conversation_id: str, allow: Allowances) -> Status:
    return "undelivered" if allow.undelivered.get(conversation_id) else status


def verify(
    expected: Expected,
    source: RecordSource,
    *,
    idle_seconds: float = DEFAULT_IDLE_SECONDS,
    progress: Callable[[int], None] | None = None,
    allowances: Allowances | None = None,
) -> Report:
    """Compare every record and dead letter of `source` with `expected`."""
    allow = allowances or Allowances()
    knobs = expected.manifest.get("knobs", {})
    grace_ms = seconds_to_ms(float(knobs.get("grace_seconds", DEFAULT_GRACE_SECONDS)))
    idle_ms = seconds_to_ms(idle_seconds)
    problems: list[str] = []
    outcomes: list[RecordOutcome] = []
    seen: dict[str, str] = {}
    extra: dict[str, int] = {}
    known = set(RECORD_FIELDS)
    for found in source.records():
        if progress:
            progress(1)
        if found.error is not None or not isinstance(found.value, dict):
            problems.append(f"{found.location}: {found.error or 'not a JSON object'}")
            continue
        record = found.value
        cid = record.get("conversation_id")
        if not isinstance(cid, str):
            problems.append(f"{found.location}: record without a conversation_id")
            continue
        if cid in seen:
            problems.append(f"{found.location}: a second record for {cid!r} (first in {seen[cid]})")
            continue
        seen[cid] = found.location
        for name in record:
            if name not in known:
                extra[name] = extra.get(name, 0) + 1
        truth = expected.truth.get(cid)
        if truth is None:
            outcomes.append(RecordOutcome(cid, "unexpected", location=found.location))
            continue
        diffs = compare(
            truth,
            record,
            grace_ms=grace_ms,
            idle_ms=idle_ms,
            extra_duplicates=allow.duplicates.get(cid, 0),
        )
        status: Status = "matched" if not diffs else _unless_undelivered("mismatched", cid, allow)
        outcomes.append(RecordOutcome(cid, status, tuple(diffs), found.location))
    for cid in expected.truth:
        if cid not in seen:
            outcomes.append(RecordOutcome(cid, _unless_undelivered("missing", cid, allow)))
    outcomes.sort(key=lambda o: (o.status != "mismatched", o.status, o.conversation_id))
    wanted = [d for d in expected.dead_letters if d.line not in allow.undelivered_lines]
    dead = match_dead_letters(wanted, source.dead_letters(), allow.letter_copies)
    return Report(
        source=source.describe(),
        records=tuple(outcomes),
        dead_letters=dead,
        problems=tuple(problems),
        notes=expected.notes,
        extra_fields=extra,
    )
