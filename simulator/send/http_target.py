"""Deliveries to the ingest webhook over HTTP, the way Genesys sends them.

One keep-alive HTTP client (`adapters.webhook`); at most `concurrency` requests in flight (a retry
waiting out its back-off holds no slot, so an outage does not stall new sends: Genesys keeps
sending while it retries). Bodies go as they are, malformed ones included: ingest answers 400
and dead-letters them. Each request carries `X-Request-Id: simulator-line-<n>`, which ingest
keeps in its dead letters, so `verify` can tie a letter to its delivery line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

from adapters.webhook import RetryPolicy, async_client, post_once
from ingest.accept import sign
from simulator.errors import UsageError
from simulator.send.delivery import Attempt, Delivery, Outcome, deliver_with_retries

INGEST_ROUTE = "/api/v1/genesys/events"
SIGNATURE_HEADER = "X-Signature-256"
REQUEST_ID_HEADER = "X-Request-Id"
DEFAULT_TIMEOUT_S = 15.0
"""Above ingest's own send budget (10 s), so a slow 503 arrives as an answer, not a timeout."""


def ingest_url(target: str) -> str:
    """`http://host:port` alone means the ingest route on it; a full URL is used as given."""
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        msg = f"--target must be an http(s) URL such as http://127.0.0.1:7071, got {target!r}"
        raise UsageError(msg)
    if parts.path in ("", "/"):
        return urlunsplit((parts.scheme, parts.netloc, INGEST_ROUTE, parts.query, ""))
    return target


def signature(body: bytes, secret: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the body>` (SPEC 6, as ingest checks it)."""
    return sign(body, secret)


class HttpTarget:
    """`Target` posting each delivery to ingest, with Genesys-style retries."""

    def __init__(
        self,
        url: str,
        *,
        secret: bytes | None = None,
        policy: RetryPolicy | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        concurrency: int = 16,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if concurrency < 1:
            msg = f"--concurrency must be at least 1, got {concurrency}"
            raise UsageError(msg)
        self.url = ingest_url(url)
        self.secret = secret
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self._slots = asyncio.Semaphore(concurrency)
        self._client = async_client(concurrency, timeout_s)

    def headers(self, delivery: Delivery) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            REQUEST_ID_HEADER: f"simulator-line-{delivery.line}",
            "User-Agent": "genesys-simulator",
        }
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = signature(delivery.body, self.secret)
        return headers

    async def _attempt(self, delivery: Delivery, headers: dict[str, str]) -> Attempt:
        async with self._slots:
            started = time.time()
            answer = await post_once(self._client, self.url, delivery.body, headers)
            error = None if answer.ok else answer.text[:200]
            return Attempt(answer.status, started, answer.latency_ms, error)

    async def deliver(self, delivery: Delivery) -> Outcome:
        headers = self.headers(delivery)
        return await deliver_with_retries(
            delivery.line, lambda: self._attempt(delivery, headers), self.policy, self.sleep
        )

    async def aclose(self) -> None:
        await self._client.aclose()
