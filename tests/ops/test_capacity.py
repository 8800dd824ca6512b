"""The capacity model (ops/capacity.py) against the bench, the worked example, the document
and the project's own settings."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from adapters.entity import STATE_SHARDS
from ops import capacity
from ops.capacity import (
    Assumptions,
    CapacityError,
    Limits,
    Measured,
    RoleCost,
    fill_blocks,
    parse_waits,
    plan,
    seats_at_limits,
)
from ops.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "capacity.md"
BENCHMARKS = ROOT / "BENCHMARKS.md"


# ---------------------------------------------------------------------- against the bench
@pytest.mark.parametrize("batch", [100, 500])
def test_fed_the_benchs_waits_the_model_gives_the_benchs_throughput_back(batch: int) -> None:
    consumer = Measured().consumer(batch)
    modelled = 1 / consumer.seconds_per_micro_event(consumer.bench_wait_ms, cpu_factor=1.0)
    # within the rounding of the recorded waits (three decimals of a millisecond)
    assert modelled == pytest.approx(consumer.bench_model_micro_events_per_s, rel=1e-4)
    # The wall clock adds what the shared machine took: never faster than the model.
    assert consumer.bench_micro_events_per_s <= modelled
    timer = Measured().timer(batch)
    # The timer's index queries are kept per run (they are per app); on the bench they were
    # 516 over the partition's 12,620 micro-events.
    query_s = 516 / 12620 * timer.bench_wait_ms["table_query"] / 1000
    seconds = timer.seconds_per_micro_event(timer.bench_wait_ms, cpu_factor=1.0) + query_s
    assert 1 / seconds == pytest.approx(timer.bench_model_micro_events_per_s, rel=1e-4)
    assert timer.bench_micro_events_per_s <= 1 / seconds


def test_the_storage_requests_are_the_benchs_operations_per_micro_event() -> None:
    """P5 printed 0.2865 requests per micro-event at batch 100, queries included."""
    m = Measured()
    requests = sum(m.consumer(100).requests.values()) + sum(m.timer(100).requests.values())
    assert requests + 516 / 12620 == pytest.approx(0.2865, abs=1e-4)
    # Given P2's figure instead, the model uses it as it is.
    p2 = plan(Assumptions(seats=1000, operations_per_micro_event=m.p2_operations_per_micro_event))
    assert p2.operations_per_micro_event == 0.195
    queries_per_s = 4 / 30
    assert p2.state_requests_per_s == pytest.approx(p2.micro_events_per_s * 0.195 + queries_per_s)


def test_a_role_read_from_a_bench_result_models_it() -> None:
    figures = {
        "cpu_s": 1.5,
        "micro_events_per_s": 400.0,
        "model_micro_events_per_s": 0.0,
        "table_entities_per_micro_event": 1.5,
        "requests": {
            "table_transaction": {"count": 10, "mean_wait_ms": 20.0},
            "blob_write": {"count": 100, "mean_wait_ms": 4.0},
            "table_setup": {"count": 1, "mean_wait_ms": 3.0},
        },
    }
    role = RoleCost.from_bench(figures, micro_events=1000)
    assert role.cpu_ms == 1.5
    assert role.requests == {"table_transaction": 0.01, "blob_write": 0.1}
    # 1.5 ms + 0.01 × 20 ms + 0.1 × 4 ms = 2.1 ms per micro-event
    assert role.seconds_per_micro_event(role.bench_wait_ms, 1.0) == pytest.approx(0.0021)
    with pytest.raises(CapacityError, match="unknown request kinds"):
        RoleCost.from_bench({**figures, "requests": {"queue_put": {"count": 1}}}, 1000)
    with pytest.raises(CapacityError, match="0 micro-events"):
        RoleCost.from_bench(figures, 0)


def test_the_measured_figures_are_the_ones_benchmarks_records() -> None:
    text = BENCHMARKS.read_text(encoding="utf-8")
    section = text[text.index("## P5") :]
    section = section[: section.index("\n## ", 1)]
    m = Measured()
    for batch in capacity.MEASURED_BATCHES:
        for role in (m.consumer(batch), m.timer(batch)):
            for figure in (role.cpu_ms, role.bench_micro_events_per_s, role.entities,
                           role.bench_model_micro_events_per_s):  # fmt: skip
                assert f"{figure:,g}" in section, figure
    for figure in (m.micro_events_per_conversation, m.deliveries_per_conversation,
                   m.events_per_delivery, m.record_bytes, m.state_bytes):  # fmt: skip
        assert f"{figure:,g}" in section, figure
    assert f"{m.p2_operations_per_micro_event}" in text[text.index("## P2") :]
    assert "923" in text[text.index("## P3") :]


# ---------------------------------------------------------------------- the worked example
def test_worked_example_in_the_doc() -> None:
    """docs/capacity.md's 1,000 seats, step by step, as the document writes the numbers."""
    p = plan(Assumptions(seats=1000))
    expected = {
        "conversations_per_s": (p.conversations_per_s, 2.889, 0.001),
        "micro_events_per_s": (p.micro_events_per_s, 36.94, 0.01),
        "requests_per_s": (p.requests_per_s, 17.00, 0.01),
        "events_per_s": (p.events_per_s, 21.22, 0.01),
        "ingress_mb_per_s": (p.ingress_mb_per_s, 0.0185, 0.0001),
        "partition": (p.partition_micro_events_per_s, 957, 1),
        "timer": (p.timer_micro_events_per_s, 552, 1),
        "timer busy %": (100 * p.timer_utilisation, 6.8, 0.1),
        "shard entities/s": (p.shard_entities_per_s, 20.5, 0.1),
        "operations": (p.operations_per_micro_event, 0.2456, 0.0001),
        "state requests/s": (p.state_requests_per_s, 9.21, 0.01),
        "host requests/s": (p.host_requests_per_s, 2.4, 0.1),
        "conversations a month": (p.month_conversations, 2_000_000, 0),
        "micro-events a month": (p.month_micro_events / 1e6, 25.58, 0.01),
    }
    for name, (value, written, tolerance) in expected.items():
        assert value == pytest.approx(written, abs=tolerance / 2 + 1e-12), name
    assert (p.throughput_units, p.partitions_for_throughput, p.partitions) == (1, 1, 4)
    assert (p.consumer_instances, p.ingest_instances, p.shards_needed) == (1, 1, 4)
    cost = {
        "event_hubs_throughput_units": 21.90,
        "event_hubs_ingress": 0.41,
        "flex_memory": 4.57,
        "flex_executions": 5.38,
        "state_table_transactions": 0.14,
        "state_blob_transactions": 15.42,
        "host_blob_transactions": 18.53,
        "storage_capacity": 1.03,
    }
    assert {k: round(v, 2) for k, v in p.cost.items()} == cost
    assert round(p.total_cost, 2) == 67.39
    # The hand arithmetic of the document, independently of the model's code:
    consumer_ms = 0.1816 + 405 / 12620 * 15 + 308 / 12620 * 6 + 175 / 12620 * 12 + 146 / 12620 * 6
    assert consumer_ms == pytest.approx(1.045, abs=5e-4)
    timer_ms = 0.2902 + 98 / 12620 * 15 + 984 / 12620 * 6 + 984 / 12620 * 12
    assert timer_ms == pytest.approx(1.810, abs=5e-4)
    busy_s = 25.576e6 * consumer_ms / 1000 + 25.576e6 * timer_ms / 1000 + 131_400 * 0.3
    busy_s += 11.772e6 / 461.5
    assert (busy_s * 2 - 100_000) * 0.000026 == pytest.approx(4.57, abs=0.005)
    doc = DOC.read_text(encoding="utf-8")
    example = doc[doc.index("## A worked example") : doc.index("## Plans by size")]
    for written in ("2.889", "36.94", "17.00", "21.22", "0.0185", "1.045", "957", "1.810",
                    "552", "6.8 %", "20.5", "0.2456", "9.21", "2.4", "2,000,000", "25.58",
                    "$21.90", "$0.41", "$4.57", "$5.38", "$0.14", "$15.42", "$18.53", "$1.03",
                    "$67.39"):  # fmt: skip
        assert written in example, written


