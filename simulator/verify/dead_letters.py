"""Pairing the dead letters found with the malformed payloads the data set injected.

Dead letters must account for every injected malformed payload, one each, and there must be no
others; through the live pipeline a retrying sender may add copies of an expected one, as many
as that line was re-sent (`copies`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from simulator.generate.formats import dumps
from simulator.verify.expected import ExpectedDeadLetter
from simulator.verify.sources import Found

REQUEST_ID_HEADER: Final = "x-request-id"
REQUEST_ID: Final = re.compile(r"^simulator-line-(\d+)$")
"""`send` names each request after its delivery line; ingest keeps the header in dead letters."""
REASONS: Final = {"unsupported-topic": "unsupported-topic"}
"""Injected kinds whose dead letter must carry exactly this reason (docs/record-rules.md); the
older kinds are matched on content only (a truncated body is `invalid-json`, …)."""


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
        self.reasons = [
            f.value.get("reason") if isinstance(f.value, dict) else None for f in letters
        ]
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
        reason = REASONS.get(want.kind)
        return next(
            (
                i
                for i in self.candidates(want, same_line=same_line)
                if i in free
                and (reason is None or self.reasons[i] == reason)
                and _content_matches(want, self.raws[i])
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
