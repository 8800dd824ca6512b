"""`verify` finds every kind of discrepancy, and passes a perfect pipeline."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulator.errors import InputError
from simulator.verify.dead_letters import match_dead_letters
from simulator.verify.expected import load_expected
from simulator.verify.sources import Found, OfflineReplaySource
from simulator.verify.verdict import Allowances, Report, verify
from tests.simulator.fake_replay import dead_letter, edit_record, write_replay


@pytest.fixture
def chaos_dir(written: dict[str, Path]) -> Path:
    return written["chaos"]


@pytest.fixture
def replay(chaos_dir: Path, tmp_path: Path) -> Path:
    return write_replay(chaos_dir, tmp_path / "replay")


def run(dataset: Path, replay: Path) -> Report:
    return verify(load_expected(dataset), OfflineReplaySource(replay))


def truth_of(dataset: Path, pick: int = 0) -> dict[str, Any]:
    records = [orjson.loads(x) for x in (dataset / "truth.jsonl").read_bytes().splitlines()]
    records.sort(key=lambda r: (-r["event_count"], r["conversation_id"]))
    return records[pick]


def diffs_of(report: Report) -> dict[str, str]:
    return {d.field: d.note for r in report.records for d in r.diffs}


def test_a_perfect_pipeline_verifies(chaos_dir: Path, replay: Path) -> None:
    report = run(chaos_dir, replay)
    assert report.ok, report.as_json()
    assert report.count("matched") == len(load_expected(chaos_dir).truth)
    assert len(report.dead_letters.matched) == report.dead_letters.expected > 5
    assert report.as_json()["summary"]["records"]["mismatched"] == 0


@pytest.mark.parametrize(
    ("field", "value", "note"),
    [
        ("hold_seconds", 999.5, ""),
        ("agent_ids", [], "missing ["),
        ("media_type", "VOICE", ""),
        ("event_count", "7", "type int expected, got str"),
        ("status", "partial", ""),
        ("lifecycle", [], "expected entries, 0 found"),
        ("unknown_events", ["x:y"], "extra ['x:y']"),
    ],
)
def test_a_tampered_field_is_a_readable_mismatch(
    chaos_dir: Path, replay: Path, field: str, value: Any, note: str
) -> None:
    record = truth_of(chaos_dir)
    edit_record(replay, record["conversation_id"], **{field: value})
    report = run(chaos_dir, replay)
    assert not report.ok and report.count("mismatched") == 1
    (failure,) = [r for r in report.records if r.status == "mismatched"]
    assert failure.conversation_id == record["conversation_id"]
    (diff,) = failure.diffs
    assert (diff.field, diff.expected, diff.actual) == (field, record[field], value)
    assert note in diff.note


def test_a_changed_lifecycle_entry_names_its_index(chaos_dir: Path, replay: Path) -> None:
    record = truth_of(chaos_dir)
    lifecycle = [dict(e) for e in record["lifecycle"]]
    lifecycle[3]["action"] = "conversation:state"
    lifecycle[3]["timestamp"] = "2000-01-01T00:00:00.000Z"
    edit_record(replay, record["conversation_id"], lifecycle=lifecycle)
    assert diffs_of(run(chaos_dir, replay))["lifecycle"].startswith("first difference at [3]")


def test_seconds_compare_at_millisecond_precision(chaos_dir: Path, replay: Path) -> None:
    record = truth_of(chaos_dir)
    cid = record["conversation_id"]
    edit_record(replay, cid, duration_seconds=record["duration_seconds"] + 1e-7)
    assert run(chaos_dir, replay).ok
    edit_record(replay, cid, duration_seconds=record["duration_seconds"] + 0.001)
    assert "duration_seconds" in diffs_of(run(chaos_dir, replay))


def test_a_missing_field_is_reported(chaos_dir: Path, replay: Path) -> None:
    record = truth_of(chaos_dir)
    path = edit_record(replay, record["conversation_id"])
    data = orjson.loads(path.read_bytes())
    del data["caller"]
    path.write_bytes(orjson.dumps(data | {"shard": 3}))
    report = run(chaos_dir, replay)
    assert diffs_of(report) == {"caller": "field missing from the record"}
    assert report.extra_fields == {"shard": 1}


def test_a_missing_record(chaos_dir: Path, replay: Path) -> None:
    victim = sorted((replay / "conversations").glob("*.json"))[7]
    cid = orjson.loads(victim.read_bytes())["conversation_id"]
    victim.unlink()
    report = run(chaos_dir, replay)
    assert not report.ok
    assert [(r.status, r.conversation_id) for r in report.records if r.status != "matched"] == [
        ("missing", cid)
    ]


def test_an_unexpected_record(chaos_dir: Path, replay: Path) -> None:
    extra = truth_of(chaos_dir) | {"conversation_id": "never-generated"}
    (replay / "conversations" / "zz.json").write_bytes(orjson.dumps(extra))
    report = run(chaos_dir, replay)
    assert [r.conversation_id for r in report.records if r.status == "unexpected"] == [
        "never-generated"
    ]
    assert not report.ok


def test_unreadable_and_duplicate_records_are_problems(chaos_dir: Path, replay: Path) -> None:
    first = sorted((replay / "conversations").glob("*.json"))[0]
    shutil.copy(first, replay / "conversations" / "copy.json")
    (replay / "conversations" / "broken.json").write_text("{ nope")
    report = run(chaos_dir, replay)
    assert len(report.problems) == 2 and not report.ok
    assert any("second record" in p for p in report.problems)
    assert any("unreadable" in p for p in report.problems)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"revision": 0}, "revision"),
        ({"duplicate_count": 10_000}, "duplicate_count"),
        ({"late_event_count": 2}, "late_event_count"),  # revision 1 cannot have late events
        ({"revision": 3, "late_event_count": 1}, "late_event_count"),
        ({"finalized_at": "2026-11-24T08:00:00.000Z"}, "finalized_at"),
        ({"first_seen_at": "yesterday"}, "first_seen_at"),
    ],
)
def test_processing_fields_are_checked_for_consistency(
    chaos_dir: Path, replay: Path, changes: dict[str, Any], field: str
) -> None:
    edit_record(replay, truth_of(chaos_dir)["conversation_id"], **changes)
    notes = diffs_of(run(chaos_dir, replay))
    assert notes[field].startswith("consistency:")


def test_consistent_processing_values_are_accepted(chaos_dir: Path, replay: Path) -> None:
    record = truth_of(chaos_dir)
    edit_record(
        replay,
        record["conversation_id"],
        revision=3,
        late_event_count=4,
        duplicate_count=record["duplicate_count"],
        finalized_at="2030-01-01T00:00:00.000Z",
    )
    assert run(chaos_dir, replay).ok


def test_a_missing_dead_letter(chaos_dir: Path, replay: Path) -> None:
    letters = (replay / "deadletter.jsonl").read_bytes().splitlines()
    (replay / "deadletter.jsonl").write_bytes(b"\n".join(letters[1:]) + b"\n")
    report = run(chaos_dir, replay)
    assert not report.ok
    (missing,) = report.dead_letters.missing
    assert missing.line == orjson.loads(letters[0])["source"]["line"]


def test_an_unexpected_dead_letter(chaos_dir: Path, replay: Path) -> None:
    with (replay / "deadletter.jsonl").open("ab") as out:
        out.write(orjson.dumps(dead_letter(3, '{"valid": "but rejected"}')) + b"\n")
    report = run(chaos_dir, replay)
    assert len(report.dead_letters.unexpected) == 1 and not report.ok


def test_dead_letters_match_base64_and_whole_line_raws(chaos_dir: Path) -> None:
    expected = load_expected(chaos_dir).dead_letters
    in_array = next(e for e in expected if e.element is not None and e.marker in e.text)
    alone = next(e for e in expected if e.element is None)
    encoded = dead_letter(alone.line, base64.b64encode(alone.text.encode()).decode())
    encoded["raw_encoding"] = "base64"
    line_text = (chaos_dir / "deliveries.jsonl").read_text().splitlines()[in_array.line - 1]
    whole = dead_letter(in_array.line, line_text)  # a sink that keeps the whole delivery
    found = [Found("a", encoded), Found("b", whole)]
    outcome = match_dead_letters([alone, in_array], found)
    assert outcome.ok and len(outcome.matched) == 2


def test_missing_inputs_are_input_errors(tmp_path: Path, chaos_dir: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_expected(tmp_path / "nothing")
    with pytest.raises(InputError, match=r"manifest\.json is missing"):
        load_expected(tmp_path)
    with pytest.raises(InputError, match="transform replay"):
        OfflineReplaySource(tmp_path / "nothing")
    with pytest.raises(InputError, match="conversations/"):
        OfflineReplaySource(tmp_path)
    broken = tmp_path / "copy"
    shutil.copytree(chaos_dir, broken)
    (broken / "manifest.json").write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="not a simulator-manifest/1"):
        load_expected(broken)


def test_an_edited_truth_file_is_noted(chaos_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(chaos_dir, copy)
    with (copy / "truth.jsonl").open("ab") as out:
        out.write(b"\n")
    assert load_expected(copy).notes


def test_what_the_sender_gave_up_on_is_the_routes_loss_not_the_pipelines(
    chaos_dir: Path, replay: Path
) -> None:
    victim = sorted((replay / "conversations").glob("*.json"))[7]
    cid = orjson.loads(victim.read_bytes())["conversation_id"]
    victim.unlink()
    letters = (replay / "deadletter.jsonl").read_bytes().splitlines()
    (replay / "deadletter.jsonl").write_bytes(b"\n".join(letters[1:]) + b"\n")
    lost_line = orjson.loads(letters[0])["source"]["line"]
    expected = load_expected(chaos_dir)
    strict = verify(expected, OfflineReplaySource(replay))
    assert not strict.ok
    allowed = Allowances(undelivered={cid: 1}, undelivered_lines=frozenset({lost_line}))
    report = verify(expected, OfflineReplaySource(replay), allowances=allowed)
    assert report.ok
    assert [(r.status, r.conversation_id) for r in report.records if r.status != "matched"] == [
        ("undelivered", cid)
    ]
    assert report.as_json()["summary"]["records"]["undelivered"] == 1
    assert not report.dead_letters.missing
