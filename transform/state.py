"""Per-conversation accumulator state, its finalization rules and its storage codec.

The state is the set of distinct micro-events (keyed by identity) plus bookkeeping; the record
is always derived from it (`transform.derive`). Time comes in as `now_ms`, never from a clock.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.micro_event import MicroEvent
from transform.derive import PROCESSING_FIELDS, RecordMeta, derive
from transform.media import ALL_MEDIA, MediaFilter
from transform.progress import Progress

STATE_CODEC_VERSION = 1
COMPRESS_ABOVE_BYTES = 16 * 1024
"""Encoded states larger than this are zlib-compressed; smaller ones are stored as JSON, which
spares most commits the compression (a commit encodes the whole state, and most are small)."""
SECOND_MS = 1000
DAY_SECONDS = 86_400

# SPEC 5's defaults, declared once: the app settings, the replay CLI and the tools import them.
DEFAULT_GRACE_SECONDS = 60.0
"""GRACE_PERIOD_SECONDS: how long a conversation stays ended before its record is written."""
DEFAULT_IDLE_SECONDS = 4 * 3600.0
"""IDLE_TIMEOUT_SECONDS: silence after which an unfinished conversation is written `partial`."""
DEFAULT_RETENTION_DAYS = 7.0
"""STATE_RETENTION_DAYS: state is purged this long after its last write."""


def seconds_to_ms(seconds: float) -> int:
    """The one rounding rule from a setting in seconds to the core's milliseconds."""
    return round(seconds * SECOND_MS)


@dataclass(frozen=True, slots=True)
class Timing:
    """Grace, idle and retention periods (SPEC 5), in milliseconds."""

    grace_ms: int = seconds_to_ms(DEFAULT_GRACE_SECONDS)
    idle_ms: int = seconds_to_ms(DEFAULT_IDLE_SECONDS)
    retention_ms: int = seconds_to_ms(DEFAULT_RETENTION_DAYS * DAY_SECONDS)

    def __post_init__(self) -> None:
        for name in ("grace_ms", "idle_ms", "retention_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_seconds(
        cls,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        retention_days: float = DEFAULT_RETENTION_DAYS,
    ) -> Timing:
        """From the units the settings use (seconds, days), rounded to the millisecond."""
        return cls(
            grace_ms=seconds_to_ms(grace_seconds),
            idle_ms=seconds_to_ms(idle_seconds),
            retention_ms=seconds_to_ms(retention_days * DAY_SECONDS),
        )


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """Where a delivery sits in its Event Hubs partition (or replay file)."""

    partition: str
    sequence_number: int
    enqueued_ms: int


