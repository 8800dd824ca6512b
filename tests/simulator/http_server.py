"""A tiny scripted HTTP server for the sender's tests: records every request, answers per script."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    at: float  # time.monotonic()
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def line(self) -> int | None:
        request_id = self.headers.get("x-request-id", "")
        return int(request_id.rsplit("-", 1)[1]) if request_id.startswith("simulator-") else None


@dataclass(frozen=True)
class Answer:
    status: int = 200
    delay_s: float = 0.0
    body: bytes = b'{"status":"accepted"}'


Script = Callable[[Seen, int], Answer]
"""(request, how many requests for the same line came before it) → the answer."""


def always_ok(seen: Seen, before: int) -> Answer:
    return Answer()


@dataclass
class Recorder:
    script: Script = always_ok
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def by_line(self, line: int) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.line == line]


@contextmanager
def serve(script: Script = always_ok) -> Iterator[tuple[str, Recorder]]:
    """Serve on a free loopback port; yields the base URL and the recorder."""
    recorder = Recorder(script)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the Functions host

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen = Seen(time.monotonic(), self.path, headers, body)
            with recorder.lock:
                before = sum(1 for s in recorder.seen if s.line == seen.line)
                recorder.seen.append(seen)
            answer = recorder.script(seen, before)
            if answer.delay_s:
                time.sleep(answer.delay_s)
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and went away: that is the point of some tests

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # the default 5 refuses connections under a burst

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorder
    finally:
        server.shutdown()
        server.server_close()
