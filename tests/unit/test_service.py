"""The batch service over the in-memory twins: revisions, late data, redelivery, the timer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from tests.unit.builders import T0, Step, envelope
from transform.service import Delivery, TransformService
from transform.state import SourcePosition, Timing


class Harness:
    """A service over in-memory storage with a clock the test moves."""

    def __init__(self, timing: Timing | None = None) -> None:
        self.store = InMemoryStateStore()
        self.records = InMemoryRecordSink()
        self.dead = InMemoryDeadLetterSink()
        self.clock = ManualClock(T0)
        self.service = TransformService(self.store, self.records, self.dead, self.clock, timing)
        self.sequence = 0

    def send(self, *payloads: object, position: SourcePosition | None = None) -> Any:
        deliveries = [Delivery(orjson.dumps(p), position) for p in payloads]
        return self.service.process(deliveries)

    def move(self, seconds: float) -> None:
        self.clock.set(self.clock.now() + timedelta(seconds=seconds))

    def record(self, conversation_id: str) -> dict[str, Any]:
        return self.records.records[conversation_id]


CALL = [
    envelope(
        "c1",
        10,
        [
            Step("conversation:state", 0, {"status": "connected"}),
            Step("conversation:state", 8, {"status": "disconnected"}),
        ],
    ),
]
LATE_WRAP_UP = envelope("c1", 300, [Step("agent:wrapup", 200, {"wrapUpCode": "LATE"})])


def test_grace_period_then_late_event_makes_a_new_revision() -> None:
    h = Harness()
    h.send(*CALL)
    assert h.records.records == {}
    h.move(59)
    h.service.tick()
    assert h.records.records == {}, "finalized before the grace period ran out"
    h.move(1)
    h.service.tick()
    assert h.record("c1")["revision"] == 1
    assert h.record("c1")["wrap_up_code"] is None

    h.move(100)
    h.send(LATE_WRAP_UP)
    late = h.record("c1")
    assert (late["revision"], late["wrap_up_code"], late["late_event_count"]) == (2, "LATE", 1)

    writes = h.records.writes
    h.send(LATE_WRAP_UP, *CALL)  # duplicates only
    assert h.records.writes == writes, "duplicates must never rewrite a record"
    assert h.record("c1")["duplicate_count"] == 0, "the record keeps counts as of its write"


def test_wrap_up_before_disconnect_does_not_finalize_early() -> None:
    h = Harness()
    h.send(envelope("c2", 50, [Step("agent:wrapup", 40, {"wrapUpCode": "W"})]))
    h.move(3600)
    h.service.tick()
    assert "c2" not in h.records.records


def test_idle_conversation_expires_as_partial_and_state_is_purged_after_retention() -> None:
    timing = Timing(grace_ms=1000, idle_ms=10_000, retention_ms=50_000)
    h = Harness(timing)
    h.send(envelope("idle", 1, [Step("conversation:state", 0, {"status": "connected"})]))
    h.move(9.9)
    h.service.tick()
    assert "idle" not in h.records.records
    h.move(0.1)
    h.service.tick()
    assert (h.record("idle")["status"], h.record("idle")["finalized_reason"]) == (
        "partial",
        "idle-timeout",
    )
    assert len(h.store) == 1
    h.move(50)
    counts = h.service.tick()
    assert counts.purged == 1
    assert len(h.store) == 0


def test_redelivered_event_hub_batch_is_not_counted_as_duplicates() -> None:
    h = Harness()
    position = SourcePosition("0", sequence_number=7, enqueued_ms=1000)
    first = h.send(*CALL, position=position)
    again = h.send(*CALL, position=position)
    assert (first.applied, first.duplicates) == (2, 0)
    assert (again.applied, again.duplicates, again.redelivered) == (0, 0, 2)
    resent = h.send(*CALL, position=SourcePosition("0", 8, 1001))
    assert resent.duplicates == 2, "a source resend is a real duplicate"


def test_failed_record_write_is_owed_and_written_by_the_timer() -> None:
    h = Harness(Timing(grace_ms=0))

    class Flaky(InMemoryRecordSink):
        fail = True

        def write(self, record: dict[str, Any]) -> None:
            if self.fail:
                from transform.errors import StorageUnavailable

                raise StorageUnavailable("blob down")
            InMemoryRecordSink.write(self, record)

    flaky = Flaky()
    h.service = TransformService(h.store, flaky, h.dead, h.clock, Timing(grace_ms=0))
    counts = h.send(*CALL)
    assert counts.records_owed == 1
    flaky.fail = False
    h.service.tick()
    assert flaky.records["c1"]["revision"] == 1


def test_dead_letters_keep_raw_bytes_and_are_idempotent_by_position() -> None:
    h = Harness()
    bad = Delivery(b"\xff\xfe not json", source={"partition": "1", "sequence_number": 5})
    h.service.process([bad])
    h.service.process([bad])
    (letter,) = h.dead.letters.values()
    assert letter.reason == "invalid-json"
    assert letter.raw_encoding == "base64"
    assert letter.stage == "transform"


class FoldMachine(RuleBasedStateMachine):
    """Drive the service with random deliveries, duplicates and clock moves; check a naive model."""

    def __init__(self) -> None:
        super().__init__()
        self.h = Harness(Timing(grace_ms=5000, idle_ms=60_000))
        self.pool = [
            envelope("m", float(n), [Step("conversation:state", n, {"status": status})])
            for n, status in enumerate(["connected", "onhold", "connected", "disconnected"])
        ] + [envelope("m", 10.0, [Step("agent:wrapup", 9, {"wrapUpCode": "X"})])]
        self.delivered: set[int] = set()
        self.duplicates = 0
        self.revisions: list[int] = []

    @rule(index=st.integers(min_value=0, max_value=4))
    def deliver(self, index: int) -> None:
        if index in self.delivered:
            self.duplicates += 1
        self.delivered.add(index)
        self.h.send(self.pool[index])
        self._note_revision()

    @rule(seconds=st.sampled_from([1, 4, 6, 30, 61]))
    def wait_and_tick(self, seconds: int) -> None:
        self.h.move(seconds)
        self.h.service.tick()
        self._note_revision()

    def _note_revision(self) -> None:
        record = self.h.records.records.get("m")
        if record is not None and (not self.revisions or self.revisions[-1] != record["revision"]):
            self.revisions.append(record["revision"])

    @invariant()
    def revisions_go_up_by_one(self) -> None:
        assert self.revisions == list(range(1, len(self.revisions) + 1))

    @invariant()
    def state_matches_the_naive_model(self) -> None:
        loaded = self.h.store.load("m")
        if loaded is None:
            assert not self.delivered
            return
        state, _ = loaded
        assert len(state.events) == len(self.delivered)
        assert state.duplicate_count == self.duplicates

    @precondition(lambda self: bool(self.delivered))
    @rule()
    def drain_and_compare(self) -> None:
        self.h.move(120)
        self.h.service.tick()
        record = self.h.record("m")
        assert record["event_count"] == len(self.delivered)
        ended = 3 in self.delivered
        assert record["status"] == ("final" if ended else "partial")
        self._note_revision()


TestFoldMachine = FoldMachine.TestCase
TestFoldMachine.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_replay_is_deterministic_to_the_byte(tmp_path: Any, batch_size: int) -> None:
    from pathlib import Path

    from transform.__main__ import replay_command

    sample = Path(__file__).parents[1] / "data" / "sample_deliveries.jsonl"
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        replay_command(sample, out, batch_size=batch_size)
        files = sorted(p for p in out.rglob("*") if p.is_file())
        outputs.append({p.relative_to(out).as_posix(): p.read_bytes() for p in files})
    assert outputs[0] == outputs[1]
    assert "conversations/chat%2F42%23x.json" in outputs[0]
    assert len(outputs[0]["deadletter.jsonl"].splitlines()) == 2


def test_an_empty_array_is_a_dead_letter_not_silence() -> None:
    h = Harness()
    counts = h.service.process([Delivery(b"[]", source={"line": 1})])
    assert counts.dead_letters == 1
    (letter,) = h.dead.letters.values()
    assert (letter.reason, letter.raw) == ("empty", "[]")
