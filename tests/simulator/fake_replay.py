"""A replay folder as a perfect pipeline would write it, built from a data set's own truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from simulator.timeutil import iso, parse_iso


def perfect_record(truth: dict[str, Any]) -> dict[str, Any]:
    """The truth with consistent processing fields, as the transform would write it."""
    first_seen = parse_iso(truth["started_at"]) + 500
    return truth | {
        "revision": 1,
        "duplicate_count": 0,
        "late_event_count": 0,
        "first_seen_at": iso(first_seen),
        "finalized_at": iso(first_seen + 61_000),
    }


def dead_letter(line: int, raw: str, reason: str = "invalid") -> dict[str, Any]:
    return {
        "stage": "transform",
        "reason": reason,
        "error": "rejected by the fake pipeline",
        "received_at": "2026-11-24T08:00:00.000Z",
        "source": {"line": line},
        "raw": raw,
        "raw_encoding": "utf-8",
    }


def write_replay(dataset_dir: Path, out: Path) -> Path:
    """`out/conversations/*.json` and `out/deadletter.jsonl` that match the data set exactly."""
    conversations = out / "conversations"
    conversations.mkdir(parents=True)
    truth_lines = (dataset_dir / "truth.jsonl").read_bytes().splitlines()
    for n, line in enumerate(truth_lines):
        record = perfect_record(orjson.loads(line))
        (conversations / f"{n:05d}.json").write_bytes(orjson.dumps(record))
    manifest = orjson.loads((dataset_dir / "manifest.json").read_bytes())
    lines = (dataset_dir / "deliveries.jsonl").read_bytes().decode().splitlines()
    letters = []
    for entry in manifest["malformed"]:
        text = lines[entry["line"] - 1]
        if entry["element"] is not None:
            element = orjson.loads(text)[entry["element"]]
            text = orjson.dumps(element).decode()
        letters.append(orjson.dumps(dead_letter(entry["line"], text, entry["kind"])))
    (out / "deadletter.jsonl").write_bytes(b"".join(x + b"\n" for x in letters))
    return out


def edit_record(folder: Path, conversation_id: str, **changes: Any) -> Path:
    """Change fields of the record of `conversation_id` in a replay folder; return its path."""
    for path in sorted((folder / "conversations").glob("*.json")):
        record = orjson.loads(path.read_bytes())
        if record["conversation_id"] == conversation_id:
            path.write_bytes(orjson.dumps(record | changes))
            return path
    raise KeyError(conversation_id)
