"""Dead letters: which to list (filters), and replaying them through the ingest code.

Reading and marking the container is `adapters.deadletter_store`. Replaying goes through the
ingest code itself, so a replayed payload is checked, split per conversation and given the
same Event Hubs properties as a live one: either over HTTP to the webhook
(`adapters.webhook`, retried like Genesys), or in-process straight to the hub
(`adapters.wiring.ingest_runtime`). Payloads still bad become ingest dead letters again, under
ids derived from their bytes (replaying twice keeps one). A replayed blob gets `replayed_at` /
`replay_status` metadata; the consumer deduplicates whatever was applied before, so replaying
again is safe.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from adapters.deadletter_store import ListedLetter
from adapters.settings import IngestSettings
from adapters.webhook import RetryPolicy, post_with_retries
from adapters.wiring import ingest_runtime
from ingest.accept import SIGNATURE_HEADER, Request, sign
from ingest.metrics import MetricsRegistry
from ops.errors import UsageError
from schemas.record import DeadLetter
from schemas.timestamps import datetime_to_ms
from transform.deadletters import raw_bytes

STAGES = ("ingest", "transform")


@dataclass(frozen=True, slots=True)
class Filters:
    """Which letters: by stage, reason (exact), day range (inclusive), replayed or not."""

    stage: str | None = None
    reason: str | None = None
    since: date | None = None
    until: date | None = None
    replayed: bool | None = None

    def __post_init__(self) -> None:
        if self.stage is not None and self.stage not in STAGES:
            raise UsageError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.since and self.until and self.since > self.until:
            raise UsageError(f"--since {self.since} is after --until {self.until}")

    def prefix(self) -> str:
        """The narrowest blob-name prefix these filters allow."""
        if self.stage is None:
            return ""
        if self.since is not None and self.since == self.until:
            return f"{self.stage}/{self.since:%Y/%m/%d}/"
        return f"{self.stage}/"

    def keep(self, item: ListedLetter) -> bool:
        """Whether a listed letter passes every filter."""
        if self.stage is not None and item.stage != self.stage:
            return False
        if self.reason is not None and item.reason != self.reason:
            return False
        if self.since is not None and (item.day is None or item.day < self.since):
            return False
        if self.until is not None and (item.day is None or item.day > self.until):
            return False
        return self.replayed is None or (item.replayed_at is not None) == self.replayed


@dataclass(frozen=True, slots=True)
class Replayed:
    """What replaying one letter did."""

    name: str
    status: int
    outcome: str
    """accepted / rejected (dead-lettered again) / unavailable / refused."""
    detail: str


def _outcome(status: int) -> str:
    if status == 200:
        return "accepted"
    if status == 400:
        return "rejected"
    if status == 429 or status >= 500:
        return "unavailable"
    return "refused"


def _headers(letter: DeadLetter, body: bytes, secret: bytes | None) -> dict[str, str]:
    headers = {"content-type": "application/json", "x-replay-of": letter.id[:200]}
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    return headers


def replay_to_hub(
    letters: list[tuple[str, DeadLetter]], settings: IngestSettings
) -> list[Replayed]:
    """Through the ingest service in-process (checks, split, properties), to the hub."""
    return asyncio.run(_replay_to_hub(letters, settings))


async def _replay_to_hub(
    letters: list[tuple[str, DeadLetter]], settings: IngestSettings
) -> list[Replayed]:
    runtime = ingest_runtime(settings, MetricsRegistry())
    results: list[Replayed] = []
    try:
        for name, letter in letters:
            body = raw_bytes(letter)
            request = Request(
                body=body,
                headers=_headers(letter, body, settings.secret_bytes),
                received_at_ms=datetime_to_ms(datetime.now(UTC)),
                message_id=f"replay-{uuid.uuid4().hex}",
            )
            answer = await runtime.service.handle(request)
            error = str(answer.body.get("error") or answer.body.get("status") or "")
            results.append(Replayed(name, answer.status, _outcome(answer.status), error[:200]))
    finally:
        await runtime.close()
    return results


def replay_to_url(
    letters: list[tuple[str, DeadLetter]],
    url: str,
    *,
    function_key: str | None,
    secret: bytes | None,
    policy: RetryPolicy,
    timeout: float = 30.0,
) -> list[Replayed]:
    """POST each letter to the webhook, retrying 5xx and timeouts like Genesys does."""
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--url must be the webhook's http(s) URL, got {url!r}")
    base = {"x-functions-key": function_key} if function_key else {}
    bodies = []
    for _, letter in letters:
        body = raw_bytes(letter)
        bodies.append((body, {**base, **_headers(letter, body, secret)}))
    answers = post_with_retries(url, bodies, policy, timeout=timeout)
    return [
        Replayed(name, answer.status or 0, _outcome(answer.status or 0), answer.text[:200])
        for (name, _), answer in zip(letters, answers, strict=True)
    ]
