"""Dead letters in Blob Storage: list with filters, show one, replay them.

Blobs are `<stage>/<yyyy>/<mm>/<dd>/<safe id>.json` with metadata `stage`, `reason`,
`deadletter_id` (`adapters.blob_deadletters`, which also parses them). Replaying goes through
the ingest code itself, so a replayed payload is checked, split per conversation and given the
same Event Hubs properties as a live one: either over HTTP to the webhook, or in-process
straight to the hub (`functions.ingest.build_runtime`). Payloads still bad become ingest dead
letters again, under ids derived from their bytes (replaying twice keeps one). A replayed blob
gets `replayed_at` / `replay_status` metadata; the consumer deduplicates whatever was applied
before, so replaying again is safe.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from adapters.blob_deadletters import read_letter
from functions.ingest import build_runtime
from functions.settings import IngestSettings
from ingest.accept import SIGNATURE_HEADER, Request, sign
from ingest.metrics import MetricsRegistry
from ops.errors import ConfigError, NotFound, Unreachable
from schemas.record import DeadLetter
from schemas.timestamps import datetime_to_ms
from simulator.delivery import RetryPolicy
from transform.deadletters import raw_bytes
from transform.keys import safe_key

REPLAYED_AT = "replayed_at"
REPLAY_STATUS = "replay_status"
STAGES = ("ingest", "transform")


@dataclass(frozen=True, slots=True)
class Listed:
    """One dead-letter blob, as listed (no download)."""

    name: str
    stage: str
    reason: str
    deadletter_id: str
    day: date | None
    size: int
    replayed_at: str | None


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
            raise ConfigError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.since and self.until and self.since > self.until:
            raise ConfigError(f"--since {self.since} is after --until {self.until}")

    def prefix(self) -> str:
        """The narrowest blob-name prefix these filters allow."""
        if self.stage is None:
            return ""
        if self.since is not None and self.since == self.until:
            return f"{self.stage}/{self.since:%Y/%m/%d}/"
        return f"{self.stage}/"

    def keep(self, item: Listed) -> bool:
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


def day_of(name: str) -> date | None:
    """The received day in a blob name (`<stage>/<yyyy>/<mm>/<dd>/…`), None for `undated`."""
    parts = name.split("/")
    try:
        return date(int(parts[1]), int(parts[2]), int(parts[3]))
    except (IndexError, ValueError):
        return None


class DeadLetterStore:
    """Reads (and marks) the dead-letter container."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    @property
    def name(self) -> str:
        """The container's name."""
        return str(self._container.container_name)

    def list(self, filters: Filters = Filters(), limit: int | None = None) -> Iterator[Listed]:
        """Letters passing `filters`, in name order (stage, then day)."""
        count = 0
        try:
            if not self._container.exists():
                return
            for blob in self._container.list_blobs(
                name_starts_with=filters.prefix() or None, include=["metadata"]
            ):
                metadata = blob.metadata or {}
                item = Listed(
                    name=blob.name,
                    stage=metadata.get("stage") or blob.name.split("/", 1)[0],
                    reason=metadata.get("reason", ""),
                    deadletter_id=metadata.get("deadletter_id", ""),
                    day=day_of(blob.name),
                    size=int(blob.size or 0),
                    replayed_at=metadata.get(REPLAYED_AT),
                )
                if filters.keep(item):
                    yield item
                    count += 1
                    if limit is not None and count >= limit:
                        return
        except AzureError as e:
            raise self._unreachable("list", e) from e

    def find(self, key: str) -> str:
        """The blob name of a letter given its blob name or its id."""
        if key.endswith(".json") and "/" in key:
            return key
        suffix = f"/{safe_key(key)}.json"
        for item in self.list():
            if item.name.endswith(suffix) or item.deadletter_id == key:
                return item.name
        raise NotFound(
            f"no dead letter {key!r} in container {self.name!r}; "
            "`python -m ops deadletters list` shows the ids and names there are"
        )

    def read(self, name: str) -> tuple[DeadLetter, dict[str, str]]:
        """A letter and its blob metadata."""
        try:
            blob = self._container.get_blob_client(name)
            downloaded = blob.download_blob()
            data = downloaded.readall()
            metadata = dict(downloaded.properties.metadata or {})
        except ResourceNotFoundError as e:
            raise NotFound(f"no dead letter blob {name!r} in container {self.name!r}") from e
        except AzureError as e:
            raise self._unreachable(f"read {name}", e) from e
        return read_letter(data), metadata

    def mark_replayed(self, name: str, metadata: Mapping[str, str], status: str) -> None:
        """Note on the blob that (and how) it was replayed; the letter itself stays."""
        marked = {
            **metadata,
            REPLAYED_AT: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            REPLAY_STATUS: status,
        }
        try:
            self._container.get_blob_client(name).set_blob_metadata(marked)
        except AzureError as e:
            raise self._unreachable(f"mark {name}", e) from e

    def _unreachable(self, what: str, error: AzureError) -> Unreachable:
        return Unreachable(
            f"could not {what} in dead-letter container {self.name!r}: {type(error).__name__}: "
            f"{str(error)[:300]}; check StateStorage and DEADLETTER_CONTAINER"
        )


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
    if status in (429, 503) or status >= 500:
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
    runtime = build_runtime(settings, MetricsRegistry())
    secret = (
        settings.webhook_secret.get_secret_value().encode() if settings.webhook_secret else None
    )
    results: list[Replayed] = []
    try:
        for name, letter in letters:
            body = raw_bytes(letter)
            request = Request(
                body=body,
                headers=_headers(letter, body, secret),
                received_at_ms=datetime_to_ms(datetime.now(UTC)),
                message_id=f"replay-{uuid.uuid4().hex}",
            )
            answer = await runtime.service.handle(request)
            error = str(answer.body.get("error") or answer.body.get("status") or "")
            results.append(Replayed(name, answer.status, _outcome(answer.status), error[:200]))
    finally:
        await runtime.publisher.close()
        await runtime.dead_letters.close()
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
        raise ConfigError(f"--url must be the webhook's http(s) URL, got {url!r}")
    results: list[Replayed] = []
    base = {"x-functions-key": function_key} if function_key else {}
    with httpx.Client(timeout=timeout) as client:
        for name, letter in letters:
            body = raw_bytes(letter)
            headers = {**base, **_headers(letter, body, secret)}
            status, detail = _post(client, url, body, headers, policy)
            results.append(Replayed(name, status, _outcome(status), detail[:200]))
    return results


def _post(
    client: httpx.Client, url: str, body: bytes, headers: dict[str, str], policy: RetryPolicy
) -> tuple[int, str]:
    delays = iter(policy.delays())
    while True:
        status: int | None
        try:
            response = client.post(url, content=body, headers=headers)
            status, detail = response.status_code, response.text
        except httpx.HTTPError as e:
            status, detail = None, f"{type(e).__name__}: {e}"
        if not policy.retryable(status):
            assert status is not None
            return status, detail
        delay = next(delays, None)
        if delay is None:
            return status or 0, detail
        time.sleep(delay)
