"""`verify`: compare what the pipeline wrote with the ground truth, field by field.

Every record field is compared exactly except the processing-dependent ones (`revision`,
`duplicate_count`, `late_event_count`, `first_seen_at`, `finalized_at`), which are checked for
consistency only (docs/record-rules.md, "What a ground truth can and cannot predict"). Seconds
compare at millisecond precision. Dead letters must account for every injected malformed
payload, one each, and there must be no others.

Through the live pipeline a retrying sender adds copies the data set did not inject (a request
that timed out after Event Hubs took it, a 503 after some conversations were written):
`Allowances`, built from the sender's log, widens the duplicate bound per conversation and
admits extra dead letters that repeat an expected one, as many as that line was re-sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import orjson

from simulator.errors import InputError
from simulator.formats import dumps
from simulator.generate import DELIVERIES_FILE, MANIFEST_FILE, MANIFEST_FORMAT, TRUTH_FILE
from simulator.sources import Found, RecordSource
from simulator.timeutil import HOUR, parse_iso
from simulator.truth import PROCESSING_FIELDS, RECORD_FIELDS

Json = dict[str, Any]
Status = Literal["matched", "mismatched", "missing", "unexpected"]

SECONDS_FIELDS: Final = frozenset(
    {"duration_seconds", "reported_duration_seconds", "hold_seconds", "wrap_up_seconds"}
)
SET_FIELDS: Final = frozenset(
    {"queue_ids", "agent_ids", "skill_ids", "unknown_events", "source_formats"}
)
ISO_MS: Final = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REQUEST_ID_HEADER: Final = "x-request-id"
REQUEST_ID: Final = re.compile(r"^simulator-line-(\d+)$")
"""`send` names each request after its delivery line; ingest keeps the header in dead letters."""
DEFAULT_IDLE_SECONDS: Final = 4 * HOUR // 1000


@dataclass(frozen=True, slots=True)
class Diff:
    """One field that does not match: what the truth says, what the record says, and why."""

    field: str
    expected: Any
    actual: Any
    note: str = ""


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    conversation_id: str
    status: Status
    diffs: tuple[Diff, ...] = ()
    location: str | None = None


@dataclass(frozen=True, slots=True)
class ExpectedDeadLetter:
    """An injected malformed payload, as the manifest and the deliveries file describe it."""

    line: int
    element: int | None
    kind: str
    detail: str
    marker: str
    text: str  # the delivery line, or the array element as JSON
    value: Any  # the element's JSON value (None for line-level faults)

    def as_json(self) -> Json:
        return {
            "line": self.line,
            "element": self.element,
            "kind": self.kind,
            "detail": self.detail,
            "marker": self.marker,
        }


@dataclass(frozen=True, slots=True)
class Allowances:
    """Copies a retrying sender may have added beyond what the data set injected."""

    duplicates: Mapping[str, int] = field(default_factory=dict)
    """Conversation id → extra duplicate micro-events it may show."""
    letter_copies: Mapping[int, int] = field(default_factory=dict)
    """Delivery line → extra dead letters repeating that line's expected ones."""

    @property
    def empty(self) -> bool:
        return not self.duplicates and not self.letter_copies


@dataclass(frozen=True, slots=True)
class DeadLetterOutcome:
    expected: int
    found: int
    matched: tuple[tuple[ExpectedDeadLetter, str], ...]
    missing: tuple[ExpectedDeadLetter, ...]
    unexpected: tuple[Found, ...]
    copies: tuple[tuple[ExpectedDeadLetter, str], ...] = ()
    """Extra letters repeating a matched one, within the sender's retries (allowed)."""

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


