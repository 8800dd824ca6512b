"""The report of a run: figures gathered from the sender, the stack, the records and the
consumer's log, as a rich table, `report.json` and `report.html`.

Storage operations come from the consumer's own counters, which it logs on every batch and
timer run (`transform batch … micro_events=… ops_total=…`, see `adapters.opcount`): the log
survives a kill -9, an in-process counter would not.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from simulator.run.chart import page, panel
from simulator.send.delivery import Outcome
from simulator.send.stats import distribution, per_second
from simulator.timeutil import parse_iso

Json = dict[str, Any]
_CONSUMER_LINE = re.compile(r"transform (batch|timer) ")
_FIELD = re.compile(r"\b(\w+)=(\d+)\b")
COUNT_FIELDS = (
    "micro_events",
    "applied",
    "duplicates",
    "redelivered",
    "dead_letters",
    "parked",
    "revisions_written",
    "finalized",
    "heartbeats",
    "filtered_conversations",
    "filtered_events",
)
_INGEST_HEARTBEATS = re.compile(
    r"\b(?:accepted|rejected|heartbeat) message_id=\S+ .*?\bheartbeats=(\d+)"
)


def consumer_counts(log: Path) -> Json:
    """Totals of the consumer's batch and timer log lines: work done and storage requests."""
    totals: Counter[str] = Counter()
    lines = 0
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {"log": str(log), "lines": 0}
    for line in text.splitlines():
        if not _CONSUMER_LINE.search(line):
            continue
        lines += 1
        for name, value in _FIELD.findall(line):
            totals[name] += int(value)
    ops = {k.removeprefix("ops_"): v for k, v in totals.items() if k.startswith("ops_")}
    micro_events = totals["micro_events"]
    per = round(ops.get("total", 0) / micro_events, 4) if micro_events else None
    return {
        "log": str(log),
        "lines": lines,
        "counts": {name: totals[name] for name in COUNT_FIELDS},
        "storage_operations": ops,
        "operations_per_micro_event": per,
    }


def ingest_heartbeats(log: Path) -> int:
    """Heartbeats ingest answered, summed from its per-request log lines (`heartbeats=n`)."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return 0
    return sum(int(found) for found in _INGEST_HEARTBEATS.findall(text))


@dataclass(slots=True)
class RouteCheck:
    """What the media filter and the relay's extras should have done, against what they did."""

    document: Json
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def route_check(
    manifest: Mapping[str, Any],
    consumer: Mapping[str, Any],
    heartbeats: int,
    set_aside: Mapping[str, int | None],
    *,
    faults: bool,
) -> RouteCheck:
    """The truth's filtered conversations and heartbeats against the pipeline's.

    Exact: every conversation the truth filters is set aside in the state with all its
    micro-events (`set_aside`, read from the state table). The counts come from the log lines,
    which a killed host may not have written: exact without faults, reported with them.
    """
    counts = manifest.get("counts", {})
    filtered = counts.get("filtered", {})
    consumed = consumer.get("counts", {})
    expected = {
        "filtered_conversations": filtered.get("conversations", 0),
        "filtered_events": filtered.get("micro_events", 0),
        "heartbeats": counts.get("heartbeats", 0),
    }
    counted = {
        "filtered_conversations": consumed.get("filtered_conversations", 0),
        "filtered_events": consumed.get("filtered_events", 0),
        "heartbeats": heartbeats,
    }
    check = RouteCheck(
        {
            "media_types": filtered.get("media_types", []),
            "expected": expected,
            "counted": counted,
            "heartbeats_reaching_the_transform": consumed.get("heartbeats", 0),
            "set_aside_in_state": sum(1 for n in set_aside.values() if n is not None),
        }
    )
    for entry in manifest.get("filtered", []):
        cid, want = entry["conversation_id"], entry["event_count"]
        held = set_aside.get(cid)
        if held is None:
            check.problems.append(
                f"conversation {cid!r} (media {entry['media_type']}) is not set aside by the "
                "media filter in the state table"
            )
        elif held != want:
            check.problems.append(
                f"conversation {cid!r} is set aside with {held} micro-events; the truth has {want}"
            )
    for name, want in expected.items():
        if counted[name] == want:
            continue
        text = f"{name}: the pipeline counted {counted[name]}, the truth expects {want}"
        (check.notes if faults else check.problems).append(
            text + (" (a killed host loses the log lines of its last batch)" if faults else "")
        )
    if consumed.get("heartbeats", 0):
        check.problems.append(
            f"{consumed['heartbeats']} heartbeats reached the transform: ingest must absorb them"
        )
    return check


