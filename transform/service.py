"""The batch service: the one piece of logic the offline replay and the Event Hub function share.

`process` takes a batch of raw deliveries and leaves, for each conversation it touched, state
saved with its ETag and any owed record written; `tick` is the timer's half (grace periods run
out, idle conversations expire, owed writes are retried, old state is purged). Phone numbers
are kept, pseudonymized or dropped (`RECORD_PII`, `transform.pii`) as a parsed batch is applied,
before any of it reaches the state or a record; dead letters keep the raw bytes.

Effects are exactly-once on at-least-once delivery. A new revision is first committed to the
state as owed (with the events that make it), then written to the record store, then marked
written: the ETag-checked commit decides which writer owns a revision, so a writer holding
stale state never writes a record, and a crash after the commit leaves the revision owed, due
at once, and rewritten identically by the timer (the record derives from the committed state).
Event Hubs redeliveries are recognised by per-partition watermarks and skipped without
counting as duplicates, and dead letters have ids derived from their position, so writing one
twice keeps one.

Failure policy (`process_batch`). The Event Hubs host checkpoints a batch after the invocation
even when it raises, except while a retry policy is still retrying. So unparseable input
becomes a dead letter, never an exception; a transient storage failure (or state that keeps
changing under us) raises while attempts remain, and the rerun recognises the effects already
made; on the last attempt the batch is applied delivery by delivery and whatever still fails
is parked whole as a dead letter (`transient-failure-parked`, with its position), so nothing
is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from schemas.micro_event import MicroEvent
from schemas.timestamps import datetime_to_ms
from transform.deadletters import make_dead_letter, whole_delivery_letter
from transform.errors import ConcurrencyConflict, StorageUnavailable, TransformError
from transform.media import ALL_MEDIA, MediaFilter
from transform.normalize import Rejection, parse_delivery
from transform.pii import PiiPolicy
from transform.ports import Clock, DeadLetterSink, Delete, Put, RecordSink, StateChange, StateStore
from transform.state import ConversationState, SourcePosition, Timing

log = logging.getLogger(__name__)

MAX_CONFLICT_ATTEMPTS = 5
STATE_TOO_LARGE = "state-too-large"
PARKED_REASON = "transient-failure-parked"
TRANSIENT = (StorageUnavailable, ConcurrencyConflict)
FAILURES_BEFORE_PARKING_ALL = 3
"""On the last attempt, after this many deliveries in a row failed, the rest are parked unread."""
PARK_WRITE_ATTEMPTS = 5


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
    due: int = 0
    """Timer candidates examined."""
    heartbeats: int = 0
    """Notifications API heartbeats among the payloads: skipped (ingest answers them itself)."""
    filtered_conversations: int = 0
    """Conversations the media filter set aside instead of writing (INGEST_MEDIA_TYPES)."""
    filtered_events: int = 0
    """Their distinct micro-events: those held when set aside, and those applied since."""

    def add(self, other: Counts) -> None:
        """Accumulate another report into this one."""
        for name in _COUNT_NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        """For logs and metrics."""
        return {name: getattr(self, name) for name in _COUNT_NAMES}


_COUNT_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Counts))


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What `process_batch` did: the counts, and how many deliveries it parked."""

    counts: Counts
    parked: int = 0


@dataclass(frozen=True, slots=True)
class TimerOutcome:
    """What `run_timer` did: the counts and the rounds (stopping with more due is logged)."""

    counts: Counts
    rounds: int


@dataclass(slots=True)
class _Touch:
    """A conversation's share of one batch."""

    conversation_id: str
    parts: list[tuple[SourcePosition | None, list[MicroEvent]]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)


@dataclass(slots=True)
class _Tally:
    """What applying one conversation's share did; counted only once its commit succeeds."""

    applied: int = 0
    duplicates: int = 0
    redelivered: int = 0
    filtered_conversations: int = 0
    filtered_events: int = 0

    def add_to(self, counts: Counts) -> None:
        """Count this conversation and what it applied."""
        counts.conversations += 1
        counts.applied += self.applied
        counts.duplicates += self.duplicates
        counts.redelivered += self.redelivered
        self.add_filtered_to(counts)

    def add_filtered_to(self, counts: Counts) -> None:
        """Count what the media filter set aside."""
        counts.filtered_conversations += self.filtered_conversations
        counts.filtered_events += self.filtered_events