# ---------------------------------------------------------------------- the document
def test_the_documents_tables_are_the_calculators() -> None:
    text = DOC.read_text(encoding="utf-8")
    regenerated = fill_blocks(text, capacity.doc_blocks())
    assert regenerated == text, (
        "docs/capacity.md differs from the model: "
        "python -m ops capacity --seats 1 --write-doc docs/capacity.md"
    )


def test_fill_blocks_names_what_is_wrong() -> None:
    text = "a\n<!-- capacity:plans -->\nold\n<!-- /capacity -->\nb\n"
    assert (
        fill_blocks(text, {"plans": "new"})
        == "a\n<!-- capacity:plans -->\nnew\n<!-- /capacity -->\nb\n"
    )
    with pytest.raises(CapacityError, match="no block for"):
        fill_blocks(text, {"plans": "x", "limits": "y"})
    with pytest.raises(CapacityError, match="no generated block named 'plans'"):
        fill_blocks(text, {"limits": "y"})


# ---------------------------------------------------------------------- the model's shape
def test_load_and_cost_grow_with_the_seats() -> None:
    small, large = plan(Assumptions(seats=1000)), plan(Assumptions(seats=2000))
    assert large.micro_events_per_s == pytest.approx(2 * small.micro_events_per_s)
    assert large.state_requests_per_s > small.state_requests_per_s
    for line, value in small.cost.items():
        assert large.cost[line] >= value, line
    assert large.total_cost > small.total_cost