def conversation_sends(
    outcomes: Sequence[Outcome], by_line: Mapping[int, Mapping[str, int]]
) -> dict[str, tuple[float, float]]:
    """Conversation → (first try of its first delivery, last try of its last one), epoch s."""
    spans: dict[str, tuple[float, float]] = {}
    for outcome in outcomes:
        if not outcome.tries:
            continue
        first, last = outcome.tries[0].started_at, outcome.tries[-1].started_at
        for cid in by_line.get(outcome.line, {}):
            a, b = spans.get(cid, (first, last))
            spans[cid] = (min(a, first), max(b, last))
    return spans


def end_to_end(
    spans: Mapping[str, tuple[float, float]],
    finalized: Mapping[str, str],
    modified: Mapping[str, datetime],
) -> Json:
    """Seconds from a conversation's first send to its record, and from its last send."""
    from_first, from_last, written = [], [], []
    for cid, (first, last) in spans.items():
        at = finalized.get(cid)
        if at is None:
            continue
        done = parse_iso(at) / 1000
        from_first.append(done - first)
        from_last.append(done - last)
        if cid in modified:
            written.append(modified[cid].timestamp() - first)
    return {
        "first_send_to_record_s": distribution(from_first),
        "last_send_to_record_s": distribution(from_last),
        "first_send_to_blob_modified_s": distribution(written),
    }


def records_per_second(modified: Iterable[datetime], origin: float) -> list[tuple[float, float]]:
    counts = Counter(int(m.timestamp() - origin) for m in modified)
    if not counts:
        return []
    return [(s, float(counts.get(s, 0))) for s in range(min(counts), max(counts) + 1)]


