"""P3: ingest through the local stack (SPEC 12: >= 1,000 accepted requests/s, p99 < 100 ms).

Starts a private local stack on free ports (Azurite, the Event Hubs emulator, one local
Functions host running this `function_app.py`, consumer included, as deployed), then posts
simulator deliveries to `POST /api/v1/genesys/events` from `--concurrency` senders as fast as
they are answered, and reports accepted requests/s and latency percentiles. Repeats with 2x
and 4x the requests.

    python -m bench.p3_ingest [--requests 2000] [--concurrency 64] [--scales 1,2,4] [--ingest-only]
                           [--instances 1]

`--ingest-only` disables the consumer's functions on the host (`AzureWebJobs.<name>.Disabled`),
as on Flex Consumption, where per-function scaling runs the HTTP functions and the Event Hub
trigger on separate instances. Each run reports the CPU milliseconds per request of every
part (host, emulator, Azurite, the load generator itself): the figure that names the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import ROOT, generated_input, write_result
from bench.runs import cpu_seconds_by_part
from devstack.stack import Stack, StackPorts

JSON = {"Content-Type": "application/json"}
CONSUMER_FUNCTIONS = ("transform", "transform_timer")
CPUS = os.cpu_count() or 1


async def _load(urls: list[str], bodies: list[bytes], concurrency: int) -> dict[str, Any]:
    """Post every body from `concurrency` senders, each sending as soon as it is answered;
    with several host instances, senders are spread over them as a load balancer would.

    aiohttp's client, not httpx: the load generator shares the two cores with what it
    measures, and aiohttp costs about a third of httpx's CPU per request.
    """
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def sender(url: str) -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                async with session.post(url, data=body, headers=JSON) as answer:
                    await answer.read()
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(sender(urls[n % len(urls)]) for n in range(concurrency)))
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
    parser.add_argument("--ingest-only", action="store_true", help="Disable the consumer.")
    parser.add_argument("--instances", type=int, default=1, help="Host instances to spread over.")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    deliveries = generated_input("clean", 2000) / "deliveries.jsonl"
    lines = deliveries.read_bytes().splitlines()
    results: dict[str, Any] = {"concurrency": args.concurrency, "target_per_second": 1000,
                               "target_p99_ms": 100, "ingest_only": args.ingest_only,
                               "instances": args.instances}  # fmt: skip
    host_env = (
        {f"AzureWebJobs.{name}.Disabled": "true" for name in CONSUMER_FUNCTIONS}
        if args.ingest_only
        else {}
    )
    with tempfile.TemporaryDirectory(prefix="p3-") as state_dir:
        stack = Stack(
            ROOT,
            ports=StackPorts.free(),
            app_dir=ROOT,
            state_dir=Path(state_dir),
            host_env=host_env,
            instances=args.instances,
        )
        stack.start()
        try:
            urls = [
                stack.http_base_url(i) + "/api/v1/genesys/events" for i in range(args.instances)
            ]
            asyncio.run(_load(urls, lines[:200], args.concurrency))  # warm up the producer
            for scale in scales:
                count = args.requests * scale
                bodies = [lines[i % len(lines)] for i in range(count)]
                before = cpu_seconds_by_part()
                result = asyncio.run(_load(urls, bodies, args.concurrency))
                after = cpu_seconds_by_part()
                used = {part: after[part] - before[part] for part in after}
                result["cpu_ms_per_request"] = {
                    part: round(seconds * 1000 / count, 2) for part, seconds in used.items()
                }
                result["cpu_share_of_machine"] = {
                    part: round(seconds / (result["seconds"] * CPUS), 3)
                    for part, seconds in used.items()
                }
                results[f"x{scale}"] = result
        finally:
            stack.stop()
    name = "p3_ingest_only" if args.ingest_only else "p3_ingest"
    write_result(name if args.instances == 1 else f"{name}_x{args.instances}_instances", results)


if __name__ == "__main__":
    main()