def test_the_seats_at_each_limit_are_where_the_plan_flags_it() -> None:
    base = Assumptions(seats=1)
    limits = seats_at_limits(base)
    timer_limit = limits["timer (one instance)"]
    assert not plan(replace(base, seats=timer_limit)).over_limits
    past = plan(replace(base, seats=int(timer_limit * 1.05)))
    assert any(reason.startswith("timer:") for reason in past.over_limits)
    assert limits["Table shards (32)"] == pytest.approx(8 * limits["Table shards (4)"], rel=1e-4)
    # Faster storage moves the timer's wall out.
    faster = seats_at_limits(replace(base, wait_ms=parse_waits(["blob_write=4", "table_read=2"])))
    assert faster["timer (one instance)"] > timer_limit


def test_partitions_are_a_multiple_of_the_shards_and_tus_follow_the_ingress() -> None:
    for seats in (10, 1000, 50_000, 200_000):
        p = plan(Assumptions(seats=seats))
        assert p.partitions % Limits().state_shards == 0
        assert p.partitions >= max(p.partitions_for_throughput, p.throughput_units)
        assert p.throughput_units >= p.events_per_s / 1000 / 0.7
    huge = plan(Assumptions(seats=700_000))
    assert any("partitions > 32" in reason for reason in huge.over_limits)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seats": 0}, "seats must be at least 1"),
        ({"utilisation": 0}, "utilisation"),
        ({"utilisation": 1.5}, "utilisation"),
        ({"peak_factor": -1}, "peak_factor must be positive"),
        ({"micro_events_per_conversation": 0}, "micro_events_per_conversation"),
        ({"wait_ms": {"table_read": 1}}, "a wait is needed"),
        ({"wait_ms": {**capacity.DEFAULT_AZURE_WAIT_MS, "queue": 1}}, "unknown request kinds"),
        ({"months_of_records": -1}, "months_of_records"),
    ],
)
def test_bad_assumptions_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(CapacityError, match=message):
        Assumptions(**{"seats": 10, **changes})  # type: ignore[arg-type]


