"""P4: the chaos profile end to end with faults (SPEC 12: verified exact, 0 lost, 0 double-counted).

`python -m simulator run --profile chaos --faults` on the local stack: time to verified,
end-to-end latency percentiles (first send → record in Blob), faults survived, and the peak
RSS of the consumer host sampled through the run (it must stay flat as conversations finish).

    python -m bench.p4_end_to_end [--conversations 10000] [--rate 50]
"""

from __future__ import annotations

import argparse
import time

from bench.common import write_result
from bench.runs import HostMemory, run_folder, simulator_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50.0)
    args = parser.parse_args()
    started = time.monotonic()
    name = f"p4-chaos-{args.conversations}"
    with HostMemory(str(run_folder(name))) as memory:
        report = simulator_run(
            name,
            ["--profile", "chaos", "--conversations", str(args.conversations),
             "--rate", str(args.rate), "--faults"],
        )  # fmt: skip
    write_result(
        "p4_end_to_end",
        {
            "conversations": args.conversations,
            "verified": report["verify"]["ok"],
            "verify": report["verify"]["summary"],
            "seconds_to_verified": round(time.monotonic() - started, 1),
            "timings_s": report["timings_s"],
            "end_to_end": report["end_to_end"],
            "faults": report["faults"],
            "send": {k: report["send"][k] for k in ("requests", "retries", "status_503")},
            "host_rss_peak_mib": memory.peak_mib,
            "host_rss_second_half_peak_mib": memory.halves_mib()[1],
        },
    )


if __name__ == "__main__":
    main()
