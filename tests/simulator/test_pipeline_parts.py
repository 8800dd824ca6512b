"""The parts of `send`, `replay` and `run` that need no stack: splitting, replay sources, faults,
figures and the report."""

from __future__ import annotations

import base64
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.errors import InputError, UsageError
from simulator.run.chart import panel
from simulator.run.faults import FaultInjector, FaultPlan
from simulator.run.run_report import consumer_counts, conversation_sends, records_per_second
from simulator.send.delivery import Attempt, Delivery, Outcome
from simulator.send.hub_target import split
from simulator.send.replay_source import Filters, load
from simulator.send.stats import SendSummary, per_second, percentile
from tests.simulator.fake_replay import dead_letter
from tests.simulator.http_server import serve
from tests.simulator.payloads import envelope

runner = CliRunner()


def test_the_hub_gets_what_ingest_would_send_plus_the_rejects_raw() -> None:
    body = orjson.dumps([envelope("a"), {"hello": "world"}, envelope("b"), envelope("a", bad=True)])
    events = split(Delivery(4, body), 1_795_000_000_000)
    by_key = {e.partition_key: e for e in events}
    assert set(by_key) == {"a", "b", "simulator-rejected-4-0"}
    assert orjson.loads(by_key["a"].body) == [envelope("a"), envelope("a", bad=True)]
    assert by_key["b"].properties["format"] == "envelope"
    assert orjson.loads(by_key["simulator-rejected-4-0"].body) == {"hello": "world"}
    (whole,) = split(Delivery(5, b"{broken"), 0)
    assert whole.body == b"{broken"


def test_replay_reads_dead_letters_and_captures(tmp_path: Path) -> None:
    binary = dead_letter(2, base64.b64encode(b"\xff\xfe").decode(), "invalid-json")
    binary["raw_encoding"] = "base64"
    parked = dead_letter(3, '{"p": 1}', "transient-failure-parked") | {"stage": "transform"}
    ingest = dead_letter(1, "[]", "empty") | {"stage": "ingest"}
    letters = tmp_path / "replay" / "deadletter.jsonl"
    letters.parent.mkdir()
    letters.write_bytes(b"\n".join(orjson.dumps(x) for x in (ingest, binary, parked)) + b"\n")
    assert [d.body for d in load(str(letters.parent), filters=Filters())] == [
        b"[]",
        b"\xff\xfe",
        b'{"p": 1}',
    ]
    only = Filters(reasons=frozenset({"transient-failure-parked"}))
    assert [d.body for d in load(str(letters), filters=only)] == [b'{"p": 1}']
    stage = Filters(stages=frozenset({"ingest"}))
    assert [d.body for d in load(str(letters), filters=stage)] == [b"[]"]
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(b'{"a": 1}\n\nnot json\n')
    assert [(d.line, d.body) for d in load(str(capture), filters=stage)] == [
        (1, b'{"a": 1}'),
        (2, b"not json"),
    ]
    with pytest.raises(InputError, match="does not exist"):
        load(str(tmp_path / "nothing"), filters=Filters())
    with pytest.raises(InputError, match="neither"):
        load(str(tmp_path), filters=Filters())


def test_the_replay_command_resends_the_original_bytes(tmp_path: Path) -> None:
    letters = tmp_path / "deadletter.jsonl"
    letters.write_bytes(orjson.dumps(dead_letter(9, '{"resend": "me"}')) + b"\n")
    with serve() as (url, seen):
        result = runner.invoke(
            app,
            ["replay", str(letters), "--target", url, "--log", str(tmp_path / "r.jsonl"), "-q"],
        )
    assert result.exit_code == 0, result.output
    assert [s.body for s in seen.seen] == [b'{"resend": "me"}']
    assert (tmp_path / "r.jsonl").exists()


def test_percentiles_and_summaries() -> None:
    assert percentile([], 50) is None
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50.0,
        99.0,
        100.0,
    )
    outcomes = [
        Outcome(1, True, 200, 2, 3.0, None, (Attempt(503, 10.0, 1.0), Attempt(200, 11.5, 3.0))),
        Outcome(2, False, None, 1, 0.0, "x", (Attempt(None, 10.2, 9.0),), gave_up=True),
        Outcome(3, False, 400, 1, 2.0, None, (Attempt(400, 12.0, 2.0),), scheduled_at=11.9),
    ]
    summary = SendSummary.of(outcomes)
    assert (summary.retries, summary.unavailable, summary.no_answer) == (1, 1, 1)
    assert (summary.gave_up, summary.rejected, summary.accepted) == (1, 1, 1)
    assert summary.latency_ms["count"] == 3 and summary.lag_ms["max"] == pytest.approx(100.0)
    rows = per_second(outcomes, 10.0)
    assert [(r["second"], r["requests"], r["status_503"]) for r in rows] == [
        (0, 2, 1),
        (1, 1, 0),
        (2, 1, 0),
    ]