@dataclass(slots=True)
class ConversationState:
    """Everything the pipeline remembers about one conversation."""

    conversation_id: str
    events: dict[str, MicroEvent] = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)
    duplicate_count: int = 0
    late_event_count: int = 0
    first_seen_at_ms: int | None = None
    last_applied_at_ms: int | None = None
    ended_since_ms: int | None = None
    revision: int = 0
    record_meta: RecordMeta | None = None
    """The processing facts of the latest revision, so it can be re-rendered exactly."""
    fingerprint: str | None = None
    """Hash of the latest revision's observable fields."""
    written_revision: int = 0
    """The latest revision known to be in the record store."""
    watermarks: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per partition: (sequence number, enqueued ms) of the last delivery applied."""
    filtered_at_ms: int | None = None
    """When the media filter set this conversation aside instead of writing its first revision
    (`transform.media`); None while it is not set aside."""
    encoded_events: list[str] = field(default_factory=list, repr=False, compare=False)
    """Each event's compact JSON, in `events` order, made once: every commit encodes the whole
    state, and re-serializing every event each time was most of the cost. Rebuilt by
    `encode_state` when it does not match `events` (after a decode). Kept as `str`: the bytes
    `orjson.dumps` returns hold a 4 KiB buffer however short the JSON (a cached state kept
    ~48 KiB of them), and decoding them is the cheapest right-sized copy."""

    def clone(self) -> ConversationState:
        """An independent copy: what a cache keeps of a committed state (events are immutable)."""
        return ConversationState(
            self.conversation_id,
            dict(self.events),
            self.progress.clone(),
            self.duplicate_count,
            self.late_event_count,
            self.first_seen_at_ms,
            self.last_applied_at_ms,
            self.ended_since_ms,
            self.revision,
            self.record_meta,
            self.fingerprint,
            self.written_revision,
            dict(self.watermarks),
            self.filtered_at_ms,
            list(self.encoded_events),
        )

    # ------------------------------------------------------------------ applying
    def already_applied(self, position: SourcePosition | None) -> bool:
        """A redelivery of an Event Hubs event this state has already absorbed."""
        if position is None:
            return False
        mark = self.watermarks.get(position.partition)
        return mark is not None and (
            position.sequence_number <= mark[0] and position.enqueued_ms <= mark[1]
        )

    def note_position(self, position: SourcePosition | None) -> None:
        """Remember the latest delivery applied from a partition."""
        if position is None:
            return
        mark = self.watermarks.get(position.partition)
        if mark is None or position.sequence_number > mark[0] or position.enqueued_ms > mark[1]:
            self.watermarks[position.partition] = (
                position.sequence_number,
                position.enqueued_ms,
            )

    def add(self, event: MicroEvent, now_ms: int) -> bool:
        """Apply one micro-event; False (and counted) when it is a duplicate."""
        if event.identity in self.events:
            self.duplicate_count += 1
            return False
        if len(self.encoded_events) == len(self.events):
            self.encoded_events.append(_encode_event(event))
        self.events[event.identity] = event
        self.progress.add(event)
        if self.first_seen_at_ms is None:
            self.first_seen_at_ms = now_ms
        self.last_applied_at_ms = now_ms
        if self.revision >= 1:
            self.late_event_count += 1
        return True

    # ------------------------------------------------------------------ finalizing
    def settle(
        self,
        now_ms: int,
        timing: Timing,
        *,
        applied_new: bool,
        media: MediaFilter = ALL_MEDIA,
    ) -> dict[str, Any] | None:
        """Decide at `now_ms` whether a revision is owed; return it (and record it) if so.

        Where the first revision falls due, `media` decides whether the conversation is kept:
        one it does not admit is set aside (`filtered_at_ms`) and written never, unless later
        micro-events change what it admits (each settle decides again once it is set aside).
        """
        if self.progress.ended:
            if self.ended_since_ms is None:
                self.ended_since_ms = now_ms
        else:
            self.ended_since_ms = None
        if not self.events:
            return None
        if self.revision == 0:
            if self.filtered_at_ms is None and not self._first_write_due(now_ms, timing):
                return None
            if not media.admits_conversation(self.events.values()):
                if self.filtered_at_ms is None:
                    self.filtered_at_ms = now_ms
                return None
            self.filtered_at_ms = None
            return self._next_revision(now_ms)
        return self._next_revision(now_ms) if applied_new else None

    def _first_write_due(self, now_ms: int, timing: Timing) -> bool:
        if self.ended_since_ms is not None:
            return now_ms - self.ended_since_ms >= timing.grace_ms
        assert self.last_applied_at_ms is not None
        return now_ms - self.last_applied_at_ms >= timing.idle_ms

    def _next_revision(self, now_ms: int) -> dict[str, Any] | None:
        assert self.first_seen_at_ms is not None
        meta = RecordMeta(
            revision=self.revision + 1,
            duplicate_count=self.duplicate_count,
            late_event_count=self.late_event_count,
            first_seen_at_ms=self.first_seen_at_ms,
            finalized_at_ms=now_ms,
        )
        record = derive(self.events.values(), meta, self.progress)
        fingerprint = observable_fingerprint(record)
        if fingerprint == self.fingerprint:
            return None
        self.revision = meta.revision
        self.record_meta = meta
        self.fingerprint = fingerprint
        return record

    def current_record(self) -> dict[str, Any] | None:
        """The latest revision, re-rendered from state (for owed or repeated writes)."""
        if self.record_meta is None or not self.events:
            return None
        return derive(self.events.values(), self.record_meta, self.progress)

    def expired(self, now_ms: int, timing: Timing) -> bool:
        """Finalized, written, and past retention since the latest revision (or set aside by
        the media filter and past retention since then and its last micro-event)."""
        if self.record_meta is None:
            return self.filtered_at_ms is not None and now_ms >= self._set_aside_until(timing)
        return (
            self.written_revision >= self.revision
            and now_ms - self.record_meta.finalized_at_ms >= timing.retention_ms
        )

    def _set_aside_until(self, timing: Timing) -> int:
        assert self.filtered_at_ms is not None and self.last_applied_at_ms is not None
        return max(self.filtered_at_ms, self.last_applied_at_ms) + timing.retention_ms

    def next_deadline_ms(self, timing: Timing) -> int:
        """The earliest processing time at which the timer has something to do here."""
        if self.record_meta is not None:
            if self.written_revision < self.revision:
                return self.record_meta.finalized_at_ms
            return self.record_meta.finalized_at_ms + timing.retention_ms
        if self.filtered_at_ms is not None:
            return self._set_aside_until(timing)
        if self.ended_since_ms is not None:
            return self.ended_since_ms + timing.grace_ms
        assert self.last_applied_at_ms is not None
        return self.last_applied_at_ms + timing.idle_ms


def observable_fingerprint(record: dict[str, Any]) -> str:
    """A hash of the fields whose change is worth a new revision."""
    observable = {k: v for k, v in record.items() if k not in PROCESSING_FIELDS}
    digest = hashlib.blake2b(orjson.dumps(observable, option=orjson.OPT_SORT_KEYS), digest_size=16)
    return digest.hexdigest()


# ---------------------------------------------------------------------- codec
class StateCodecError(ValueError):
    """Stored state that cannot be decoded (corrupt, or written by an unknown version)."""


def encode_state(state: ConversationState) -> bytes:
    """Compact JSON, compressed when large; the adapters split them to fit storage limits."""
    meta = state.record_meta
    document = {
        "v": STATE_CODEC_VERSION,
        "id": state.conversation_id,
        "dup": state.duplicate_count,
        "late": state.late_event_count,
        "first": state.first_seen_at_ms,
        "last": state.last_applied_at_ms,
        "ended": state.ended_since_ms,
        "rev": state.revision,
        "meta": None
        if meta is None
        else [
            meta.revision,
            meta.duplicate_count,
            meta.late_event_count,
            meta.first_seen_at_ms,
            meta.finalized_at_ms,
        ],
        "fp": state.fingerprint,
        "written": state.written_revision,
        "wm": state.watermarks,
        "ev": orjson.Fragment("[" + ",".join(_encoded_events(state)) + "]"),
    }
    if state.filtered_at_ms is not None:  # only then: unfiltered state keeps its exact bytes
        document["filt"] = state.filtered_at_ms
    encoded = orjson.dumps(document)
    if len(encoded) <= COMPRESS_ABOVE_BYTES:
        return encoded
    return zlib.compress(encoded, 1)  # level 1: most of the ratio, a third of the time


def _encode_event(event: MicroEvent) -> str:
    return orjson.dumps(event.to_compact()).decode()


def _encoded_events(state: ConversationState) -> list[str]:
    if len(state.encoded_events) != len(state.events):
        state.encoded_events = [_encode_event(e) for e in state.events.values()]
    return state.encoded_events


def state_json(blob: bytes) -> bytes:
    """The JSON of an encoded state, decompressed when it is compressed (zlib never starts
    with `{`)."""
    return blob if blob[:1] == b"{" else zlib.decompress(blob)


def decode_state(blob: bytes) -> ConversationState:
    """Inverse of `encode_state`."""
    try:
        document = orjson.loads(state_json(blob))
    except (zlib.error, orjson.JSONDecodeError) as e:
        raise StateCodecError(f"stored state is corrupt: {e}") from e
    if document.get("v") != STATE_CODEC_VERSION:
        raise StateCodecError(f"unknown state version {document.get('v')!r}")
    conversation_id = document["id"]
    state = ConversationState(conversation_id=conversation_id)
    for compact in document["ev"]:
        event = MicroEvent.from_compact(conversation_id, compact)
        state.events[event.identity] = event
        state.progress.add(event)
    state.duplicate_count = document["dup"]
    state.late_event_count = document["late"]
    state.first_seen_at_ms = document["first"]
    state.last_applied_at_ms = document["last"]
    state.ended_since_ms = document["ended"]
    state.revision = document["rev"]
    meta = document["meta"]
    state.record_meta = None if meta is None else RecordMeta(*meta)
    state.fingerprint = document["fp"]
    state.written_revision = document["written"]
    state.watermarks = {k: (v[0], v[1]) for k, v in document["wm"].items()}
    state.filtered_at_ms = document.get("filt")
    return state
