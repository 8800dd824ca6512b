"""`python -m transform replay --workers N`: the same output folder and summary for any N."""

from __future__ import annotations

import gc
import io
import multiprocessing
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

import transform.__main__
import transform.replay
from tests.golden.outputs import data_sets, read_input
from transform.__main__ import replay_into_folder
from transform.deadletters import whole_delivery_letter
from transform.replay import Shard, write_dead_letters

ROOT = Path(__file__).resolve().parents[2]


def _replay(data: Path, out: Path, workers: int) -> tuple[dict[str, bytes], dict[str, int]]:
    command = [sys.executable, "-m", "transform", "replay", str(data), "--out", str(out)]
    done = subprocess.run(
        [*command, "--batch-size", "7", "--workers", str(workers)],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return _files(out), orjson.loads(done.stdout)


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_workers_in_processes_of_their_own_write_what_one_process_writes(tmp_path: Path) -> None:
    data = tmp_path / "chaos.jsonl"
    data.write_bytes(read_input(data_sets()["chaos"]))
    one, one_summary = _replay(data, tmp_path / "one", 1)
    three, three_summary = _replay(data, tmp_path / "three", 3)
    assert one_summary["records"] > 100 and one_summary["dead_letters"] > 10
    assert three_summary == one_summary
    assert sorted(three) == sorted(one)
    assert three == one


def test_dead_letters_are_written_in_input_line_order(tmp_path: Path) -> None:
    """As a batch writes them, a parked delivery (line 2) follows a rejection (line 5)."""
    made = [
        whole_delivery_letter(b"x", {"line": line}, reason=reason, error="e", received_at_ms=0)
        for line, reason in [(5, "a"), (2, "b"), (5, "c"), (1, "d")]
    ]
    write_dead_letters(tmp_path, made)
    written = [
        orjson.loads(line)
        for line in (tmp_path / "deadletter.jsonl").read_bytes().split(b"\n")
        if line
    ]
    assert [(w["source"]["line"], w["reason"]) for w in written] == [
        (1, "d"),
        (2, "b"),
        (5, "a"),
        (5, "c"),
    ]


def test_a_letter_two_shares_made_is_written_once_as_one_sink_keeps_it(tmp_path: Path) -> None:
    """A delivery of conversations A and B that both outgrow the state store: one replay's sink
    keeps one letter (its id is the delivery's position), so the shares' letters must too."""
    made = [
        whole_delivery_letter(
            b"x", {"line": 3}, reason="state-too-large", error=name, received_at_ms=0
        )
        for name in ("A", "B")
    ]
    made.append(whole_delivery_letter(b"y", {"line": 1}, reason="r", error="e", received_at_ms=0))
    write_dead_letters(tmp_path, made)
    written = (tmp_path / "deadletter.jsonl").read_bytes().splitlines()
    assert [(w["source"]["line"], w["error"]) for w in map(orjson.loads, written)] == [
        (1, "e"),
        (3, "B"),
    ]


def test_every_conversation_belongs_to_exactly_one_share() -> None:
    ids = [f"conversation-{n}" for n in range(500)] + ["", "é\u00e9", "\ud800 lone surrogate"]
    for count in (1, 2, 3, 8):
        owners = [[Shard(i, count).owns(key) for i in range(count)] for key in ids]
        assert all(sum(row) == 1 for row in owners)
        if count > 1:  # and the shares are not all the same one
            assert len({row.index(True) for row in owners}) == count


@pytest.mark.parametrize(("index", "count"), [(-1, 2), (2, 2), (0, 0)])
def test_a_share_outside_its_count_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="needs 0 <= index < count"):
        Shard(index, count)


def test_workers_start_by_spawn_in_a_process_with_other_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fork is unsafe once a process has threads: the replay spawns its workers instead."""
    methods: list[str | None] = []
    real_get_context = multiprocessing.get_context

    def get_context(method: str | None = None) -> Any:
        methods.append(method)
        return real_get_context(method)

    monkeypatch.setattr(multiprocessing, "get_context", get_context)
    data = tmp_path / "mixed.jsonl"
    data.write_bytes(read_input(data_sets()["mixed"]))
    one_summary = io.StringIO()
    replay_into_folder(data, tmp_path / "one", one_summary, batch_size=7, workers=1)
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait, daemon=True)
    busy.start()
    try:
        spawned_summary = io.StringIO()
        replay_into_folder(data, tmp_path / "two", spawned_summary, batch_size=7, workers=2)
    finally:
        stop.set()
        busy.join()
    assert methods == ["spawn"]
    assert spawned_summary.getvalue() == one_summary.getvalue()
    assert _files(tmp_path / "two") == _files(tmp_path / "one")


def test_a_replay_in_this_process_leaves_the_garbage_collector_as_it_found_it(
    tmp_path: Path,
) -> None:
    """The replay freezes the heap and widens the young generation while it runs, then undoes
    both: a caller's process (a test run, the bench) collects as before."""
    data = tmp_path / "mixed.jsonl"
    data.write_bytes(read_input(data_sets()["mixed"]))
    threshold = gc.get_threshold()
    seen: list[tuple[tuple[int, int, int], int]] = []
    real_replay = transform.replay.replay

    def watched_replay(*args: Any, **kwargs: Any) -> Any:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return real_replay(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transform.__main__, "replay", watched_replay)
        replay_into_folder(data, tmp_path / "out", io.StringIO(), batch_size=7, workers=1)
    assert len(seen) == 1
    (during, frozen) = seen[0]
    assert during == (transform.__main__.YOUNG_GENERATION, *threshold[1:])
    assert frozen > 0
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == 0