@dataclass(slots=True)
class _Pending:
    """A conversation's new state, ready to commit, and the revision it owes (if any)."""

    state: ConversationState
    etag: str | None
    record: dict[str, Any] | None
    tally: _Tally
    touch: _Touch | None = None


class TransformService:
    """Applies batches of deliveries to per-conversation state and writes what is owed."""

    def __init__(
        self,
        store: StateStore,
        records: RecordSink,
        dead_letters: DeadLetterSink,
        clock: Clock,
        timing: Timing | None = None,
        *,
        sleep: Callable[[float], None] | None = None,
        pii: PiiPolicy | None = None,
        media: MediaFilter = ALL_MEDIA,
    ) -> None:
        """`sleep` waits between tries of a parking write (None: retry at once, for tests);
        `pii` is what becomes of phone numbers before anything is stored (None: kept);
        `media` is the media-type filter (INGEST_MEDIA_TYPES; default: every media type)."""
        self._store = store
        self._records = records
        self._dead_letters = dead_letters
        self._clock = clock
        self._timing = timing or Timing()
        self._sleep = sleep
        self._pii = pii or PiiPolicy()
        self._media = media

    @property
    def timing(self) -> Timing:
        """The grace, idle and retention periods in force."""
        return self._timing

    @property
    def media(self) -> MediaFilter:
        """The media-type filter in force."""
        return self._media

    def _settle(
        self, state: ConversationState, now_ms: int, tally: _Tally, *, applied_new: bool
    ) -> dict[str, Any] | None:
        """`state.settle` with the filter in force; what it sets aside goes into `tally`."""
        set_aside = state.filtered_at_ms is not None
        record = state.settle(now_ms, self._timing, applied_new=applied_new, media=self._media)
        if state.filtered_at_ms is not None:
            if set_aside:
                tally.filtered_events += tally.applied
            else:
                tally.filtered_conversations += 1
                tally.filtered_events += len(state.events)
                log.debug(
                    "conversation set aside by the media filter conversation_id=%s events=%s "
                    "media_types=%s",
                    state.conversation_id[:200],
                    len(state.events),
                    self._media.describe(),
                )
        return record

    def process(self, deliveries: Sequence[Delivery]) -> Counts:
        """Apply a batch; raises only for transient storage failures (retry the batch)."""
        return self.apply(parse_batch(deliveries))

    def process_batch(self, deliveries: Sequence[Delivery], *, last_attempt: bool) -> BatchOutcome:
        """Apply a batch; raise while attempts remain, park what fails on the last one."""
        try:
            return BatchOutcome(self.process(deliveries))
        except Exception as e:  # transient storage trouble, or a defect some input triggers
            if not isinstance(e, TRANSIENT):
                log.exception("transform batch raised a non-transient error %s", where(deliveries))
            if not last_attempt:
                raise
            log.error(
                "transform batch failed on its last attempt %s error=%s: applying one by one",
                where(deliveries),
                e,
            )
            return self._apply_or_park(deliveries, e)

    def _apply_or_park(
        self, deliveries: Sequence[Delivery], first_error: Exception
    ) -> BatchOutcome:
        """Apply each delivery on its own; park the ones that fail, and the rest once hopeless."""
        counts = Counts()
        parked = 0
        failures = 0
        error: Exception = first_error
        for delivery in deliveries:
            if failures < FAILURES_BEFORE_PARKING_ALL:
                try:
                    counts.add(self.process([delivery]))
                    failures = 0
                    continue
                except Exception as e:  # the host checkpoints past whatever is not parked here
                    failures += 1
                    error = e
            self.park(delivery, error)
            counts.deliveries += 1
            counts.dead_letters += 1
            parked += 1
        return BatchOutcome(counts, parked)

    def park(self, delivery: Delivery, error: Exception) -> None:
        """Keep a delivery whole as a dead letter; raises only if even that keeps failing."""
        letter = whole_delivery_letter(
            delivery.body,
            delivery.source,
            reason=PARKED_REASON,
            error=f"{type(error).__name__}: {str(error)[:500]}",
            received_at_ms=datetime_to_ms(self._clock.now()),
        )
        source = delivery.source
        for attempt in range(PARK_WRITE_ATTEMPTS):
            try:
                self._dead_letters.write(letter)
                break
            except StorageUnavailable as e:
                if attempt == PARK_WRITE_ATTEMPTS - 1:
                    # Nowhere left to put it: the positions let an operator replay from the hub.
                    log.critical(
                        "parking failed, delivery lost to the pipeline partition=%s sequence=%s "
                        "offset=%s error=%s",
                        source.get("partition"),
                        source.get("sequence_number"),
                        source.get("offset"),
                        e,
                    )
                    raise
                if self._sleep is not None:
                    self._sleep(2**attempt)
        log.warning(
            "dead letter stage=transform reason=%s partition=%s sequence=%s offset=%s error=%s",
            PARKED_REASON,
            source.get("partition"),
            source.get("sequence_number"),
            source.get("offset"),
            letter.error[:200],
        )

    def run_timer(
        self, batch: int, max_seconds: float, monotonic: Callable[[], float]
    ) -> TimerOutcome:
        """Tick in rounds of `batch` until a round comes back short or `max_seconds` pass."""
        started = monotonic()
        total = Counts()
        rounds = 0
        while True:
            step = self.tick(limit=batch)
            total.add(step)
            rounds += 1
            if step.due < batch:
                return TimerOutcome(total, rounds)
            if monotonic() - started > max_seconds:
                log.warning("transform timer stopped early rounds=%s: more is due", rounds)
                return TimerOutcome(total, rounds)

    def apply(self, batch: ParsedBatch) -> Counts:
        """Apply an already parsed batch at the clock's current time."""
        batch = protect_batch(batch, self._pii)  # before anything of it is stored
        now_ms = datetime_to_ms(self._clock.now())
        counts = Counts(
            deliveries=batch.deliveries,
            payloads=batch.payloads,
            micro_events=batch.micro_events,
            heartbeats=batch.heartbeats,
        )
        for delivery, rejection in batch.rejections:
            self._dead_letter(delivery, rejection, now_ms)
            counts.dead_letters += 1
        touches = list(batch.touches.values())
        for attempt in range(MAX_CONFLICT_ATTEMPTS):
            pending: list[_Pending] = []
            for touch in touches:
                prepared = self._prepare(touch, now_ms, presume_absent=attempt == 0)
                if prepared.touch is None:
                    prepared.tally.add_to(counts)
                else:
                    pending.append(prepared)
            touches = self._commit(pending, now_ms, counts)
            if not touches:
                return counts
        ids = ", ".join(repr(t.conversation_id) for t in touches[:5])
        raise ConcurrencyConflict(
            f"conversations {ids}: state changed under us {MAX_CONFLICT_ATTEMPTS} times in a "
            "row; retry the batch"
        )

    def _dead_letter(self, delivery: Delivery, rejection: Rejection, now_ms: int) -> None:
        self._dead_letters.write(
            make_dead_letter(
                rejection, stage="transform", source=delivery.source, received_at_ms=now_ms
            )
        )
        log.warning(
            "dead letter stage=transform reason=%s source=%s error=%s",
            rejection.reason,
            delivery.source,
            rejection.error[:200],
        )

    def _prepare(self, touch: _Touch, now_ms: int, *, presume_absent: bool) -> _Pending:
        """Load and apply one conversation's share; `touch` is None when nothing changed."""
        tally = _Tally()
        loaded = self._store.load(touch.conversation_id, presume_absent=presume_absent)
        state, etag = loaded if loaded else (ConversationState(touch.conversation_id), None)
        changed = False
        for position, events in touch.parts:
            if state.already_applied(position):
                tally.redelivered += len(events)
                continue
            changed = True
            for event in events:
                if state.add(event, now_ms):
                    tally.applied += 1
                else:
                    tally.duplicates += 1
            state.note_position(position)
        if not changed:
            return _Pending(state, etag, None, tally)
        record = self._settle(state, now_ms, tally, applied_new=tally.applied > 0)
        return _Pending(state, etag, record, tally, touch)

    def _commit(self, pending: list[_Pending], now_ms: int, counts: Counts) -> list[_Touch]:
        """Commit prepared states, write what they owe; returns the touches to re-apply."""
        if not pending:
            return []
        changes: list[StateChange] = [
            Put(p.state, p.etag, p.state.next_deadline_ms(self._timing)) for p in pending
        ]
        result = self._store.commit(changes, now_ms)
        retry: list[_Touch] = []
        written: list[_Pending] = []
        for p in pending:
            assert p.touch is not None
            conversation_id = p.state.conversation_id
            if conversation_id in result.conflicts:
                log.info("state conflict conversation_id=%s: reload and re-apply", conversation_id)
                counts.conflicts += 1
                retry.append(p.touch)
            elif conversation_id in result.too_large:
                counts.dead_letters += self._park_too_large(p.touch, now_ms)
            else:
                p.tally.add_to(counts)
                p.etag = result.etags[conversation_id]
                written.append(p)
        counts.add(self._write_owed(written, now_ms))
        return retry

    def _park_too_large(self, touch: _Touch, now_ms: int) -> int:
        """A conversation that cannot grow: its deliveries become dead letters, kept whole."""
        for delivery in touch.deliveries:
            letter = whole_delivery_letter(
                delivery.body,
                delivery.source,
                reason=STATE_TOO_LARGE,
                error=f"conversation {touch.conversation_id[:200]!r} outgrew the state store",
                received_at_ms=now_ms,
            )
            self._dead_letters.write(letter)
            log.error(
                "dead letter stage=transform reason=%s conversation_id=%s source=%s",
                STATE_TOO_LARGE,
                touch.conversation_id[:200],
                delivery.source,
            )
        return len(touch.deliveries)

    def _write_owed(self, committed: list[_Pending], now_ms: int) -> Counts:
        """Write the revisions just committed as owed, then mark them written."""
        counts = Counts()
        marks: list[StateChange] = []
        for p in committed:
            if p.record is None:
                continue
            if self._write_record(p.state, p.record, counts):
                assert p.etag is not None
                marks.append(Put(p.state, p.etag, p.state.next_deadline_ms(self._timing)))
        if not marks:
            return counts
        try:
            result = self._store.commit(marks, now_ms)
        except StorageUnavailable as e:
            # The records are written; the states still call them owed, so the timer rewrites
            # the same revisions later. Harmless, and no reason to fail the batch.
            log.warning("marking %s records written failed: owed to the timer (%s)", len(marks), e)
            return counts
        for conversation_id in result.conflicts:
            log.info("mark conflict conversation_id=%s: left owed", conversation_id)
        return counts

    def _write_record(
        self, state: ConversationState, record: dict[str, Any], counts: Counts
    ) -> bool:
        """Write one committed revision; on failure the state keeps it owed."""
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
            return False
        state.written_revision = state.revision
        counts.revisions_written += 1
        if state.revision == 1:
            counts.finalized += 1
        return True

    def tick(self, limit: int = 1000) -> Counts:
        """The timer's work at `now`: finalize, expire, retry owed writes, purge."""
        now_ms = datetime_to_ms(self._clock.now())
        counts = Counts()
        changes: list[StateChange] = []
        pending: dict[str, _Pending] = {}
        for conversation_id in self._store.due(now_ms, limit):
            counts.due += 1
            loaded = self._store.load(conversation_id)
            if loaded is None:
                continue
            state, etag = loaded
            if state.expired(now_ms, self._timing):
                changes.append(Delete(conversation_id, etag))
                continue
            if state.next_deadline_ms(self._timing) <= now_ms:
                tally = _Tally()
                record = self._settle(state, now_ms, tally, applied_new=False)
                if record is None and state.written_revision < state.revision:
                    record = state.current_record()
                pending[conversation_id] = _Pending(state, etag, record, tally)
            # A candidate not due yet is put back too: that moves its index entry to its deadline.
            changes.append(Put(state, etag, state.next_deadline_ms(self._timing)))
        if not changes:
            return counts
        result = self._store.commit(changes, now_ms)
        counts.conflicts += len(result.conflicts)
        for conversation_id in sorted(result.conflicts):
            # A batch got there first; it saw the same deadline and acted on it.
            log.info("timer conflict conversation_id=%s: skipped", conversation_id)
        for conversation_id in sorted(result.too_large):
            log.error("timer: state too large conversation_id=%s: skipped", conversation_id)
        counts.purged += len(result.deleted)
        committed: list[_Pending] = []
        for conversation_id, p in pending.items():
            if conversation_id in result.etags:
                p.etag = result.etags[conversation_id]
                p.tally.add_filtered_to(counts)
                committed.append(p)
        counts.add(self._write_owed(committed, now_ms))
        return counts


