"""A deliberately small reader of the simulator's own output, to check its files in tests.

It knows only what the simulator writes (it is not a second transform): which lines are
arrays, which elements the manifest calls malformed, and how many micro-events each valid
payload carries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

LINE_LEVEL = frozenset({"invalid-json", "truncated", "not-object"})


@dataclass(frozen=True)
class Element:
    line: int
    index: int | None
    value: Any
    malformed: dict[str, Any] | None


def parse(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return orjson.JSONDecodeError


def elements(folder: Path, manifest: dict[str, Any]) -> Iterator[Element]:
    """Every delivered element in order; malformed ones carry their manifest entry."""
    bad = {(m["line"], m["element"]): m for m in manifest["malformed"]}
    for number, line in enumerate((folder / "deliveries.jsonl").read_bytes().splitlines(), 1):
        value = parse(line)
        if (number, None) in bad:
            yield Element(number, None, value, bad[number, None])
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield Element(number, i, item, bad.get((number, i)))
        else:
            yield Element(number, None, value, None)


def conversation_id(payload: dict[str, Any]) -> str:
    if "data" in payload:
        return str(payload["data"]["id"])
    body = payload.get("detail", payload)["eventBody"]
    return str(body["conversationId"])


def micro_events(payload: dict[str, Any]) -> int:
    """Valid micro-events in a payload (details with an integer-like sequence, or one)."""
    if "data" not in payload:
        return 1
    return sum(1 for d in payload["data"]["details"] if str(d.get("sequence")).isdigit())
