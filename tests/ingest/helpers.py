"""Shared builders for the ingest tests: requests, headers, payloads of the three formats, and
the service over the in-memory twins (`Rig`) with its breaker on a clock the test moves."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from adapters.blob_deadletters import InMemoryAsyncDeadLetterSink
from adapters.eventhub_producer import InMemoryEventPublisher
from ingest import metrics as m
from ingest.accept import AcceptanceLimits, Request, lower_headers, sign
from ingest.breaker import CircuitBreaker
from ingest.service import Answer, IngestConfig, IngestService
from tests.unit.builders import Step, envelope, eventbridge, notification
from transform.normalize import parse_delivery

RECEIVED_MS = 1_795_510_800_000  # 2026-11-24T09:00:00.000Z
SECRET = b"s3cret-for-tests"
JSON = {"Content-Type": "application/json"}

__all__ = ["Step", "envelope", "eventbridge", "notification"]


def voice(
    conversation_id: str, created: float = 0, *, disconnected: bool = False
) -> dict[str, Any]:
    """A small envelope: ringing, connected (and disconnected)."""
    steps = [
        Step("conversation:state", created, {"status": "ringing"}),
        Step("conversation:state", created + 1, {"status": "connected"}),
    ]
    if disconnected:
        steps.append(Step("conversation:state", created + 60, {"status": "disconnected"}))
    return envelope(conversation_id, created, steps)


def identities(body: bytes) -> set[tuple[str, str]]:
    """What the transform would apply from a body: (conversation, micro-event identity)."""
    return {(e.conversation_id, e.identity) for e in parse_delivery(body).events}


def body_of(document: object) -> bytes:
    """JSON bytes of a payload or an array of payloads."""
    return orjson.dumps(document)


def request(
    body: bytes | object,
    headers: Mapping[str, str] | None = None,
    *,
    secret: bytes | None = None,
    message_id: str = "m-1",
    received_ms: int = RECEIVED_MS,
) -> Request:
    """A core request; JSON content type unless headers say otherwise; signed if `secret`."""
    raw = body if isinstance(body, bytes) else body_of(body)
    merged = {**JSON, **(headers or {})}
    if secret is not None:
        merged["X-Signature-256"] = sign(raw, secret)
    return Request(
        body=raw,
        headers=lower_headers(merged),
        received_at_ms=received_ms,
        message_id=message_id,
    )


@dataclass
class FakeClock:
    """Monotonic seconds the test moves."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Rig:
    """A service over twins, with the breaker on a fake clock."""

    publisher: InMemoryEventPublisher = field(default_factory=InMemoryEventPublisher)
    sink: InMemoryAsyncDeadLetterSink = field(default_factory=InMemoryAsyncDeadLetterSink)
    clock: FakeClock = field(default_factory=FakeClock)
    metrics: m.MetricsRegistry = field(default_factory=m.MetricsRegistry)
    secret: bytes | None = None
    timeout: float = 2.0
    threshold: int = 3
    open_seconds: float = 30.0
    limits: AcceptanceLimits = field(default_factory=AcceptanceLimits)
    service: IngestService = field(init=False)

    def __post_init__(self) -> None:
        self.service = IngestService(
            publisher=self.publisher,
            dead_letters=self.sink,
            breaker=CircuitBreaker(self.threshold, self.open_seconds, self.clock),
            config=IngestConfig(
                limits=self.limits, secret=self.secret, send_timeout_seconds=self.timeout
            ),
            monotonic=time.monotonic,
            metrics=self.metrics,
        )

    async def send(self, document: bytes | object, **headers: str) -> Answer:
        return await self.service.handle(request(document, headers, secret=self.secret))
