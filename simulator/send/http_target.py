"""Deliveries to the ingest webhook over HTTP, the way their senders send them.

One keep-alive HTTP client (`adapters.webhook`); at most `concurrency` requests in flight (a retry
waiting out its back-off holds no slot, so an outage does not stall new sends: Genesys keeps
sending while it retries). Bodies go as they are, malformed ones included: ingest answers 400
and dead-letters them.

Two routes. A delivery that is one Amazon EventBridge event (`detail-type`, `source`, `detail`:
the `eventbridge` format) goes as an EventBridge API destination sends it: its headers (no
signature: EventBridge cannot compute one), the connection's API key as `x-functions-key`, a
5-s timeout, and its retry policy (`RetryPolicy.eventbridge`: 429 and 5xx, exponential backoff
with jitter, `Retry-After` honoured, given up past the maximum event age, where EventBridge
would put the event in the rule's dead-letter queue). Everything else goes as Genesys' webhook
or a relay sends it, with `X-Request-Id: simulator-line-<n>`, which ingest keeps in its dead
letters so `verify` can tie a letter to its delivery line, and signed when there is a secret.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from random import Random
from urllib.parse import urlsplit, urlunsplit

import orjson

from adapters.webhook import RetryPolicy, async_client, post_once
from ingest.accept import sign
from simulator.errors import UsageError
from simulator.send.delivery import (
    EVENTBRIDGE,
    WEBHOOK,
    Attempt,
    Delivery,
    Outcome,
    deliver_with_retries,
)

INGEST_ROUTE = "/api/v1/genesys/events"
SIGNATURE_HEADER = "X-Signature-256"
REQUEST_ID_HEADER = "X-Request-Id"
DEFAULT_TIMEOUT_S = 15.0
"""Above ingest's own send budget (10 s), so a slow 503 arrives as an answer, not a timeout."""
FUNCTION_KEY_HEADER = "x-functions-key"
"""The header the EventBridge connection sends the function key in (its API-key auth)."""
DEFAULT_FUNCTION_KEY = "local-function-key"
"""The local host, like `func start`, does not check function keys."""
EVENTBRIDGE_HEADERS = {
    # "Headers included in requests to API destinations", EventBridge user guide
    # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-api-destinations.html): these
    # five, plus Content-Length and Host, plus the connection's authorization header. The table
    # lists no `x-amz-*` or `aws-*` header, so none is sent; the event's `id` is in the body.
    "User-Agent": "Amazon/EventBridge/ApiDestinations",
    "Content-Type": "application/json; charset=utf-8",
    "Range": "bytes=0-1048575",
    "Accept-Encoding": "gzip,deflate",
    "Connection": "close",
}


def route_of(body: bytes) -> str:
    """`eventbridge` for a body that is one EventBridge event, else `webhook`."""
    if b'"detail-type"' not in body:  # most bodies: no parse needed
        return WEBHOOK
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return WEBHOOK
    is_event = (
        isinstance(document, dict)
        and isinstance(document.get("detail-type"), str)
        and isinstance(document.get("detail"), dict)
        and "source" in document
    )
    return EVENTBRIDGE if is_event else WEBHOOK


def ingest_url(target: str) -> str:
    """`http://host:port` alone means the ingest route on it; a full URL is used as given."""
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        msg = f"--target must be an http(s) URL such as http://127.0.0.1:7071, got {target!r}"
        raise UsageError(msg)
    if parts.path in ("", "/"):
        return urlunsplit((parts.scheme, parts.netloc, INGEST_ROUTE, parts.query, ""))
    return target


class HttpTarget:
    """`Target` posting each delivery to ingest the way its route's sender does."""

    def __init__(
        self,
        url: str,
        *,
        secret: bytes | None = None,
        policy: RetryPolicy | None = None,
        eventbridge_policy: RetryPolicy | None = None,
        eventbridge_route: bool = True,
        function_key: str = DEFAULT_FUNCTION_KEY,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        concurrency: int = 16,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`eventbridge_route` False sends EventBridge events as a relay would (webhook)."""
        if concurrency < 1:
            msg = f"--concurrency must be at least 1, got {concurrency}"
            raise UsageError(msg)
        self.url = ingest_url(url)
        self.secret = secret
        self.policy = policy or RetryPolicy()
        self.eventbridge_policy = eventbridge_policy or RetryPolicy.eventbridge()
        self.eventbridge_route = eventbridge_route
        self.function_key = function_key
        self.sleep = sleep
        self._slots = asyncio.Semaphore(concurrency)
        self._client = async_client(concurrency, timeout_s)
        # httpx adds `Accept: */*` to every request; EventBridge's documented headers have no
        # Accept, and ingest reads none.
        del self._client.headers["accept"]

    def route(self, delivery: Delivery) -> str:
        """The route a delivery goes by (`eventbridge` only while that route is on)."""
        return route_of(delivery.body) if self.eventbridge_route else WEBHOOK

    def headers(self, delivery: Delivery, route: str = WEBHOOK) -> dict[str, str]:
        if route == EVENTBRIDGE:
            return {**EVENTBRIDGE_HEADERS, FUNCTION_KEY_HEADER: self.function_key}
        headers = {
            "Content-Type": "application/json",
            REQUEST_ID_HEADER: f"simulator-line-{delivery.line}",
            "User-Agent": "genesys-simulator",
        }
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign(delivery.body, self.secret)  # ingest's own
        return headers

    async def _attempt(
        self, delivery: Delivery, headers: dict[str, str], timeout_s: float | None
    ) -> Attempt:
        async with self._slots:
            started = time.time()
            answer = await post_once(
                self._client, self.url, delivery.body, headers, timeout_s=timeout_s
            )
            error = None if answer.ok else answer.text[:200]
            return Attempt(answer.status, started, answer.latency_ms, error, answer.retry_after_s)

    async def deliver(self, delivery: Delivery) -> Outcome:
        route = self.route(delivery)
        headers = self.headers(delivery, route)
        policy = self.eventbridge_policy if route == EVENTBRIDGE else self.policy
        return await deliver_with_retries(
            delivery.line,
            lambda: self._attempt(delivery, headers, policy.timeout_s),
            policy,
            self.sleep,
            # Jitter from the line number: the same waits on every run of a data set.
            rng=Random(f"eventbridge:{delivery.line}"),
            route=route,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
