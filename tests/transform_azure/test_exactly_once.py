"""Exactly-once effects on Azurite: crash or fail at any write, redeliver, get the same result.

A stream of realistic deliveries (duplicates, reordering, late wrap-ups, a malformed line)
is applied in Event Hubs batches with the timer ticking after each. One run is clean; every
other run injects one fault at the k-th write of a kind (a state transaction, a record blob,
a dead letter), before or after the write reaches storage. A crash kills the "process" (fresh
adapters, empty caches) and the batch is redelivered, as the host does when no checkpoint was
taken; the end state must equal the clean run's: the same records (every field but the
processing times), the same dead letters, nothing owed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from adapters.memory import InMemoryRecordSink, InMemoryStateStore, ManualClock
from adapters.opcount import OperationCounter
from adapters.settings import TransformSettings, Tuning
from adapters.wiring import TransformRuntime
from functions.transform import consume
from schemas.timestamps import ms_to_datetime
from tests.transform_azure.conftest import AzureStorage
from tests.transform_azure.faults import (
    Crash,
    Faults,
    FaultyDeadLetters,
    FaultyRecords,
    FaultyStore,
    Kind,
    Phase,
)
from tests.transform_azure.realistic import Knobs, generate
from transform.errors import StorageUnavailable
from transform.normalize import parse_delivery
from transform.service import PARKED_REASON, Counts, Delivery, TransformService
from transform.state import SourcePosition, Timing

pytestmark = pytest.mark.stack

TIMING = Timing(grace_ms=60_000, idle_ms=15 * 60_000)
PROCESSING_TIMES = ("first_seen_at", "finalized_at")
MALFORMED = [b'{"not": "a payload"}', b"{broken json"]


@dataclass
class Stream:
    """Batches of positioned deliveries and the clock each is applied at."""

    batches: list[list[Delivery]]
    clocks: list[int]
    end_ms: int


def build_stream(conversations: int = 25, seed: int = 11, batch_size: int = 15) -> Stream:
    knobs = Knobs(late_wrapup_rate=0.3, duplicate_rate=0.1, reorder_rate=0.2)
    sent = generate(conversations, seed=seed, knobs=knobs)
    bodies = [s.body for s in sent]
    bodies.insert(len(bodies) // 3, MALFORMED[0])
    bodies.insert(2 * len(bodies) // 3, MALFORMED[1])
    deliveries = [
        Delivery(
            body,
            SourcePosition("0", n, 1_000_000 + n),
            {"partition": "0", "sequence_number": n, "offset": str(n * 100)},
        )
        for n, body in enumerate(bodies)
    ]
    batches = [deliveries[i : i + batch_size] for i in range(0, len(deliveries), batch_size)]
    clocks: list[int] = []
    now = 0
    for batch in batches:
        for delivery in batch:
            for event in parse_delivery(delivery.body).events:
                now = max(now, event.timestamp_ms)
        clocks.append(now)
    return Stream(batches, clocks, now + TIMING.idle_ms + TIMING.grace_ms + 1)


@dataclass
class Run:
    """A consumer "process" over the test's storage; `restart` replaces it as after a crash."""

    storage: AzureStorage
    faults: Faults
    clock: ManualClock
    service: TransformService = field(init=False)
    restarts: int = 0

    def __post_init__(self) -> None:
        self.restart(count=False)

    def restart(self, *, count: bool = True) -> None:
        store = self.storage.new_store(cls=FaultyStore)
        assert isinstance(store, FaultyStore)
        store.faults = self.faults
        records = self.storage.new_records(cls=FaultyRecords)
        assert isinstance(records, FaultyRecords)
        records.faults = self.faults
        letters = FaultyDeadLetters(self.storage.new_dead_letters(), self.faults)
        self.service = TransformService(store, records, letters, self.clock, TIMING)
        self.restarts += int(count)

    def until_done(self, step: Any) -> None:
        """Run `step` (a batch, a tick); on a crash restart and do it again."""
        for _ in range(5):
            try:
                step()
                return
            except Crash:
                self.restart()
        pytest.fail("kept crashing")

    def drain(self) -> None:
        while self.service.tick(limit=500).due >= 500:
            pass


def run_stream(storage: AzureStorage, stream: Stream, faults: Faults) -> Run:
    run = Run(storage, faults, ManualClock(ms_to_datetime(stream.clocks[0])))
    for batch, clock_ms in zip(stream.batches, stream.clocks, strict=True):
        run.clock.set(ms_to_datetime(clock_ms))
        run.until_done(lambda batch=batch: run.service.process(batch))
        run.until_done(run.drain)
    run.clock.set(ms_to_datetime(stream.end_ms))
    run.until_done(run.drain)
    return run


