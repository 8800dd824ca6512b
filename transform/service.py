"""The batch service: the one piece of logic the offline replay and the Event Hub function share.

`process` takes a batch of raw deliveries and leaves, for each conversation it touched, state
saved with its ETag and any owed record written; `tick` is the timer's half (grace periods run
out, idle conversations expire, owed writes are retried, old state is purged).

Effects are exactly-once on at-least-once delivery: a record is written before the state that
owes it is saved (a crash in between rewrites the same revision), Event Hubs redeliveries are
recognised by per-partition watermarks and skipped without counting as duplicates, and dead
letters have ids derived from their position, so writing one twice keeps one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from schemas.micro_event import MicroEvent
from schemas.timestamps import datetime_to_ms
from transform.deadletters import make_dead_letter
from transform.errors import ConcurrencyConflict, TransformError
from transform.normalize import Rejection, parse_delivery
from transform.ports import Clock, DeadLetterSink, RecordSink, StateStore
from transform.state import ConversationState, SourcePosition, Timing

log = logging.getLogger(__name__)

MAX_CONFLICT_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Delivery:
    """One raw delivery and where it came from."""

    body: bytes
    position: SourcePosition | None = None
    """Event Hubs position, for recognising redeliveries; None offline."""
    source: dict[str, Any] = field(default_factory=dict)
    """Dead-letter `source`: partition / sequence_number / offset, or line."""


@dataclass(slots=True)
class Counts:
    """What a batch or tick did; every field is a metric."""

    deliveries: int = 0
    payloads: int = 0
    micro_events: int = 0
    applied: int = 0
    duplicates: int = 0
    redelivered: int = 0
    dead_letters: int = 0
    conversations: int = 0
    revisions_written: int = 0
    records_owed: int = 0
    conflicts: int = 0
    finalized: int = 0
    purged: int = 0

    def add(self, other: Counts) -> None:
        """Accumulate another report into this one."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        """For logs and metrics."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class _Touch:
    """A conversation's share of one batch."""

    conversation_id: str
    parts: list[tuple[SourcePosition | None, list[MicroEvent]]] = field(default_factory=list)


