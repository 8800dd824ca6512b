"""What `replay` resends: dead letters (Blob, an offline replay's deadletter.jsonl) or a capture.

A dead letter keeps the original bytes (`raw`, UTF-8 text or base64, SPEC 7): those are sent
again. Any other JSONL line is a delivery captured as sent, and is sent again as it is.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from adapters.settings import OutputSettings, app_environment
from simulator.errors import InputError
from simulator.send.delivery import Delivery
from simulator.verify.blob_source import BlobRecordSource
from simulator.verify.sources import Found

BLOB_SOURCE = "blob"
DEAD_LETTER_KEYS = frozenset({"stage", "reason", "raw"})


@dataclass(frozen=True, slots=True)
class Filters:
    """Which dead letters to resend (captured deliveries are always all resent)."""

    stages: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()

    def keep(self, letter: dict[str, Any]) -> bool:
        return (not self.stages or letter.get("stage") in self.stages) and (
            not self.reasons or letter.get("reason") in self.reasons
        )


def is_dead_letter(value: Any) -> bool:
    return isinstance(value, dict) and value.keys() >= DEAD_LETTER_KEYS


def raw_bytes(letter: dict[str, Any]) -> bytes:
    """The original bytes a dead letter kept."""
    raw = letter.get("raw")
    if not isinstance(raw, str):
        msg = f"dead letter {letter.get('id', '?')} has no raw text to resend"
        raise InputError(msg)
    if letter.get("raw_encoding") == "base64":
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as e:
            msg = f"dead letter {letter.get('id', '?')} has broken base64 in raw: {e}"
            raise InputError(msg) from e
    return raw.encode()


def _from_letters(found: Iterable[Found], filters: Filters) -> Iterator[bytes]:
    for item in found:
        if item.error is not None:
            msg = f"cannot read dead letter {item.location}: {item.error}"
            raise InputError(msg)
        if filters.keep(item.value):
            yield raw_bytes(item.value)


def _from_file(path: Path, filters: Filters) -> Iterator[bytes]:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as e:
        msg = f"cannot read {path}: {e.strerror}"
        raise InputError(msg) from e
    for line in lines:
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            value = None
        if is_dead_letter(value):
            if filters.keep(value):
                yield raw_bytes(value)
        else:  # a captured delivery, broken ones included: resent as they were
            yield line


def load(source: str, *, filters: Filters, settings: Path | None = None) -> list[Delivery]:
    """The bodies to resend, numbered from 1 in the order found."""
    if source == BLOB_SOURCE:
        with BlobRecordSource(OutputSettings.from_env(app_environment(settings))) as blob:
            bodies = list(_from_letters(blob.dead_letters(), filters))
    else:
        path = Path(source)
        if path.is_dir():
            for name in ("deadletter.jsonl", "deliveries.jsonl"):
                if (path / name).exists():
                    path = path / name
                    break
            else:
                msg = f"{source} has neither deadletter.jsonl nor deliveries.jsonl"
                raise InputError(msg)
        elif not path.exists():
            msg = f"{source} does not exist; pass a JSONL file, a folder, or `{BLOB_SOURCE}`"
            raise InputError(msg)
        bodies = list(_from_file(path, filters))
    return [Delivery(number, body) for number, body in enumerate(bodies, start=1)]
