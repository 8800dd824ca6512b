"""Timing every storage round trip by kind, through the Azure SDK's request hooks.

`adapters.opcount` counts the requests the adapters make; this measures how long they take.
A `RequestTimer` gives each SDK client a pair of hooks (`raw_request_hook`,
`raw_response_hook`, which both the Table and the Blob clients accept): the first notes the
wall clock and the calling thread's CPU clock when the request leaves the pipeline's retry
policy, the second adds the differences to the request's kind when the response is back. So
each try is timed as one round trip (network, service, and the SDK's transport work on this
thread, which the CPU figure separates from waiting). Requests that get no response at all
(connection errors) are not timed. Opt-in: `adapters.wiring.transform_runtime(…,
request_timer=…)`; the function app does not time requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

Service = Literal["table", "blob"]
_STARTED = "request_timer_started"


@dataclass(slots=True)
class RequestTime:
    """Round trips of one kind: how many, their wall time and this thread's CPU time in them."""

    count: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def wait_s(self) -> float:
        """Wall time not spent on this thread's CPU: the network and the service."""
        return max(self.wall_s - self.cpu_s, 0.0)

    def as_dict(self) -> dict[str, float]:
        """For the bench's JSON."""
        return {
            "count": self.count,
            "wall_s": round(self.wall_s, 6),
            "cpu_s": round(self.cpu_s, 6),
            "wait_s": round(self.wait_s, 6),
            "mean_wall_ms": round(1000 * self.wall_s / self.count, 3) if self.count else 0.0,
            "mean_wait_ms": round(1000 * self.wait_s / self.count, 3) if self.count else 0.0,
        }


def request_kind(service: Service, method: str, url: str) -> str:
    """What a request is, in the terms of `adapters.opcount` (plus `*_setup` for creating
    tables and containers, which the counter does not count)."""
    parts = urlsplit(url)
    path, query = parts.path, parts.query
    method = method.upper()
    if service == "table":
        if path.endswith("/$batch"):
            return "table_transaction"
        if path.rstrip("/").endswith("/Tables") or "/Tables(" in path:
            return "table_setup"
        if method == "GET":
            return "table_read" if "PartitionKey=" in path else "table_query"
        return "table_write"
    if "restype=container" in query and "comp=list" not in query:
        return "blob_setup"
    return "blob_read" if method in ("GET", "HEAD") else "blob_write"


class RequestTimer:
    """Thread-safe totals of storage round trips by kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, RequestTime] = {}

    def hooks(self, service: Service) -> dict[str, Callable[[Any], None]]:
        """Keyword arguments for an SDK client of `service` that time its requests."""

        def on_request(request: Any) -> None:
            request.context[_STARTED] = (time.perf_counter(), time.thread_time())

        def on_response(response: Any) -> None:
            started = response.context.get(_STARTED)
            if started is None:
                return
            wall = time.perf_counter() - started[0]
            cpu = time.thread_time() - started[1]
            http = response.http_request
            self.add(request_kind(service, http.method, http.url), wall, cpu)

        return {"raw_request_hook": on_request, "raw_response_hook": on_response}

    def add(self, kind: str, wall_s: float, cpu_s: float) -> None:
        """Count one round trip of `kind`."""
        with self._lock:
            entry = self._totals.setdefault(kind, RequestTime())
            entry.count += 1
            entry.wall_s += wall_s
            entry.cpu_s += max(cpu_s, 0.0)

    def snapshot(self) -> dict[str, RequestTime]:
        """Independent copies of the totals so far, by kind."""
        with self._lock:
            return {k: RequestTime(v.count, v.wall_s, v.cpu_s) for k, v in self._totals.items()}