class TransformService:
    """Applies batches of deliveries to per-conversation state and writes what is owed."""

    def __init__(
        self,
        store: StateStore,
        records: RecordSink,
        dead_letters: DeadLetterSink,
        clock: Clock,
        timing: Timing | None = None,
    ) -> None:
        self._store = store
        self._records = records
        self._dead_letters = dead_letters
        self._clock = clock
        self._timing = timing or Timing()

    @property
    def timing(self) -> Timing:
        """The grace, idle and retention periods in force."""
        return self._timing

    def process(self, deliveries: Sequence[Delivery]) -> Counts:
        """Apply a batch; raises only for transient storage failures (retry the batch)."""
        return self.apply(parse_batch(deliveries))

    def apply(self, batch: ParsedBatch) -> Counts:
        """Apply an already parsed batch at the clock's current time."""
        now_ms = datetime_to_ms(self._clock.now())
        counts = Counts(
            deliveries=batch.deliveries,
            payloads=batch.payloads,
            micro_events=batch.micro_events,
        )
        for delivery, rejection in batch.rejections:
            self._dead_letters.write(
                make_dead_letter(
                    rejection, stage="transform", source=delivery.source, received_at_ms=now_ms
                )
            )
            counts.dead_letters += 1
            log.warning(
                "dead letter stage=transform reason=%s source=%s error=%s",
                rejection.reason,
                delivery.source,
                rejection.error[:200],
            )
        for touch in batch.touches.values():
            counts.add(self._apply(touch, now_ms))
        return counts

    def _apply(self, touch: _Touch, now_ms: int) -> Counts:
        conflicts = 0
        for _ in range(MAX_CONFLICT_ATTEMPTS):
            counts = Counts(conversations=1, conflicts=conflicts)
            loaded = self._store.load(touch.conversation_id)
            state, etag = loaded if loaded else (ConversationState(touch.conversation_id), None)
            applied_new = changed = False
            for position, events in touch.parts:
                if state.already_applied(position):
                    counts.redelivered += len(events)
                    continue
                changed = True
                for event in events:
                    if state.add(event, now_ms):
                        counts.applied += 1
                        applied_new = True
                    else:
                        counts.duplicates += 1
                state.note_position(position)
            if not changed:
                return counts
            record = state.settle(now_ms, self._timing, applied_new=applied_new)
            if record is not None:
                counts.add(self._write_record(state, record))
            try:
                self._store.save(state, etag, state.next_deadline_ms(self._timing))
            except ConcurrencyConflict:
                log.info("state conflict conversation_id=%s: reload", touch.conversation_id)
                conflicts += 1
                continue
            return counts
        raise ConcurrencyConflict(
            f"conversation {touch.conversation_id!r}: state changed under us "
            f"{MAX_CONFLICT_ATTEMPTS} times in a row; retry the batch"
        )

    def _write_record(self, state: ConversationState, record: dict[str, Any]) -> Counts:
        """Write before saving the state that owes it; on failure the state keeps it owed."""
        counts = Counts()
        try:
            self._records.write(record)
        except TransformError as e:
            counts.records_owed += 1
            log.warning(
                "record write failed conversation_id=%s revision=%s: owed to the timer (%s)",
                state.conversation_id,
                state.revision,
                e,
            )
            return counts
        state.written_revision = state.revision
        counts.revisions_written += 1
        if state.revision == 1:
            counts.finalized += 1
        return counts

    def tick(self, limit: int = 1000) -> Counts:
        """The timer's work at `now`: finalize, expire, retry owed writes, purge."""
        now_ms = datetime_to_ms(self._clock.now())
        counts = Counts()
        for conversation_id in self._store.due(now_ms, limit):
            loaded = self._store.load(conversation_id)
            if loaded is None:
                continue
            state, etag = loaded
            try:
                if state.expired(now_ms, self._timing):
                    self._store.delete(conversation_id, etag)
                    counts.purged += 1
                    continue
                record = state.settle(now_ms, self._timing, applied_new=False)
                if record is None and state.written_revision < state.revision:
                    record = state.current_record()
                if record is not None:
                    counts.add(self._write_record(state, record))
                self._store.save(state, etag, state.next_deadline_ms(self._timing))
            except ConcurrencyConflict:
                # A batch got there first; it saw the same deadline and acted on it.
                log.info("timer conflict conversation_id=%s: skipped", conversation_id)
        return counts


@dataclass(slots=True)
class ParsedBatch:
    """A batch of deliveries parsed and grouped by conversation, not yet applied."""

    deliveries: int = 0
    payloads: int = 0
    micro_events: int = 0
    max_timestamp_ms: int | None = None
    rejections: list[tuple[Delivery, Rejection]] = field(default_factory=list)
    touches: dict[str, _Touch] = field(default_factory=dict)


def parse_batch(deliveries: Sequence[Delivery]) -> ParsedBatch:
    """Parse every delivery and group its micro-events by conversation, keeping positions."""
    batch = ParsedBatch(deliveries=len(deliveries))
    for delivery in deliveries:
        parsed = parse_delivery(delivery.body)
        batch.payloads += parsed.payload_count
        batch.micro_events += len(parsed.events)
        batch.rejections.extend((delivery, rejection) for rejection in parsed.rejections)
        for conversation_id, events in _by_conversation(parsed.events).items():
            touch = batch.touches.setdefault(conversation_id, _Touch(conversation_id))
            touch.parts.append((delivery.position, events))
        if parsed.events:
            latest = max(event.timestamp_ms for event in parsed.events)
            if batch.max_timestamp_ms is None or latest > batch.max_timestamp_ms:
                batch.max_timestamp_ms = latest
    return batch


def _by_conversation(events: list[MicroEvent]) -> dict[str, list[MicroEvent]]:
    grouped: dict[str, list[MicroEvent]] = {}
    for event in events:
        grouped.setdefault(event.conversation_id, []).append(event)
    return grouped