def _f(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    return f"{value:,}{unit}"


def headline(doc: Json) -> list[tuple[str, str]]:
    """The figures worth a line each, for the terminal table and the HTML page."""
    send, verify, e2e = doc["send"], doc["verify"]["summary"], doc["end_to_end"]
    latency, ops = send["latency_ms"], doc["consumer"]
    rec, dl = verify["records"], verify["dead_letters"]
    faults = doc["faults"]
    fault_text = ", ".join(f"{kind} ×{n}" for kind, n in Counter(f["kind"] for f in faults).items())
    first = e2e["first_send_to_record_s"]
    last = e2e["last_send_to_record_s"]
    return [
        ("verdict", "VERIFIED" if doc["verify"]["ok"] else "FAILED"),
        (
            "data set",
            f"{doc['profile']} seed {doc['seed']}: {doc['conversations']:,} conversations, "
            f"{doc['dataset']['micro_events']:,} micro-events, "
            f"{doc['dataset']['deliveries']:,} deliveries",
        ),
        ("stack", doc["stack"]),
        (
            "send rate",
            f"{_f(doc['rate']['achieved'])}/s achieved, target "
            + (f"{doc['rate']['target']:g}/s" if doc["rate"]["target"] else "unpaced")
            + f", concurrency {doc['rate']['concurrency']}",
        ),
        (
            "throughput",
            f"{_f(doc['throughput']['micro_events_per_s'])} micro-events/s end to end "
            f"({_f(doc['throughput']['seconds'])} s first send → hub drained)",
        ),
        (
            "ingest latency",
            f"p50 {_f(latency['p50'], ' ms')}, p90 {_f(latency['p90'], ' ms')}, "
            f"p99 {_f(latency['p99'], ' ms')}, max {_f(latency['max'], ' ms')}",
        ),
        (
            "end to end",
            f"first send → record p50 {_f(first['p50'], ' s')}, p99 {_f(first['p99'], ' s')}; "
            f"last send → record p50 {_f(last['p50'], ' s')}, p99 {_f(last['p99'], ' s')}",
        ),
        (
            "retries",
            f"{send['retries']:,} retries, {send['status_503']:,} × 503, "
            f"{send['no_answer']:,} without answer, {send['gave_up']:,} given up",
        ),
        ("faults", fault_text or "none"),
        ("route", _route(doc)),
        (
            "storage ops",
            f"{_f(ops.get('operations_per_micro_event'), digits=3)} per micro-event "
            f"({ops.get('storage_operations', {}).get('total', 0):,} requests)",
        ),
        (
            "records",
            f"{rec['matched']:,} matched, {rec['mismatched']} mismatched, {rec['missing']} "
            f"missing, {rec['unexpected']} unexpected"
            + (
                f", {rec['undelivered']} not compared (a delivery given up by the sender)"
                if rec.get("undelivered")
                else ""
            ),
        ),
        (
            "dead letters",
            f"{dl['matched']:,}/{dl['expected']:,} matched, {dl['missing']} missing, "
            f"{dl['unexpected']} unexpected, {dl['retry_copies']} retry copies",
        ),
        ("timings", ", ".join(f"{k} {v:.1f} s" for k, v in doc["timings_s"].items())),
    ]


def _route(doc: Json) -> str:
    route = doc.get("route")
    if not route:
        return "-"
    want, got = route["expected"], route["counted"]
    media = ",".join(route["media_types"]) or "all"
    return (
        f"INGEST_MEDIA_TYPES={media}: {got['filtered_conversations']}/"
        f"{want['filtered_conversations']} conversations set aside "
        f"({got['filtered_events']}/{want['filtered_events']} micro-events, "
        f"{route['set_aside_in_state']} in the state); "
        f"{got['heartbeats']}/{want['heartbeats']} heartbeats answered; "
        f"EventBridge: {doc['send'].get('eventbridge', {}).get('deliveries', 0):,} deliveries, "
        f"{doc['send'].get('eventbridge', {}).get('expired', 0)} past the maximum event age"
    )


def table(doc: Json) -> Table:
    result = Table(title=f"run {doc['name']}", show_header=False)
    result.add_column("what", style="bold")
    result.add_column("figures")
    for what, value in headline(doc):
        style = ""
        if what == "verdict":
            style = "bold green" if doc["verify"]["ok"] else "bold red"
        result.add_row(what, f"[{style}]{value}[/]" if style else value)
    return result


def html_page(doc: Json, outcomes: Sequence[Outcome], modified: Iterable[datetime]) -> str:
    """`report.html`: the headline and two charts over the seconds of the send and drain."""
    origin = doc["started_at"]
    rows = per_second(outcomes, origin)
    records = records_per_second(modified, origin)
    x_max = max([float(r["second"]) + 1 for r in rows] + [x + 1 for x, _ in records] + [1.0])
    faults = [
        {
            "kind": f["kind"],
            "from": f["started_at"] - origin,
            "to": (f["recovered_at"] or f["started_at"]) - origin,
        }
        for f in doc["faults"]
    ]
    throughput = panel(
        "throughput",
        "per second",
        [
            ("requests started", "#1f77b4", [(r["second"], r["requests"]) for r in rows]),
            ("accepted (2xx)", "#2ca02c", [(r["second"], r["ok"]) for r in rows]),
            ("records written", "#9467bd", records),
        ],
        x_max=x_max,
        faults=faults,
    )
    latency = panel(
        "ingest latency",
        "ms",
        [
            ("p50", "#1f77b4", [(r["second"], r["p50_ms"]) for r in rows if r["p50_ms"]]),
            ("p99", "#d62728", [(r["second"], r["p99_ms"]) for r in rows if r["p99_ms"]]),
        ],
        x_max=x_max,
        faults=faults,
    )
    return page(f"simulator run {doc['name']}", headline(doc), [throughput, latency])
