"""The dead letters the pipeline stored: list, find, read, mark replayed, read all, delete.

Blobs are `<stage>/<yyyy>/<mm>/<dd>/<safe id>.json` with metadata `stage`, `reason`,
`deadletter_id` (written by `adapters.blob_deadletters`). A letter written again on a later
day sits under another date prefix with the same id, so `letters` keeps one per id (and
`every_blob` does not: erasure must see every copy). Reading goes through a `ContainerReader`
(Blob Storage, or its in-memory twin); one built with its own clients
(`adapters.wiring.deadletter_store`) closes them with itself.

`DeadLetterPurge` is the local stack's stand-in for the lifecycle rule that deletes dead letters
in Azure (`DEADLETTER_PURGE=timer`): Azurite has no lifecycle management.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pydantic import ValidationError

from adapters.blob_deadletters import read_letter
from adapters.containers import ContainerReader
from adapters.owned import ClosesOwned
from schemas.record import DeadLetter
from transform.keys import safe_key

log = logging.getLogger(__name__)

REPLAYED_AT = "replayed_at"
REPLAY_STATUS = "replay_status"
PURGE_INTERVAL = timedelta(hours=1)
"""The purge lists the container at most this often (per worker process)."""


@dataclass(frozen=True, slots=True)
class ListedLetter:
    """One dead-letter blob, as listed (no download)."""

    name: str
    stage: str
    reason: str
    deadletter_id: str
    day: date | None
    size: int
    replayed_at: str | None
    created: datetime | None = None
    """The blob's creation time (a replay's mark leaves it): what retention counts from."""


def day_of(name: str) -> date | None:
    """The received day in a blob name (`<stage>/<yyyy>/<mm>/<dd>/…`), None for `undated`."""
    parts = name.split("/")
    try:
        return date(int(parts[1]), int(parts[2]), int(parts[3]))
    except (IndexError, ValueError):
        return None


class DeadLetterStore(ClosesOwned):
    """The dead-letter container, read (and marked) through a `ContainerReader`."""

    def __init__(self, container: ContainerReader, *, owned: ExitStack | None = None) -> None:
        """`owned`: the clients under `container` this store closes (None: the caller's)."""
        self._container = container
        self._owned = owned or ExitStack()

    @property
    def name(self) -> str:
        """The container's name."""
        return self._container.name

    def describe(self) -> str:
        """`<account>/<container>`."""
        return self._container.describe()

    def list(
        self,
        prefix: str = "",
        keep: Callable[[ListedLetter], bool] | None = None,
        limit: int | None = None,
    ) -> Iterator[ListedLetter]:
        """Letters under `prefix` that `keep` keeps, in name order (stage, then day)."""
        count = 0
        for blob in self._container.list(prefix):
            item = ListedLetter(
                name=blob.name,
                stage=blob.metadata.get("stage") or blob.name.split("/", 1)[0],
                reason=blob.metadata.get("reason", ""),
                deadletter_id=blob.metadata.get("deadletter_id", ""),
                day=day_of(blob.name),
                size=blob.size,
                replayed_at=blob.metadata.get(REPLAYED_AT),
                created=blob.created,
            )
            if keep is None or keep(item):
                yield item
                count += 1
                if limit is not None and count >= limit:
                    return

    def find(self, key: str) -> str | None:
        """The blob name of a letter given its blob name or its id (None: no such letter)."""
        if key.endswith(".json") and "/" in key:
            return key
        suffix = f"/{safe_key(key)}.json"
        for item in self.list():
            if item.name.endswith(suffix) or item.deadletter_id == key:
                return item.name
        return None

    def read(self, name: str) -> tuple[DeadLetter, dict[str, str]] | None:
        """A letter and its blob metadata (None: no such blob)."""
        found = self._container.read(name)
        if found is None:
            return None
        data, metadata = found
        return read_letter(data), metadata

    def mark_replayed(
        self, name: str, metadata: Mapping[str, str], status: str, at: datetime
    ) -> None:
        """Note on the blob that (and how) it was replayed; the letter itself stays."""
        marked = {
            **metadata,
            REPLAYED_AT: at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            REPLAY_STATUS: status,
        }
        self._container.set_metadata(name, marked)

    def exists(self, name: str) -> bool:
        """Whether a dead-letter blob is there."""
        return self._container.read(name) is not None

    def delete(self, name: str) -> bool:
        """Delete one dead-letter blob; False when it was gone already."""
        return self._container.delete(name)

    def every_blob(self) -> Iterator[tuple[str, bytes | str]]:
        """Every blob's bytes in name order, copies of one id included, or a text saying why
        it could not be read."""
        names = [blob.name for blob in self._container.list()]
        yield from self._container.read_many(names)

    def letters(self) -> Iterator[tuple[str, DeadLetter | str]]:
        """Every letter once (by id) in name order, or a text saying why a blob is unreadable."""
        names = [blob.name for blob in self._container.list()]
        seen: set[str] = set()
        for name, data in self._container.read_many(names):
            if isinstance(data, str):
                yield name, data
                continue
            try:
                letter = read_letter(data)
            except ValidationError as e:
                yield name, f"unreadable dead letter: {str(e)[:200]}"
                continue
            if letter.id in seen:
                continue
            seen.add(letter.id)
            yield name, letter


@dataclass(frozen=True, slots=True)
class PurgeOutcome:
    """What one purge did."""

    listed: int
    deleted: int
    cutoff: datetime
    """Letters created before this were deleted."""


class DeadLetterPurge:
    """Deletes dead letters created more than `retention` ago, listing at most once per
    `interval`: the lifecycle rule's job where there is none (Azurite, `DEADLETTER_PURGE=timer`).

    Time is the caller's `now` (the timer's clock), so tests move it. Letters without a creation
    time are left alone; one that is gone already (another instance purged it) is not counted.
    """

    def __init__(
        self, store: DeadLetterStore, retention: timedelta, interval: timedelta = PURGE_INTERVAL
    ) -> None:
        if retention < timedelta(0) or interval < timedelta(0):
            raise ValueError(f"retention and interval must be >= 0, got {retention}, {interval}")
        self._store = store
        self._retention = retention
        self._interval = interval
        self._next_at: datetime | None = None

    def due(self, now: datetime) -> bool:
        """Whether `run(now)` would list the container."""
        return self._next_at is None or now >= self._next_at

    def run(self, now: datetime) -> PurgeOutcome | None:
        """Purge if the interval has passed since the last run (None: not yet)."""
        if not self.due(now):
            return None
        self._next_at = now + self._interval
        cutoff = now - self._retention
        listed = deleted = 0
        expired: list[str] = []
        for item in self._store.list():
            listed += 1
            if item.created is not None and item.created < cutoff:
                expired.append(item.name)
        for name in expired:  # listed first: deleting while a listing pages on may skip blobs
            if self._store.delete(name):
                deleted += 1
        if deleted:
            log.info(
                "dead letters purged container=%s deleted=%s listed=%s cutoff=%s",
                self._store.name,
                deleted,
                listed,
                cutoff.isoformat(),
            )
        return PurgeOutcome(listed, deleted, cutoff)
