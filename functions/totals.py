"""This worker's totals: what its consumer and timer did, read by `/metrics` and telemetry.

One object per process, beside the storage requests the adapters count (`adapters.opcount`):
the transform blueprint adds to it, the telemetry bridge and the metrics route read it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from adapters.opcount import OperationCounts
from transform.service import Counts


@dataclass(slots=True)
class TransformTotals:
    """In-process totals of what this worker's consumer and timer did."""

    batches: int = 0
    timer_runs: int = 0
    parked: int = 0
    counts: Counts = field(default_factory=Counts)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, counts: Counts, *, batch: bool, parked: int = 0) -> None:
        """Account for one batch or timer run."""
        with self.lock:
            self.counts.add(counts)
            self.parked += parked
            if batch:
                self.batches += 1
            else:
                self.timer_runs += 1

    def read(self) -> tuple[Counts, dict[str, int]]:
        """A copy of the counts, and the batches / timer runs / parked deliveries."""
        with self.lock:
            counts = Counts()
            counts.add(self.counts)
            extra = {"batches": self.batches, "timer_runs": self.timer_runs, "parked": self.parked}
        return counts, extra

    def snapshot(self, ops: OperationCounts) -> dict[str, Any]:
        """Plain values, with storage requests per micro-event (SPEC 12 P2)."""
        counts, extra = self.read()
        micro_events = counts.micro_events
        return {
            **extra,
            "counts": counts.as_dict(),
            "storage_operations": ops.as_dict(),
            "operations_per_micro_event": round(ops.total / micro_events, 4)
            if micro_events
            else None,
        }


TOTALS = TransformTotals()
