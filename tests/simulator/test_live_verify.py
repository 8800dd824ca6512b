"""`verify` on what the live pipeline writes: ingest and transform dead letters, sender retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from simulator.send.delivery import Attempt, Outcome
from simulator.send.sendlog import allowances, micro_events_by_conversation, read_log, write_log
from simulator.verify.dead_letters import match_dead_letters
from simulator.verify.expected import ExpectedDeadLetter, load_expected
from simulator.verify.sources import Found, OfflineReplaySource
from simulator.verify.verdict import Allowances
from simulator.verify.verdict import verify as verify_dataset
from tests.simulator.fake_replay import edit_record, write_replay


def ingest_letter(line: int | None, raw: str, letter_id: str = "ingest-1") -> dict[str, Any]:
    """As ingest stores it: headers instead of a line, the request id naming the line."""
    headers = {"content-type": "application/json"}
    if line is not None:
        headers["x-request-id"] = f"simulator-line-{line}"
    return {
        "id": letter_id,
        "stage": "ingest",
        "reason": "invalid-json",
        "error": "x",
        "received_at": "2026-11-24T08:00:00.000Z",
        "source": {"headers": headers, "body_sha256": "0" * 64},
        "raw": raw,
        "raw_encoding": "utf-8",
    }


def transform_letter(sequence: int, raw: str) -> dict[str, Any]:
    return {
        "id": f"transform-{sequence}",
        "stage": "transform",
        "reason": "invalid-micro-event",
        "error": "x",
        "received_at": "2026-11-24T08:00:00.000Z",
        "source": {"partition": "0", "sequence_number": sequence, "offset": str(sequence)},
        "raw": raw,
        "raw_encoding": "utf-8",
    }


def want(line: int, text: str, value: Any = None, element: int | None = None) -> ExpectedDeadLetter:
    return ExpectedDeadLetter(line, element, "not-object", "", "sim-malformed-x", text, value)


def test_ingest_letters_pair_by_request_id_and_identical_bodies_share_one() -> None:
    # Two lines both `false`: ingest names letters after the body hash, so one letter serves both.
    wanted = [want(3, "false"), want(9, "false"), want(12, '"x"')]
    found = [
        Found("a", ingest_letter(9, "false")),
        Found("b", ingest_letter(None, '"x"', "ingest-2")),
    ]
    outcome = match_dead_letters(wanted, found)
    assert outcome.ok and len(outcome.matched) == 3
    assert {w.line: where for w, where in outcome.matched} == {9: "a", 12: "b", 3: "a"}


def test_transform_letters_repeat_only_as_often_as_the_line_was_resent() -> None:
    element = {"data": {"id": "c1"}, "simMarker": "m"}
    text = orjson.dumps(element).decode()
    wanted = [ExpectedDeadLetter(5, 0, "bad-detail", "", "m", text, element)]
    copies = [Found(f"t{n}", transform_letter(n, text)) for n in range(3)]
    strict = match_dead_letters(wanted, copies)
    assert len(strict.unexpected) == 2 and not strict.ok
    allowed = match_dead_letters(wanted, copies, {5: 1})
    assert len(allowed.copies) == 1 and len(allowed.unexpected) == 1
    enough = match_dead_letters(wanted, copies, {5: 4})
    assert enough.ok and len(enough.copies) == 2
    # Copies of a transform letter never stand in for a second expected line.
    twice = [*wanted, ExpectedDeadLetter(6, 0, "bad-detail", "", "m", text, element)]
    assert len(match_dead_letters(twice, copies[:1]).missing) == 1


@pytest.fixture
def chaos_dir(written: dict[str, Path]) -> Path:
    return written["chaos"]


def test_duplicates_from_retries_widen_the_bound_of_their_conversation(
    chaos_dir: Path, tmp_path: Path
) -> None:
    replay = write_replay(chaos_dir, tmp_path / "replay")
    expected = load_expected(chaos_dir)
    cid, truth = next(iter(expected.truth.items()))
    edit_record(replay, cid, duplicate_count=truth["duplicate_count"] + 3)
    source = OfflineReplaySource(replay)
    assert not verify_dataset(expected, source).ok
    assert not verify_dataset(expected, source, allowances=Allowances({cid: 2})).ok
    assert verify_dataset(expected, source, allowances=Allowances({cid: 3})).ok
    assert not verify_dataset(expected, source, allowances=Allowances({"other": 9})).ok


def outcome(line: int, statuses: list[int | None]) -> Outcome:
    tries = tuple(Attempt(s, 1000.0 + i, 5.0) for i, s in enumerate(statuses))
    last = statuses[-1]
    return Outcome(
        line, last == 200, last, len(tries), 5.0, None, tries, last is None or last >= 500, 999.0
    )


def test_allowances_come_from_resent_lines(tmp_path: Path) -> None:
    deliveries = tmp_path / "deliveries.jsonl"
    envelope = {"data": {"id": "a", "details": [{}, {}, {}]}, "id": "e"}
    notification = {"topicName": "t", "eventBody": {"conversationId": "b"}}
    deliveries.write_bytes(
        orjson.dumps([envelope, notification]) + b"\n" + orjson.dumps(envelope) + b"\nnot json\n"
    )
    outcomes = [outcome(1, [None, 503, 200]), outcome(2, [200]), outcome(3, [503, 400])]
    found = allowances(deliveries, outcomes)
    assert dict(found.duplicates) == {"a": 6, "b": 2}
    assert dict(found.letter_copies) == {1: 2, 3: 1}
    assert allowances(deliveries, [outcome(2, [200])]) == Allowances()
    # A line given up on: its conversations are the route's loss, its letters may not exist.
    lost = allowances(deliveries, [outcome(2, [503, 503])])
    assert (dict(lost.duplicates), dict(lost.letter_copies)) == ({"a": 3}, {2: 1})
    assert (dict(lost.undelivered), lost.undelivered_lines) == ({"a": 1}, frozenset({2}))
    assert micro_events_by_conversation(b"[1, {}]") == {}


def test_the_send_log_round_trips(tmp_path: Path) -> None:
    outcomes = [outcome(1, [None, 503, 200]), outcome(2, [200])]
    write_log(tmp_path / "send.jsonl", outcomes)
    assert read_log(tmp_path / "send.jsonl") == outcomes
