"""Fault injection on the local stack during a run: kill -9 the consumer host, stop Event Hubs,
stop Azurite, each for a while, in turn, repeatedly (SPEC 10).

A background thread follows the schedule while the send runs: fault *i* starts at
`first_after + i × every`, is of kind `kinds[i % len(kinds)]`, lasts `duration`, and always
ends with the part restarted and healthy, even when the send finished meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from simulator.errors import UsageError

log = logging.getLogger(__name__)

HOST = "host"
EVENTHUBS = "eventhubs"
AZURITE = "azurite"
FAULT_KINDS = (HOST, EVENTHUBS, AZURITE)
RESTART_ATTEMPTS = 3


class StackControl(Protocol):
    """What a fault needs from the stack (a `simulator.run.runstack.RunStack`)."""

    def kill_host(self) -> None: ...

    def start_host(self) -> None: ...

    def stop_eventhubs(self) -> None: ...

    def start_eventhubs(self) -> None: ...

    def stop_azurite(self) -> None: ...

    def start_azurite(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The schedule: which kinds, how often, for how long."""

    kinds: tuple[str, ...] = FAULT_KINDS
    every_s: float = 30.0
    duration_s: float = 5.0
    first_after_s: float = 10.0

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown or not self.kinds:
            msg = (
                f"fault kinds must be some of {', '.join(FAULT_KINDS)}; got {','.join(self.kinds)}"
            )
            raise UsageError(msg)
        if self.every_s <= self.duration_s:
            msg = (
                f"--fault-every ({self.every_s:g} s) must be longer than --fault-duration "
                f"({self.duration_s:g} s): faults do not overlap"
            )
            raise UsageError(msg)
        if self.duration_s < 0 or self.first_after_s < 0:
            msg = "fault duration and start must be ≥ 0 seconds"
            raise UsageError(msg)

    @classmethod
    def parse_kinds(cls, text: str) -> tuple[str, ...]:
        return tuple(k.strip() for k in text.split(",") if k.strip())


@dataclass(slots=True)
class FaultEvent:
    """One fault as it happened (wall-clock epoch seconds)."""

    kind: str
    started_at: float
    stopped_at: float = 0.0
    """When the part was down (killed or stopped)."""
    recovered_at: float | None = None
    """When it was healthy again; None if it never came back."""
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "recovered_at": self.recovered_at,
            "down_seconds": None
            if self.recovered_at is None
            else round(self.recovered_at - self.started_at, 3),
            "error": self.error,
        }


@dataclass
class FaultInjector:
    """Runs the plan on a thread until `stop()`; the fault in progress is always completed."""

    plan: FaultPlan
    control: StackControl
    restart_pause_s: float = 1.0
    """Pause before retrying a failed restart, times the attempt number."""
    events: list[FaultEvent] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fault-injector", daemon=True)
        self._thread.start()

    def stop(self) -> list[FaultEvent]:
        """No new faults; wait for the current one to end with its part restarted."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.events

    @property
    def failed(self) -> list[FaultEvent]:
        return [e for e in self.events if e.recovered_at is None]

    def _run(self) -> None:
        began = time.monotonic()
        index = 0
        while True:
            due = began + self.plan.first_after_s + index * self.plan.every_s
            if self._stop.wait(max(due - time.monotonic(), 0)):
                return
            kind = self.plan.kinds[index % len(self.plan.kinds)]
            self.events.append(self._inject(kind))
            if self.events[-1].recovered_at is None:
                return  # a part that does not come back ends the schedule: the run reports it
            index += 1

    def _inject(self, kind: str) -> FaultEvent:
        down, up = {
            HOST: (self.control.kill_host, self.control.start_host),
            EVENTHUBS: (self.control.stop_eventhubs, self.control.start_eventhubs),
            AZURITE: (self.control.stop_azurite, self.control.start_azurite),
        }[kind]
        event = FaultEvent(kind, time.time())
        log.info("fault start kind=%s", kind)
        try:
            down()
        except Exception as e:  # a fault that cannot even start is reported, not fatal
            event.error = f"could not stop {kind}: {e}"
        event.stopped_at = time.time()
        time.sleep(self.plan.duration_s)  # the outage itself; never cut short
        for attempt in range(1, RESTART_ATTEMPTS + 1):
            try:
                up()
            except Exception as e:  # retried: a port may linger a moment after a kill
                event.error = f"restart {attempt} of {kind} failed: {str(e)[:300]}"
                time.sleep(attempt * self.restart_pause_s)
                continue
            event.recovered_at = time.time()
            break
        log.info("fault end kind=%s recovered=%s", kind, event.recovered_at is not None)
        return event