def test_only_measured_batches_apply() -> None:
    with pytest.raises(CapacityError, match=r"batch must be one of \[100, 500\]"):
        plan(Assumptions(seats=10, batch=256))


def test_parse_waits() -> None:
    assert parse_waits(["blob_write=4.5"])["blob_write"] == 4.5
    assert parse_waits([])["table_read"] == capacity.DEFAULT_AZURE_WAIT_MS["table_read"]
    for bad in ("blob_write", "disk=3", "blob_write=fast"):
        with pytest.raises(CapacityError):
            parse_waits([bad])


# ---------------------------------------------------------------------- the project's settings
def test_the_limits_are_the_projects_settings() -> None:
    limits = Limits()
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))["extensions"]["eventHubs"]
    assert host["maxEventBatchSize"] == limits.max_event_batch
    assert host["minEventBatchSize"] == limits.min_event_batch
    assert host["maxWaitTime"] == f"00:00:{limits.max_wait_s:02.0f}"
    assert limits.state_shards == STATE_SHARDS
    bicep = (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8")
    assert f"param maximumInstanceCount int = {limits.max_instances}" in bicep
    assert "param instanceMemoryMB int = 2048" in bicep
    assert re.search(r"maxValue\(32\)\s*\n.*\n\s*param partitionCount int = 8\n", bicep)
    assert limits.template_partitions == 8
    from functions.transform import DEFAULT_TIMER_SCHEDULE
    from transform.state import DEFAULT_RETENTION_DAYS

    assert f"*/{limits.timer_period_s:.0f} * * * * *" == DEFAULT_TIMER_SCHEDULE
    assert limits.state_retention_days == DEFAULT_RETENTION_DAYS


# ---------------------------------------------------------------------- the command
def test_cli_prints_a_plan_as_json_and_as_markdown() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["capacity", "--seats", "1000", "--seats", "3000", "--json"])
    assert result.exit_code == 0, result.output
    document = orjson.loads(result.output)
    assert [p["seats"] for p in document["plans"]] == [1000, 3000]
    assert document["plans"][0]["total_cost"] == pytest.approx(
        plan(Assumptions(seats=1000)).total_cost
    )
    assert "timer (one instance)" in document["seats_at_limits"]
    result = runner.invoke(app, ["capacity", "--seats", "1000", "--markdown"])
    assert result.exit_code == 0
    assert result.output.startswith("| | 1,000 seats |")
    result = runner.invoke(app, ["capacity", "--seats", "1000", "--wait-ms", "blob_write=4"])
    assert result.exit_code == 0
    assert "1,000 seats" in result.output


@pytest.mark.parametrize(
    "arguments",
    [
        ["--seats", "0"],
        ["--seats", "10", "--batch", "200"],
        ["--seats", "10", "--wait-ms", "disk=3"],
        ["--seats", "10", "--utilisation", "2"],
    ],
)
def test_cli_refuses_bad_input_with_exit_2(arguments: list[str]) -> None:
    result = CliRunner().invoke(app, ["capacity", *arguments])
    assert result.exit_code == 2, result.output
    assert "error" in result.output


def test_cli_rewrites_the_documents_tables(tmp_path: Path) -> None:
    page = tmp_path / "capacity.md"
    page.write_text(
        "".join(
            f"<!-- capacity:{name} -->\nstale\n<!-- /capacity -->\n"
            for name in capacity.doc_blocks()
        ),
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["capacity", "--seats", "1", "--write-doc", str(page)])
    assert result.exit_code == 0, result.output
    assert "stale" not in page.read_text(encoding="utf-8")
    missing = CliRunner().invoke(
        app, ["capacity", "--seats", "1", "--write-doc", str(tmp_path / "none.md")]
    )
    assert missing.exit_code == 2
