"""Where `verify` reads what the pipeline produced: records and dead letters.

`RecordSource` is the port; `OfflineReplaySource` reads the folder that
`python -m transform replay … --out DIR` writes (SPEC 9). A Blob-backed source (containers
`conversations` and `deadletter`, SPEC 7-8) implements the same three methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from simulator.errors import InputError


@dataclass(frozen=True, slots=True)
class Found:
    """One record or dead letter as read: its JSON value, or why it could not be read."""

    location: str
    value: Any = None
    error: str | None = None


class RecordSource(Protocol):
    """What the pipeline wrote, wherever it lives."""

    def describe(self) -> str:
        """A short human description (`offline replay /runs/x`, `blob account/container`)."""
        ...

    def records(self) -> Iterator[Found]:
        """Every conversation record, latest revision, one per conversation."""
        ...

    def dead_letters(self) -> Iterator[Found]:
        """Every dead letter (SPEC 7 shape)."""
        ...


class OfflineReplaySource:
    """`DIR/conversations/*.json` and `DIR/deadletter.jsonl` from the transform's offline replay."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            msg = f"replay folder {folder} does not exist; run `python -m transform replay` first"
            raise InputError(msg)
        self.folder = folder
        self.conversations = folder / "conversations"
        if not self.conversations.is_dir():
            msg = f"{folder} has no conversations/ folder; is it a `transform replay --out` folder?"
            raise InputError(msg)
        self.deadletter = folder / "deadletter.jsonl"

    def describe(self) -> str:
        return f"offline replay {self.folder}"

    def count(self) -> int:
        """How many record files there are (for a progress bar)."""
        return sum(1 for _ in self.conversations.glob("*.json"))

    def records(self) -> Iterator[Found]:
        for path in sorted(self.conversations.glob("*.json")):
            location = str(path.relative_to(self.folder))
            try:
                yield Found(location, orjson.loads(path.read_bytes()))
            except (OSError, orjson.JSONDecodeError) as e:
                yield Found(location, error=f"unreadable record: {e}")

    def dead_letters(self) -> Iterator[Found]:
        if not self.deadletter.exists():
            return
        with self.deadletter.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                location = f"deadletter.jsonl:{number}"
                if not line.strip():
                    continue
                try:
                    yield Found(location, orjson.loads(line))
                except orjson.JSONDecodeError as e:
                    yield Found(location, error=f"unreadable dead letter: {e}")
