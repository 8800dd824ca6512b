"""Reading the dead letters the pipeline stored: list, find, read, mark replayed, read all.

Blobs are `<stage>/<yyyy>/<mm>/<dd>/<safe id>.json` with metadata `stage`, `reason`,
`deadletter_id` (written by `adapters.blob_deadletters`). A letter written again on a later
day sits under another date prefix with the same id, so `letters` keeps one per id. Reading
goes through a `ContainerReader` (Blob Storage, or its in-memory twin).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import ValidationError

from adapters.blob_deadletters import read_letter
from adapters.containers import ContainerReader
from schemas.record import DeadLetter
from transform.keys import safe_key

REPLAYED_AT = "replayed_at"
REPLAY_STATUS = "replay_status"


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


def day_of(name: str) -> date | None:
    """The received day in a blob name (`<stage>/<yyyy>/<mm>/<dd>/…`), None for `undated`."""
    parts = name.split("/")
    try:
        return date(int(parts[1]), int(parts[2]), int(parts[3]))
    except (IndexError, ValueError):
        return None


class DeadLetterStore:
    """The dead-letter container, read (and marked) through a `ContainerReader`."""

    def __init__(self, container: ContainerReader) -> None:
        self._container = container

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
