"""The sender's log (`send.jsonl`): one line per delivery with every try, and what follows from it.

`verify` reads it to know which lines were re-sent (each try may have reached Event Hubs, so
a record may show that many more duplicates, and a partly-bad envelope that many more
transform dead letters); `run` reads it for latencies and the conversations' first send.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from schemas.wire import conversation_id_of
from simulator.errors import InputError, OutputError
from simulator.send.delivery import WEBHOOK, Attempt, Outcome, read_deliveries
from simulator.verify.verdict import Allowances

SEND_LOG_FILE = "send.jsonl"


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "line": outcome.line,
        "accepted": outcome.accepted,
        "status": outcome.status,
        "attempts": outcome.attempts,
        "gave_up": outcome.gave_up,
        "scheduled_at": outcome.scheduled_at,
        "error": outcome.error,
        "route": outcome.route,
        "expired": outcome.expired,
        "tries": [
            {
                "status": t.status,
                "started_at": round(t.started_at, 6),
                "latency_ms": round(t.latency_ms, 3),
                "error": t.error,
                "retry_after_s": t.retry_after_s,
            }
            for t in outcome.tries
        ],
    }


def write_log(path: Path, outcomes: Iterable[Outcome]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            for outcome in outcomes:
                out.write(orjson.dumps(outcome_json(outcome)) + b"\n")
    except OSError as e:
        msg = f"cannot write the send log {path}: {e.strerror}"
        raise OutputError(msg) from e


def read_log(path: Path) -> list[Outcome]:
    outcomes = []
    try:
        lines = path.read_bytes().splitlines()
    except OSError as e:
        msg = f"cannot read the send log {path}: {e.strerror}"
        raise InputError(msg) from e
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
            tries = tuple(
                Attempt(
                    t["status"],
                    t["started_at"],
                    t["latency_ms"],
                    t.get("error"),
                    t.get("retry_after_s"),
                )
                for t in item["tries"]
            )
            outcomes.append(
                Outcome(
                    item["line"],
                    item["accepted"],
                    item["status"],
                    item["attempts"],
                    tries[-1].latency_ms if tries else 0.0,
                    item.get("error"),
                    tries,
                    item["gave_up"],
                    item.get("scheduled_at"),
                    item.get("route", WEBHOOK),
                    bool(item.get("expired", False)),
                )
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError) as e:
            msg = f"{path} line {number} is not a send-log entry ({e}); was it written by `send`?"
            raise InputError(msg) from e
    return outcomes


def _payloads(body: bytes) -> Iterator[Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    yield from document if isinstance(document, list) else [document]


def micro_events_by_conversation(body: bytes) -> dict[str, int]:
    """Conversation id → micro-events a delivery carries for it (an upper bound: bad ones too)."""
    counts: dict[str, int] = defaultdict(int)
    for payload in _payloads(body):
        cid = conversation_id_of(payload)
        if cid is None:
            continue
        data = payload.get("data") if isinstance(payload, dict) else None
        details = data.get("details") if isinstance(data, dict) else None
        counts[cid] += len(details) if isinstance(details, list) else 1
    return dict(counts)


def conversations_by_line(
    deliveries: Path, lines: set[int] | None = None
) -> dict[int, dict[str, int]]:
    """For each delivery line (or only `lines`), its micro-events per conversation."""
    found = {}
    for delivery in read_deliveries(deliveries):
        if lines is None or delivery.line in lines:
            found[delivery.line] = micro_events_by_conversation(delivery.body)
    return found


def allowances(deliveries: Path, outcomes: Iterable[Outcome]) -> Allowances:
    """What the sender's retries may have added (extra duplicates and dead-letter copies), and
    what it gave up on (never acknowledged: the route's loss, not the pipeline's)."""
    outcomes = list(outcomes)
    resent = {o.line: o.attempts - 1 for o in outcomes if o.attempts > 1}
    lost = frozenset(o.line for o in outcomes if not o.accepted and (o.gave_up or o.expired))
    if not resent and not lost:
        return Allowances()
    duplicates: dict[str, int] = defaultdict(int)
    undelivered: dict[str, int] = defaultdict(int)
    for line, by_conversation in conversations_by_line(deliveries, set(resent) | lost).items():
        for cid, count in by_conversation.items():
            duplicates[cid] += count * resent.get(line, 0)
            if line in lost:
                undelivered[cid] += 1
    return Allowances(dict(duplicates), resent, dict(undelivered), lost)