def observable(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        cid: {k: v for k, v in record.items() if k not in PROCESSING_TIMES}
        for cid, record in records.items()
    }


def nothing_owed(storage: AzureStorage, ids: list[str]) -> None:
    store = storage.new_store()
    for conversation_id in ids:
        loaded = store.load(conversation_id)
        assert loaded is not None
        assert loaded[0].written_revision == loaded[0].revision, conversation_id


@pytest.fixture(scope="module")
def stream() -> Stream:
    return build_stream()


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory, stream: Stream) -> dict[str, Any]:
    """The clean run's outcome, on the in-memory twins (same logic, same clock)."""
    from adapters.memory import InMemoryDeadLetterSink, InMemoryRecordSink, InMemoryStateStore

    records, letters = InMemoryRecordSink(), InMemoryDeadLetterSink()
    clock = ManualClock(ms_to_datetime(stream.clocks[0]))
    service = TransformService(InMemoryStateStore(), records, letters, clock, TIMING)
    for batch, clock_ms in zip(stream.batches, stream.clocks, strict=True):
        clock.set(ms_to_datetime(clock_ms))
        service.process(batch)
        while service.tick(limit=500).due >= 500:
            pass
    clock.set(ms_to_datetime(stream.end_ms))
    while service.tick(limit=500).due >= 500:
        pass
    return {"records": records.records, "letters": letters.letters}


def test_a_clean_run_on_azure_matches_the_twin(
    azure_storage: AzureStorage, stream: Stream, expected: dict[str, Any]
) -> None:
    run_stream(azure_storage, stream, Faults())
    got = azure_storage.records()
    assert got == expected["records"], "Azure adapters and twins must agree to the byte"
    assert len(got) >= 20
    assert any(r["revision"] > 1 for r in got.values()), "the stream should have late events"
    assert azure_storage.dead_letters() == expected["letters"]


FAULTS: list[tuple[Kind, int, Phase]] = [
    ("commit", 1, "before"),
    ("commit", 1, "after"),
    ("commit", 4, "after"),
    ("commit", 9, "before"),
    ("commit", 9, "after"),
    ("commit", 17, "after"),
    ("commit", 30, "after"),
    ("record", 1, "before"),
    ("record", 1, "after"),
    ("record", 6, "after"),
    ("record", 15, "before"),
    ("deadletter", 1, "after"),
    ("deadletter", 2, "before"),
]


@pytest.mark.parametrize("fault", FAULTS, ids=["-".join(map(str, f)) for f in FAULTS])
def test_a_crash_at_any_write_then_redelivery_ends_the_same(
    azure_storage: AzureStorage,
    stream: Stream,
    expected: dict[str, Any],
    fault: tuple[Kind, int, Phase],
) -> None:
    kind, at, phase = fault
    faults = Faults(kind=kind, at=at, phase=phase)
    run = run_stream(azure_storage, stream, faults)
    assert faults.fired and run.restarts == 1, f"the fault never fired: {faults.calls}"
    got = azure_storage.records()
    assert observable(got) == observable(expected["records"])
    assert azure_storage.dead_letters().keys() == expected["letters"].keys()
    nothing_owed(azure_storage, sorted(got))


@pytest.mark.parametrize(("kind", "at"), [("commit", 3), ("record", 2)])
def test_a_transient_failure_retried_in_process_ends_the_same(
    azure_storage: AzureStorage, stream: Stream, expected: dict[str, Any], kind: Kind, at: int
) -> None:
    faults = Faults(kind=kind, at=at, phase="after", error=StorageUnavailable)
    run = Run(azure_storage, faults, ManualClock(ms_to_datetime(stream.clocks[0])))
    for batch, clock_ms in zip(stream.batches, stream.clocks, strict=True):
        run.clock.set(ms_to_datetime(clock_ms))
        for _ in range(3):  # the retry policy: same process, same caches
            try:
                run.service.process(batch)
                break
            except StorageUnavailable:
                continue
        run.drain()
    run.clock.set(ms_to_datetime(stream.end_ms))
    run.drain()
    assert faults.fired
    assert observable(azure_storage.records()) == observable(expected["records"])