@dataclass(frozen=True, slots=True)
class Expected:
    """The ground truth of a generated data set."""

    folder: Path
    manifest: Json
    truth: dict[str, Json]
    dead_letters: tuple[ExpectedDeadLetter, ...]
    notes: tuple[str, ...] = ()


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
            all(r.status == "matched" for r in self.records)
            and self.dead_letters.ok
            and not self.problems
        )

    def as_json(self) -> Json:
        failures = [r for r in self.records if r.status != "matched"]
        return {
            "ok": self.ok,
            "source": self.source,
            "summary": {
                "records": {
                    s: self.count(s) for s in ("matched", "mismatched", "missing", "unexpected")
                },
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


# ----------------------------------------------------------------------------- loading


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        msg = f"{path} is missing; is {path.parent} a folder written by `simulator generate`?"
        raise InputError(msg) from e
    except OSError as e:
        msg = f"cannot read {path}: {e.strerror}"
        raise InputError(msg) from e


def load_expected(folder: Path) -> Expected:
    """Read truth, manifest and the malformed delivery lines of a generated data set."""
    if not folder.is_dir():
        msg = f"data set folder {folder} does not exist; run `simulator generate --out {folder}`"
        raise InputError(msg)
    manifest_bytes = _read(folder / MANIFEST_FILE)
    try:
        manifest = orjson.loads(manifest_bytes)
    except orjson.JSONDecodeError as e:
        msg = f"{folder / MANIFEST_FILE} is not JSON ({e}); regenerate the data set"
        raise InputError(msg) from e
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        msg = f"{folder / MANIFEST_FILE} is not a {MANIFEST_FORMAT} manifest; regenerate it"
        raise InputError(msg)
    truth_bytes = _read(folder / TRUTH_FILE)
    notes = []
    recorded = manifest.get("files", {}).get(TRUTH_FILE, {}).get("sha256")
    if recorded and recorded != hashlib.sha256(truth_bytes).hexdigest():
        notes.append(f"{TRUTH_FILE} changed since it was generated (sha256 differs)")
    truth: dict[str, Json] = {}
    for number, line in enumerate(truth_bytes.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            truth[record["conversation_id"]] = record
        except (orjson.JSONDecodeError, KeyError, TypeError) as e:
            msg = f"{folder / TRUTH_FILE} line {number} is not a truth record: {e}"
            raise InputError(msg) from e
    malformed = manifest.get("malformed", [])
    wanted = {int(m["line"]) for m in malformed}
    lines = _lines(folder / DELIVERIES_FILE, wanted)
    expected = []
    for m in malformed:
        text = lines.get(int(m["line"]))
        if text is None:
            msg = f"{DELIVERIES_FILE} has no line {m['line']} that the manifest lists as malformed"
            raise InputError(msg)
        value = None
        if m.get("element") is not None:
            value = orjson.loads(text)[m["element"]]
            text = dumps(value).decode()
        expected.append(
            ExpectedDeadLetter(
                int(m["line"]), m.get("element"), m["kind"], m["detail"], m["marker"], text, value
            )
        )
    return Expected(folder, manifest, truth, tuple(expected), tuple(notes))


def _lines(path: Path, wanted: set[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    if not wanted:
        return found
    try:
        with path.open("rb") as stream:
            for number, line in enumerate(stream, start=1):
                if number in wanted:
                    found[number] = line.rstrip(b"\r\n").decode("utf-8", "replace")
    except OSError as e:
        msg = f"cannot read {path}: {e.strerror}"
        raise InputError(msg) from e
    return found


# ----------------------------------------------------------------------------- records


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


# ----------------------------------------------------------------------------- dead letters


def _raw_text(letter: Any) -> str:
    if not isinstance(letter, dict):
        return ""
    raw = letter.get("raw")
    if isinstance(raw, str):
        if letter.get("raw_encoding") == "base64":
            try:
                return base64.b64decode(raw, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return raw
        return raw
    return "" if raw is None else dumps(raw).decode()


def _source_line(letter: Any) -> int | None:
    """The delivery line: `source.line` offline, the request id header through ingest."""
    source = letter.get("source") if isinstance(letter, dict) else None
    if not isinstance(source, dict):
        return None
    line = source.get("line")
    if isinstance(line, int):
        return line
    headers = source.get("headers")
    request_id = headers.get(REQUEST_ID_HEADER) if isinstance(headers, dict) else None
    found = REQUEST_ID.match(request_id) if isinstance(request_id, str) else None
    return int(found.group(1)) if found else None


def _content_matches(want: ExpectedDeadLetter, raw: str) -> bool:
    if raw.strip() == want.text.strip():
        return True
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    else:
        if want.value is not None and parsed == want.value:
            return True
    return want.marker in want.text and want.marker in raw


def _canonical(value: Any) -> bytes:
    return dumps(value)


class _LetterIndex:
    """Found letters by line, by raw text and by parsed value, so matching stays near-linear."""

    def __init__(self, letters: Sequence[Found]) -> None:
        self.letters = letters
        self.raws = [_raw_text(f.value) for f in letters]
        self.stages = [f.value.get("stage") if isinstance(f.value, dict) else None for f in letters]
        self.by_line: dict[int, list[int]] = {}
        self.by_text: dict[str, list[int]] = {}
        self.by_value: dict[bytes, list[int]] = {}
        for i, (letter, raw) in enumerate(zip(letters, self.raws, strict=True)):
            line = _source_line(letter.value)
            if line is not None:
                self.by_line.setdefault(line, []).append(i)
            self.by_text.setdefault(raw.strip(), []).append(i)
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            self.by_value.setdefault(_canonical(parsed), []).append(i)

    def candidates(self, want: ExpectedDeadLetter, *, same_line: bool) -> Iterator[int]:
        """Letters that may be `want`'s, best first (each is then checked on content)."""
        if same_line:
            yield from self.by_line.get(want.line, ())
            return
        yield from self.by_text.get(want.text.strip(), ())
        if want.value is not None:
            yield from self.by_value.get(_canonical(want.value), ())
        if want.marker in want.text:
            yield from (i for i, raw in enumerate(self.raws) if want.marker in raw)

    def hit(self, want: ExpectedDeadLetter, free: set[int], *, same_line: bool) -> int | None:
        return next(
            (
                i
                for i in self.candidates(want, same_line=same_line)
                if i in free and _content_matches(want, self.raws[i])
            ),
            None,
        )


def match_dead_letters(
    wanted: Sequence[ExpectedDeadLetter],
    found: Iterable[Found],
    copies: Mapping[int, int] | None = None,
) -> DeadLetterOutcome:
    """Pair each injected malformed payload with one dead letter: same line and content first.

    Two malformed lines with the same bytes (`null`, `false`) share one ingest dead letter:
    ingest names letters after the body's hash, so it cannot tell a second such body from a
    retry. Letters left over that repeat a matched one are retry copies while `copies`
    (delivery line → extra copies allowed) has room for that line; any others are unexpected.
    """
    index = _LetterIndex(list(found))
    letters = index.letters
    free = set(range(len(letters)))
    matched: list[tuple[ExpectedDeadLetter, int]] = []
    pending = list(wanted)
    for same_line in (True, False):
        still = []
        for want in pending:
            hit = index.hit(want, free, same_line=same_line)
            if hit is None:
                still.append(want)
            else:
                free.discard(hit)
                matched.append((want, hit))
        pending = still
    ingest_by_text = {want.text.strip(): i for want, i in matched if index.stages[i] == "ingest"}
    missing = []
    for want in pending:
        shared = ingest_by_text.get(want.text.strip())
        if shared is None:
            missing.append(want)
        else:
            matched.append((want, shared))
    repeated: list[tuple[ExpectedDeadLetter, str]] = []
    room = dict(copies or {})
    for i in sorted(free):
        twin = next(
            (
                want
                for want, _ in matched
                if room.get(want.line, 0) > 0 and _content_matches(want, index.raws[i])
            ),
            None,
        )
        if twin is not None:
            room[twin.line] -= 1
            repeated.append((twin, letters[i].location))
            free.discard(i)
    return DeadLetterOutcome(
        expected=len(wanted),
        found=len(letters),
        matched=tuple((want, letters[i].location) for want, i in matched),
        missing=tuple(missing),
        unexpected=tuple(letters[i] for i in sorted(free)),
        copies=tuple(repeated),
    )


# ----------------------------------------------------------------------------- verify


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
    grace_ms = int(float(knobs.get("grace_seconds", 60)) * 1000)
    idle_ms = int(idle_seconds * 1000)
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
        status: Status = "mismatched" if diffs else "matched"
        outcomes.append(RecordOutcome(cid, status, tuple(diffs), found.location))
    for cid in expected.truth:
        if cid not in seen:
            outcomes.append(RecordOutcome(cid, "missing"))
    outcomes.sort(key=lambda o: (o.status != "mismatched", o.status, o.conversation_id))
    dead = match_dead_letters(expected.dead_letters, source.dead_letters(), allow.letter_copies)
    return Report(
        source=source.describe(),
        records=tuple(outcomes),
        dead_letters=dead,
        problems=tuple(problems),
        notes=expected.notes,
        extra_fields=extra,
    )
