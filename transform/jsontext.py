"""Re-encoding decoded JSON as bytes, at any depth the parser accepts.

orjson reads documents nested up to 1,024 levels but writes only up to 254, so a payload taken
out of a JSON array (ingest forwards it alone; a rejection keeps it) may not re-encode. Past
that depth an iterative encoder takes over: no recursion, so no depth limit of its own.
"""

from __future__ import annotations

import json

import orjson


def dump_json(value: object) -> bytes:
    """JSON bytes of a decoded document (dicts, lists, strings, numbers, booleans, null)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _dump_deep(value).encode()


class _Text(str):
    """Output written as it is (brackets, separators, encoded keys)."""


def _dump_deep(value: object) -> str:
    out: list[str] = []
    pending: list[object] = [value]  # a stack: what is written next is on top
    while pending:
        item = pending.pop()
        if type(item) is _Text:
            out.append(item)
        elif isinstance(item, dict):
            pending.append(_Text("}"))
            for position, (key, child) in reversed(list(enumerate(item.items()))):
                pending.append(child)
                pending.append(_Text(json.dumps(str(key), ensure_ascii=False) + ":"))
                if position:
                    pending.append(_Text(","))
            pending.append(_Text("{"))
        elif isinstance(item, list):
            pending.append(_Text("]"))
            for position, child in reversed(list(enumerate(item))):
                pending.append(child)
                if position:
                    pending.append(_Text(","))
            pending.append(_Text("["))
        else:
            out.append(json.dumps(item, ensure_ascii=False, allow_nan=False))
    return "".join(out)
