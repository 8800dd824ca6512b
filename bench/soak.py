"""Soak: the chaos profile with a fault every few seconds for half an hour or more (issue 9).

`python -m simulator run --profile chaos --faults` on a private local stack, with the faults
packed close together and enough conversations to keep sending for `--minutes`. The verdict is
the simulator's own verification: every record matched field by field (0 lost, 0 double-counted)
and dead letters equal to the injected malformed payloads. Host memory is sampled through the run.

    python -m bench.soak [--minutes 30] [--rate 50] [--fault-every 8] [--fault-duration 2]

Figures go to out/bench/soak.json; RELIABILITY.md records them.
"""

from __future__ import annotations

import argparse
import math
import time

from bench.common import write_result
from bench.runs import HostMemory, run_folder, simulator_run

CHAOS_DELIVERIES_PER_CONVERSATION = 7.0
"""Measured on the chaos profile (P4: 70,358 deliveries for 10,000 conversations); used only
to size the run to the wanted duration (`--rate` paces deliveries, retries come on top)."""


def conversations_for(minutes: float, rate: float) -> int:
    """How many chaos conversations keep a sender at `rate` busy for `minutes`."""
    return max(1, math.ceil(minutes * 60 * rate / CHAOS_DELIVERIES_PER_CONVERSATION))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="Sending time to aim for.")
    parser.add_argument("--rate", type=float, default=50.0, help="Deliveries per second.")
    parser.add_argument("--fault-every", type=float, default=8.0)
    parser.add_argument("--fault-duration", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument(
        "--retries", type=int, default=5,
        help="Sender retries per delivery (Genesys: 5, 1 s doubling); more for dense faults.",
    )  # fmt: skip
    args = parser.parse_args()
    conversations = conversations_for(args.minutes, args.rate)
    started = time.monotonic()
    name = f"soak-chaos-{conversations}"
    with HostMemory(str(run_folder(name))) as memory:
        report = simulator_run(
            name,
            ["--profile", "chaos", "--conversations", str(conversations), "--seed", str(args.seed),
             "--rate", str(args.rate), "--faults", "--fault-every", str(args.fault_every),
             "--fault-duration", str(args.fault_duration), "--fault-first", "5",
             "--drain-timeout", "900", "--fresh-stack", "--retries", str(args.retries)],
        )  # fmt: skip
    first_half, second_half = memory.halves_mib()
    faults = report["faults"]
    by_kind: dict[str, int] = {}
    for fault in faults:
        by_kind[fault["kind"]] = by_kind.get(fault["kind"], 0) + 1
    write_result(
        "soak",
        {
            "conversations": conversations,
            "rate": args.rate,
            "sender_retries": args.retries,
            "fault_every_s": args.fault_every,
            "fault_duration_s": args.fault_duration,
            "verified": report["verify"]["ok"],
            "exit_code": report["exit_code"],
            "verify": report["verify"]["summary"],
            "seconds_to_verified": round(time.monotonic() - started, 1),
            "timings_s": report["timings_s"],
            "send": {
                k: report["send"][k]
                for k in (
                    "deliveries",
                    "requests",
                    "accepted",
                    "rejected_4xx",
                    "retries",
                    "status_503",
                    "no_answer",
                    "gave_up",
                )
            },
            "rate_achieved": report["rate"]["achieved"],
            "dataset": report["dataset"],
            "faults_total": len(faults),
            "faults_by_kind": by_kind,
            "faults_failed": sum(1 for f in faults if f.get("error")),
            "consumer": report.get("consumer", {}),
            "end_to_end": report["end_to_end"],
            "host_rss_peak_mib": memory.peak_mib,
            "host_rss_first_half_peak_mib": first_half,
            "host_rss_second_half_peak_mib": second_half,
            "host_rss_by_minute_mib": _by_minute(memory.samples),
        },
    )


def _by_minute(samples: list[tuple[float, int]]) -> list[float]:
    """The peak RSS of each minute of the run, in MiB: the trail that shows it stays flat."""
    peaks: dict[int, int] = {}
    for at, rss in samples:
        minute = int(at // 60)
        peaks[minute] = max(peaks.get(minute, 0), rss)
    return [round(peaks.get(m, 0) / 2**20, 1) for m in range(max(peaks, default=-1) + 1)]


if __name__ == "__main__":
    main()