@dataclass(slots=True)
class ParsedBatch:
    """A batch of deliveries parsed and grouped by conversation, not yet applied."""

    deliveries: int = 0
    payloads: int = 0
    micro_events: int = 0
    heartbeats: int = 0
    max_timestamp_ms: int | None = None
    rejections: list[tuple[Delivery, Rejection]] = field(default_factory=list)
    touches: dict[str, _Touch] = field(default_factory=dict)


def parse_batch(deliveries: Sequence[Delivery]) -> ParsedBatch:
    """Parse every delivery and group its micro-events by conversation, keeping positions."""
    batch = ParsedBatch(deliveries=len(deliveries))
    for delivery in deliveries:
        parsed = parse_delivery(delivery.body)
        batch.payloads += parsed.payload_count
        batch.heartbeats += parsed.heartbeats
        batch.micro_events += len(parsed.events)
        for rejection in parsed.rejections:
            batch.rejections.append((delivery, rejection))
        if not parsed.events:
            continue
        for conversation_id, events in _by_conversation(parsed.events).items():
            touch = batch.touches.get(conversation_id)
            if touch is None:
                touch = batch.touches[conversation_id] = _Touch(conversation_id)
            touch.parts.append((delivery.position, events))
            touch.deliveries.append(delivery)
        latest = max([event.timestamp_ms for event in parsed.events])
        if batch.max_timestamp_ms is None or latest > batch.max_timestamp_ms:
            batch.max_timestamp_ms = latest
    return batch


def protect_batch(batch: ParsedBatch, pii: PiiPolicy) -> ParsedBatch:
    """The batch with its phone numbers as `RECORD_PII` says (`transform.pii`); dead letters
    keep their raw bytes. With `keep` the batch itself, untouched."""
    if pii.keeps:
        return batch
    touches = {
        conversation_id: _Touch(
            conversation_id,
            [(position, pii.protect_events(events)) for position, events in touch.parts],
            touch.deliveries,
        )
        for conversation_id, touch in batch.touches.items()
    }
    return replace(batch, touches=touches)


def where(deliveries: Sequence[Delivery]) -> str:
    """`partition=… first_sequence=… last_sequence=… events=…` for log lines."""
    if not deliveries:
        return "partition=- events=0"
    first, last = deliveries[0].source, deliveries[-1].source
    return (
        f"partition={first.get('partition')} first_sequence={first.get('sequence_number')} "
        f"last_sequence={last.get('sequence_number')} events={len(deliveries)}"
    )


def _by_conversation(events: list[MicroEvent]) -> dict[str, list[MicroEvent]]:
    grouped: dict[str, list[MicroEvent]] = {}
    for event in events:
        grouped.setdefault(event.conversation_id, []).append(event)
    return grouped