def test_the_last_attempt_parks_what_cannot_be_applied_and_loses_nothing(
    azure_storage: AzureStorage, stream: Stream, expected: dict[str, Any]
) -> None:
    faults = Faults()
    run = Run(azure_storage, faults, ManualClock(ms_to_datetime(stream.clocks[0])))
    runtime = TransformRuntime(
        settings=TransformSettings.from_env({"StateStorage": azure_storage.connection_string}),
        tuning=Tuning(),
        service=run.service,
        store=run.service._store,
        records=run.service._records,
        dead_letters=run.service._dead_letters,
        counter=OperationCounter(),
    )
    outage = 3
    parked_bodies: list[bytes] = []
    for number, (batch, clock_ms) in enumerate(zip(stream.batches, stream.clocks, strict=True)):
        run.clock.set(ms_to_datetime(clock_ms))
        if number != outage:
            consume(runtime, batch, attempt=0, last_attempt=False)
            run.drain()
            continue
        faults.down.add("commit")
        with pytest.raises(StorageUnavailable):
            consume(runtime, batch, attempt=0, last_attempt=False)
        counts = consume(runtime, batch, attempt=5, last_attempt=True)
        faults.down.clear()
        letters = [
            letter
            for letter in azure_storage.dead_letters().values()
            if letter.reason == PARKED_REASON
        ]
        assert counts.dead_letters >= len(letters) == len(batch)
        for letter in letters:
            assert letter.source.partition == "0"
            assert letter.source.sequence_number is not None
            assert letter.source.offset == str(letter.source.sequence_number * 100)
            assert letter.raw.encode() == batch[letter.source.sequence_number % len(batch)].body
        parked_bodies = [letter.raw.encode() for letter in letters]
        assert isinstance(counts, Counts)
    # An operator replays the parked letters later (new positions, e.g. through ingest).
    replayed = [
        Delivery(body, SourcePosition("9", n, n), {"partition": "9", "sequence_number": n})
        for n, body in enumerate(parked_bodies)
    ]
    run.clock.set(ms_to_datetime(stream.end_ms - TIMING.idle_ms))
    consume(runtime, replayed, attempt=0, last_attempt=False)
    run.clock.set(ms_to_datetime(stream.end_ms))
    run.drain()
    got, want = observable(azure_storage.records()), observable(expected["records"])
    assert got.keys() == want.keys()
    for cid in want:
        # Parked events arrive late, so these two may differ; nothing else may.
        for field_name in ("revision", "late_event_count"):
            got[cid].pop(field_name)
            want[cid].pop(field_name)
    assert got == want


def test_parked_letters_round_trip_their_bytes() -> None:
    class Sink:
        def __init__(self) -> None:
            self.letters: list[Any] = []

        def write(self, letter: Any) -> None:
            self.letters.append(letter)

    body = b"\xff\xfe binary \x00"
    source = {"partition": "2", "sequence_number": 7, "offset": "8800"}
    sink = Sink()
    service = TransformService(
        InMemoryStateStore(), InMemoryRecordSink(), sink, ManualClock(ms_to_datetime(0))
    )
    service.park(Delivery(body, None, source), StorageUnavailable("down"))
    (letter,) = sink.letters
    assert (letter.reason, letter.raw_encoding) == (PARKED_REASON, "base64")
    import base64

    assert base64.b64decode(letter.raw) == body
    assert orjson.loads(letter.model_dump_json())["source"]["offset"] == "8800"
    assert datetime.fromisoformat(letter.received_at.replace("Z", "+00:00")).tzinfo == UTC


def test_two_instances_sharing_a_partition_end_the_same(
    azure_storage: AzureStorage, stream: Stream, expected: dict[str, Any]
) -> None:
    """A partition handed back and forth, both instances ticking: stale caches, conflicts."""
    clock = ManualClock(ms_to_datetime(stream.clocks[0]))
    a, b = Run(azure_storage, Faults(), clock), Run(azure_storage, Faults(), clock)
    conflicts = 0
    for number, (batch, clock_ms) in enumerate(zip(stream.batches, stream.clocks, strict=True)):
        clock.set(ms_to_datetime(clock_ms))
        owner, other = (a, b) if (number // 3) % 2 == 0 else (b, a)
        conflicts += owner.service.process(batch).conflicts
        if number % 3 == 0:  # the previous owner still had the batch in flight
            conflicts += other.service.process(batch).conflicts
        for run in (other, owner):
            while True:
                step = run.service.tick(limit=500)
                conflicts += step.conflicts
                if step.due < 500:
                    break
    clock.set(ms_to_datetime(stream.end_ms))
    a.drain()
    b.drain()
    assert conflicts > 0, "the handovers should have met stale caches"
    assert observable(azure_storage.records()) == observable(expected["records"])
    nothing_owed(azure_storage, sorted(expected["records"]))
