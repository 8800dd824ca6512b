"""P3: ingest through the local stack (SPEC 12: >= 1,000 accepted requests/s, p99 < 100 ms).

Starts a private local stack on free ports (Azurite, the Event Hubs emulator, one local
Functions host running this `function_app.py`, consumer included, as deployed), then posts
simulator deliveries to `POST /api/v1/genesys/events` from `--concurrency` senders as fast as
they are answered, and reports accepted requests/s and latency percentiles. Repeats with 2x
and 4x the requests.

    python -m bench.p3_ingest [--requests 2000] [--concurrency 64] [--scales 1,2,4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, generated_input, write_result
from devstack.stack import Stack, StackPorts

JSON = {"Content-Type": "application/json"}


async def _load(url: str, bodies: list[bytes], concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def sender() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                answer = await client.post(url, content=body, headers=JSON)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(bodies),
        "accepted": statuses.get(200, 0),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": round(wall, 2),
        "accepted_per_second": round(statuses.get(200, 0) / wall, 1),
        "latency_ms": {"p50": round(cuts[49], 1), "p90": round(cuts[89], 1),
                       "p99": round(cuts[98], 1), "max": round(max(latencies), 1)},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--scales", default="1,2,4")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    deliveries = generated_input("clean", 2000) / "deliveries.jsonl"
    lines = deliveries.read_bytes().splitlines()
    results: dict[str, Any] = {"concurrency": args.concurrency, "target_per_second": 1000,
                               "target_p99_ms": 100}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="p3-") as state_dir:
        stack = Stack(ROOT, ports=StackPorts.free(), app_dir=ROOT, state_dir=Path(state_dir))
        stack.start()
        try:
            url = stack.http_base_url() + "/api/v1/genesys/events"
            asyncio.run(_load(url, lines[:200], args.concurrency))  # warm up the producer
            for scale in scales:
                count = args.requests * scale
                bodies = [lines[i % len(lines)] for i in range(count)]
                results[f"x{scale}"] = asyncio.run(_load(url, bodies, args.concurrency))
        finally:
            stack.stop()
    write_result("p3_ingest", results)


if __name__ == "__main__":
    main()
