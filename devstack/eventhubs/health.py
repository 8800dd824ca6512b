"""The health endpoint (`GET /health`, JSON) and a client-side `wait_healthy` helper.

Like the official emulator's port 5300: 200 with the hubs and their partitions once the AMQP
listener is up, so scripts can wait on it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import time
from collections.abc import Callable
from typing import Any

_LOG = logging.getLogger(__name__)

HEALTH_PATH = "/health"
_MAX_REQUEST_HEAD = 8192


async def serve_health(
    host: str, port: int, report: Callable[[], dict[str, Any]]
) -> asyncio.Server:
    """Start the HTTP server; `report` builds the JSON body of each answer."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, _, rest = head.decode("latin-1").partition(" ")
            path = rest.partition(" ")[0].split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, body = "405 Method Not Allowed", {"error": "use GET"}
            elif path != HEALTH_PATH:
                status, body = "404 Not Found", {"error": f"try GET {HEALTH_PATH}"}
            else:
                status, body = "200 OK", report()
            payload = json.dumps(body, indent=2).encode()
            writer.write(
                (
                    f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
                ).encode()
            )
            if method != "HEAD":
                writer.write(payload)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except ConnectionError as e:
            _LOG.debug("health request dropped error=%s", e)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port, limit=_MAX_REQUEST_HEAD)


def fetch_health(host: str, port: int, timeout: float = 2.0) -> dict[str, Any]:
    """GET the health report once; raises OSError or ValueError when it is not healthy."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", HEALTH_PATH)
        response = connection.getresponse()
        body = response.read()
    except http.client.HTTPException as e:  # something else on the port, or a cut answer
        raise ValueError(f"health endpoint did not answer HTTP: {e!r}") from e
    finally:
        connection.close()
    if response.status != 200:
        raise ValueError(f"health endpoint answered {response.status}")
    report = json.loads(body)
    if not isinstance(report, dict) or report.get("status") != "healthy":
        raise ValueError(f"health endpoint reports {report!r}")
    return report


def wait_healthy(
    host: str = "127.0.0.1", port: int = 5300, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll the health endpoint until it answers healthy; return its report.

    Raises TimeoutError (naming the last failure) when `timeout` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            return fetch_health(host, port, timeout=min(2.0, max(0.1, timeout)))
        except (OSError, ValueError) as e:
            last_error = e
        if time.monotonic() >= deadline:
            msg = (
                f"the Event Hubs emulator at http://{host}:{port}{HEALTH_PATH} was not healthy"
                f" within {timeout:g} s (last error: {last_error}); is it running?"
            )
            raise TimeoutError(msg)
        time.sleep(0.1)
