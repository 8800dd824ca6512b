"""The webhook's request handling: check, plan, store dead letters, send, answer (SPEC 6).

Every outcome is an `Answer` (status, JSON body, headers); nothing here raises for any input.
Order matters for "nothing half-written": dead letters are stored before the send (their ids
derive from the body, so a retried request rewrites the same ones), and 200 is answered only
after Event Hubs confirmed every event.

A request spanning several conversations is several sends (one partition key each). Event Hubs
has no transaction across partition keys, so if one fails after others succeeded the answer is
503 and the sender's retry writes those again: the consumer deduplicates micro-events by their
identity (SPEC 3), so the retry changes no record beyond its `duplicate_count`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingest import metrics as m
from ingest.accept import AcceptanceLimits, Plan, Request, check_request, plan
from ingest.breaker import BreakerState, CircuitBreaker
from ingest.errors import (
    BodyTooLarge,
    CircuitOpen,
    DeadLetterStoreFailed,
    IngestError,
    PublishFailed,
    Unavailable,
)
from ingest.ports import AsyncDeadLetterSink, EventPublisher
from schemas.record import DeadLetter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Plain values the service runs with (read from app settings at the edge)."""

    limits: AcceptanceLimits = field(default_factory=AcceptanceLimits)
    secret: bytes | None = None
    send_timeout_seconds: float = 10.0
    """Budget for the whole send, far below the 230 s HTTP limit of the Functions front end."""
    retry_after_seconds: float = 1.0
    """Retry-After for a failure while the breaker stays closed."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, free of any framework type."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class IngestService:
    """Turns one webhook request into Event Hubs events and dead letters, and an answer."""

    def __init__(
        self,
        *,
        publisher: EventPublisher,
        dead_letters: AsyncDeadLetterSink,
        breaker: CircuitBreaker,
        config: IngestConfig,
        monotonic: Callable[[], float],
        metrics: m.MetricsRegistry = m.REGISTRY,
    ) -> None:
        self._publisher = publisher
        self._dead_letters = dead_letters
        self._breaker = breaker
        self._config = config
        self._monotonic = monotonic
        self._metrics = metrics

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker around the publisher."""
        return self._breaker

    async def handle(self, request: Request) -> Answer:
        """Answer one request; never raises for anything the request holds."""
        started = self._monotonic()
        try:
            answer = await self._handle(request)
        except Unavailable as e:
            answer = self._unavailable(request, e)
        except IngestError as e:
            answer = self._refused(request, e)
        elapsed_ms = (self._monotonic() - started) * 1000
        self._metrics.observe(m.REQUEST_LATENCY_MS, elapsed_ms, status=str(answer.status))
        return answer

    async def _handle(self, request: Request) -> Answer:
        limits = self._config.limits
        check_request(request, limits, self._config.secret)
        the_plan = plan(request, limits)
        if the_plan.events and self._breaker.state is BreakerState.OPEN:
            # Refuse before storing anything: the sender retries the whole body anyway.
            raise self._circuit_open()
        if the_plan.dead_letters:
            await self._store(request, the_plan.dead_letters)
        if the_plan.nothing_accepted:
            return self._rejected(request, the_plan)
        if the_plan.only_heartbeats:
            return self._heartbeats(request, the_plan)
        send_ms = await self._send(request, the_plan)
        return self._accepted(request, the_plan, send_ms)

    async def _store(self, request: Request, letters: Sequence[DeadLetter]) -> None:
        try:
            async with asyncio.timeout(self._config.send_timeout_seconds):
                await asyncio.gather(*(self._dead_letters.write(letter) for letter in letters))
        except TimeoutError as e:
            raise DeadLetterStoreFailed(
                f"dead letters were not stored within {self._config.send_timeout_seconds} s "
                "(INGEST_SEND_TIMEOUT_SECONDS); retry later",
                self._config.retry_after_seconds,
            ) from e
        except Exception as e:  # whatever the sink raised, the rejection is not stored
            log.warning(
                "dead letter store failed message_id=%s letters=%s error=%r",
                request.message_id,
                len(letters),
                e,
            )
            raise DeadLetterStoreFailed(
                f"dead letters could not be stored ({type(e).__name__}); retry later",
                self._config.retry_after_seconds,
            ) from e

    def _circuit_open(self) -> CircuitOpen:
        self._metrics.inc(m.SEND_FAILURES, kind="circuit-open")
        wait = self._breaker.retry_after()
        return CircuitOpen(
            f"Event Hubs is failing; the circuit is open for another {wait:.1f} s: retry later",
            wait,
        )

    async def _send(self, request: Request, the_plan: Plan) -> float:
        """Send through the breaker; returns the send latency in milliseconds."""
        if not self._breaker.allow():
            raise self._circuit_open()
        timeout = self._config.send_timeout_seconds
        started = self._monotonic()
        try:
            async with asyncio.timeout(timeout):
                await self._publisher.publish(the_plan.events, timeout)
        except BodyTooLarge:
            # The hub answered (it told us its size limit): that is not a broker failure.
            self._breaker.record_success()
            raise
        except TimeoutError as e:
            raise self._send_failed(
                request, "timeout", f"Event Hubs did not confirm within {timeout} s", e
            ) from e
        except PublishFailed as e:
            raise self._send_failed(request, "error", str(e), e) from e
        except asyncio.CancelledError:
            self._breaker.record_failure()
            raise
        except Exception as e:  # an adapter bug must still be a 503, never a 500
            log.exception("publisher raised unexpectedly message_id=%s", request.message_id)
            raise self._send_failed(request, "error", f"{type(e).__name__}: {e}", e) from e
        self._breaker.record_success()
        elapsed_ms = (self._monotonic() - started) * 1000
        self._metrics.observe(m.SEND_LATENCY_MS, elapsed_ms)
        self._metrics.inc(m.EVENTS_SENT, len(the_plan.events))
        return elapsed_ms

    def _send_failed(
        self, request: Request, kind: str, detail: str, error: BaseException
    ) -> PublishFailed:
        self._breaker.record_failure()
        self._metrics.inc(m.SEND_FAILURES, kind=kind)
        state = self._breaker.state
        wait = (
            self._breaker.retry_after()
            if state is BreakerState.OPEN
            else self._config.retry_after_seconds
        )
        log.warning(
            "send failed message_id=%s kind=%s breaker=%s error=%s",
            request.message_id,
            kind,
            state,
            detail[:300],
        )
        return PublishFailed(f"{detail}: nothing was acknowledged, retry later", wait)

    def _heartbeats(self, request: Request, the_plan: Plan) -> Answer:
        """Heartbeats only: nothing to send or keep, and nothing wrong, so 200."""
        self._metrics.inc(m.REQUESTS, outcome="heartbeat", status="200")
        self._count_heartbeats(the_plan)
        log.info("heartbeat message_id=%s heartbeats=%s", request.message_id, the_plan.heartbeats)
        return Answer(
            200,
            {
                "status": "accepted",
                "message_id": request.message_id,
                "events": 0,
                "heartbeats": the_plan.heartbeats,
                "rejected": 0,
                "deadletter_ids": [],
                "conversations": 0,
                "micro_events": 0,
                "eventhub_events": 0,
            },
        )

    def _accepted(self, request: Request, the_plan: Plan, send_ms: float) -> Answer:
        self._metrics.inc(m.REQUESTS, outcome="accepted", status="200")
        self._metrics.inc(m.PAYLOADS_ACCEPTED, the_plan.accepted_payloads)
        if the_plan.partial_payloads:
            self._metrics.inc(m.PAYLOADS_PARTIAL, the_plan.partial_payloads)
        self._count_rejections(the_plan)
        self._count_heartbeats(the_plan)
        log.info(
            "accepted message_id=%s payloads=%s conversations=%s events=%s rejected=%s "
            "partial=%s heartbeats=%s send_ms=%.1f idempotency_key=%s",
            request.message_id,
            the_plan.accepted_payloads,
            the_plan.conversations,
            len(the_plan.events),
            the_plan.rejected_payloads,
            the_plan.partial_payloads,
            the_plan.heartbeats,
            send_ms,
            the_plan.events[0].properties.get("idempotency_key"),
        )
        return Answer(
            200,
            {
                "status": "accepted",
                "message_id": request.message_id,
                "events": the_plan.accepted_payloads,
                "heartbeats": the_plan.heartbeats,
                "rejected": the_plan.rejected_payloads,
                "deadletter_ids": [letter.id for letter in the_plan.dead_letters],
                "conversations": the_plan.conversations,
                "micro_events": the_plan.micro_events,
                "eventhub_events": len(the_plan.events),
            },
        )

    def _rejected(self, request: Request, the_plan: Plan) -> Answer:
        self._metrics.inc(m.REQUESTS, outcome="rejected", status="400")
        self._count_rejections(the_plan)
        self._count_heartbeats(the_plan)
        first = the_plan.dead_letters[0]
        log.warning(
            "rejected message_id=%s status=400 reason=%s payloads=%s heartbeats=%s "
            "deadletter_id=%s error=%s",
            request.message_id,
            first.reason,
            the_plan.payloads,
            the_plan.heartbeats,
            first.id,
            first.error[:200],
        )
        error = first.error
        if len(the_plan.dead_letters) > 1:
            error = f"none of the {the_plan.payloads} payloads is acceptable; the first: {error}"
        return Answer(
            400,
            {
                "status": "rejected",
                "error": error,
                "reason": first.reason,
                "message_id": request.message_id,
                "deadletter_id": first.id,
                "deadletter_ids": [letter.id for letter in the_plan.dead_letters],
                "rejected": the_plan.rejected_payloads,
            },
        )

    def _count_heartbeats(self, the_plan: Plan) -> None:
        if the_plan.heartbeats:
            self._metrics.inc(m.HEARTBEATS, the_plan.heartbeats)

    def _count_rejections(self, the_plan: Plan) -> None:
        for letter in the_plan.dead_letters:
            self._metrics.inc(m.PAYLOADS_REJECTED, reason=letter.reason)

    def _refused(self, request: Request, error: IngestError) -> Answer:
        self._metrics.inc(m.REQUESTS, outcome="refused", status=str(error.status))
        log.warning(
            "refused message_id=%s status=%s code=%s bytes=%s error=%s",
            request.message_id,
            error.status,
            error.code,
            len(request.body),
            str(error)[:200],
        )
        return Answer(
            error.status,
            {
                "status": "rejected",
                "code": error.code,
                "error": str(error),
                "message_id": request.message_id,
            },
        )

    def _unavailable(self, request: Request, error: Unavailable) -> Answer:
        self._metrics.inc(m.REQUESTS, outcome="unavailable", status="503")
        answer = unavailable_answer(error, request.message_id)
        log.warning(
            "unavailable message_id=%s code=%s retry_after_s=%s error=%s",
            request.message_id,
            error.code,
            answer.headers["Retry-After"],
            str(error)[:300],
        )
        return answer

    def health(self) -> Answer:
        """Breaker state for `GET /api/health`."""
        snapshot = self._breaker.snapshot()
        ok = snapshot["state"] == BreakerState.CLOSED
        return Answer(200, {"status": "ok" if ok else "degraded", "breaker": snapshot})


def unavailable_answer(error: Unavailable, message_id: str) -> Answer:
    """A 503 for failures outside the service (settings, wiring), in the same shape."""
    retry_after = max(1, math.ceil(error.retry_after_seconds))
    return Answer(
        503,
        {
            "status": "unavailable",
            "code": error.code,
            "error": str(error),
            "message_id": message_id,
            "retry_after_seconds": retry_after,
        },
        {"Retry-After": str(retry_after)},
    )
