"""P2: storage operations per micro-event made by the consumer (SPEC 12: <= 0.25, `realistic`).

Runs the whole pipeline on the local stack (`python -m simulator run --profile realistic`),
where every Table and Blob request of the consumer and the timer is counted by the adapters
(checkpoints excluded) and reported per batch in the host log; the run report sums them.
Repeats at 2x and 4x the conversations to show how the figure moves with load.

    python -m bench.p2_storage [--conversations 300] [--rate 50] [--scales 1,2,4]
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.common import write_result
from bench.runs import simulator_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--scales", default="1,2,4")
    args = parser.parse_args()
    results: dict[str, Any] = {"profile": "realistic", "target": 0.25}
    for scale in (int(s) for s in args.scales.split(",")):
        n = args.conversations * scale
        report = simulator_run(
            f"p2-realistic-{n}",
            ["--profile", "realistic", "--conversations", str(n), "--rate", str(args.rate)],
        )
        consumer = report["consumer"]
        results[f"x{scale}"] = {
            "conversations": n,
            "verified": report["verify"]["ok"],
            "micro_events": report["dataset"]["micro_events"],
            "operations_per_micro_event": consumer["operations_per_micro_event"],
            "storage_operations": consumer["storage_operations"],
            "send_rate": report["rate"],
        }
    write_result("p2_storage", results)


if __name__ == "__main__":
    main()