class FakeStack:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_start = 0

    def _do(self, name: str) -> None:
        self.calls.append(name)
        if name.startswith("start") and self.fail_start:
            self.fail_start -= 1
            raise RuntimeError("port still in use")

    def kill_host(self) -> None:
        self._do("kill_host")

    def start_host(self) -> None:
        self._do("start_host")

    def stop_eventhubs(self) -> None:
        self._do("stop_eventhubs")

    def start_eventhubs(self) -> None:
        self._do("start_eventhubs")

    def stop_azurite(self) -> None:
        self._do("stop_azurite")

    def start_azurite(self) -> None:
        self._do("start_azurite")


def test_faults_follow_the_plan_in_turn_and_always_restart() -> None:
    stack = FakeStack()
    stack.fail_start = 1  # the first restart fails once and is retried
    plan = FaultPlan(every_s=0.3, duration_s=0.05, first_after_s=0.0)
    injector = FaultInjector(plan, stack, restart_pause_s=0.01)
    injector.start()
    time.sleep(0.75)
    events = injector.stop()
    assert [e.kind for e in events] == ["host", "eventhubs", "azurite"]
    assert stack.calls[:3] == ["kill_host", "start_host", "start_host"]
    assert stack.calls[3:] == ["stop_eventhubs", "start_eventhubs", "stop_azurite", "start_azurite"]
    assert all(e.recovered_at is not None for e in events) and not injector.failed
    assert events[0].error is not None and "port still in use" in events[0].error


def test_a_part_that_never_comes_back_ends_the_schedule() -> None:
    stack = FakeStack()
    stack.fail_start = 99
    injector = FaultInjector(FaultPlan(("eventhubs",), 5.0, 0.0, 0.0), stack, restart_pause_s=0.01)
    injector.start()
    stopper = threading.Thread(target=injector.stop, daemon=True)
    stopper.start()
    stopper.join(15)
    assert not stopper.is_alive()
    assert len(injector.failed) == 1


def test_fault_plans_are_checked() -> None:
    with pytest.raises(UsageError, match="host, eventhubs, azurite"):
        FaultPlan(("disk",))
    with pytest.raises(UsageError, match="longer than"):
        FaultPlan(every_s=5, duration_s=5)
    assert FaultPlan.parse_kinds(" host, azurite ,") == ("host", "azurite")


def test_consumer_counts_add_up_batch_and_timer_lines(tmp_path: Path) -> None:
    log = tmp_path / "host-0.log"
    log.write_text(
        "x INFO host-0 functions.transform: transform batch partition=1 events=3 parked=0 "
        "micro_events=10 applied=8 duplicates=2 ops_table_writes=2 ops_blob_writes=1 ops_total=3\n"
        "x INFO host-0 ingest.service: accepted message_id=m payloads=4 micro_events=99\n"
        "x INFO host-0 functions.transform: transform timer rounds=1 micro_events=0 "
        "finalized=2 ops_table_queries=4 ops_blob_writes=2 ops_total=6\n"
    )
    counts = consumer_counts(log)
    assert counts["lines"] == 2 and counts["counts"]["micro_events"] == 10
    assert counts["storage_operations"]["total"] == 9
    assert counts["storage_operations"]["blob_writes"] == 3
    assert counts["operations_per_micro_event"] == 0.9
    assert consumer_counts(tmp_path / "none.log")["lines"] == 0


def test_conversation_spans_and_record_rates() -> None:
    outcomes = [
        Outcome(1, True, tries=(Attempt(200, 100.0, 1.0),)),
        Outcome(2, True, tries=(Attempt(None, 101.0, 1.0), Attempt(200, 103.0, 1.0))),
    ]
    spans = conversation_sends(outcomes, {1: {"a": 2, "b": 1}, 2: {"a": 1}})
    assert spans == {"a": (100.0, 103.0), "b": (100.0, 100.0)}
    from datetime import UTC, datetime

    stamps = [datetime.fromtimestamp(t, UTC) for t in (100.2, 100.7, 102.1)]
    assert records_per_second(stamps, 100.0) == [(0, 2.0), (1, 0.0), (2, 1.0)]


def test_the_chart_is_well_formed_svg() -> None:
    svg = panel(
        "throughput <&>",
        "per second",
        [("a", "#000", [(0, 1.0), (1, 5.0)]), ("b", "#f00", [])],
        x_max=2,
        faults=[{"kind": "host", "from": 0.5, "to": 1.5}],
    )
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert any(e.tag.endswith("polyline") for e in root.iter())
    assert "throughput &lt;&amp;&gt;" in svg


def test_run_checks_its_fault_schedule_before_starting_anything(tmp_path: Path) -> None:
    args = ["run", "-n", "2", "--out", str(tmp_path / "r"), "--faults", "--fault-every", "1"]
    result = runner.invoke(app, [*args, "--fault-duration", "2", "-q"])
    assert result.exit_code == 2 and "must be longer than" in result.output
    result = runner.invoke(app, ["run", "-n", "2", "--faults", "--fault-kinds", "disk", "-q"])
    assert result.exit_code == 2 and "host, eventhubs, azurite" in result.output
    assert not (tmp_path / "r").exists()
