"""The obvious script a data engineer writes first: the reference the replay is measured against.

`json.loads` each line, walk `data.details`, drop repeats of (createdTimestamp, sequence), sort
by them, fold each conversation into a record, write one JSON file per conversation. Standard
library only and envelope payloads only; no validation, no dead letters, no revisions, no state
store: what the pipeline's replay does besides is what it must pay for and still be faster.

    python bench/naive_replay.py INPUT.jsonl OUT_DIR
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any


def seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def fold(
    conversation_id: str, media: str, details: list[tuple[str, int, dict[str, Any]]]
) -> dict[str, Any]:
    """One conversation's record from its micro-events, in order."""
    record: dict[str, Any] = {
        "conversation_id": conversation_id,
        "media_type": media,
        "final_state": None,
        "started_at": None,
        "ended_at": None,
        "hold_seconds": 0.0,
        "hold_count": 0,
        "transfers": 0,
        "wrap_up_code": None,
        "caller": None,
        "callee": None,
        "queue_ids": set(),
        "agent_ids": set(),
        "message_count": 0,
        "event_count": len(details),
    }
    held_since: float | None = None
    for _, _, detail in details:
        name = detail.get("name", "")
        data = detail.get("data") or {}
        at = detail.get("timestamp")
        if record["started_at"] is None:
            record["started_at"] = at
        if name == "conversation:state":
            status = data.get("status")
            if held_since is not None and status != "onhold" and at:
                record["hold_seconds"] += seconds(at) - held_since
                held_since = None
            if status == "onhold" and held_since is None and at:
                record["hold_count"] += 1
                held_since = seconds(at)
            if status == "disconnected":
                record["ended_at"] = at
            record["final_state"] = status
        elif name.endswith(":transferred"):
            record["transfers"] += 1
        elif name in ("chat:message", "email:message"):
            record["message_count"] += 1
        elif name == "voice:call:connected":
            record["caller"] = record["caller"] or data.get("callerNumber")
            record["callee"] = record["callee"] or data.get("calleeNumber")
        if data.get("wrapUpCode"):
            record["wrap_up_code"] = data["wrapUpCode"]
        if data.get("queueId"):
            record["queue_ids"].add(data["queueId"])
        if data.get("agentId"):
            record["agent_ids"].add(data["agentId"])
    if record["started_at"] and record["ended_at"]:
        record["duration_seconds"] = seconds(record["ended_at"]) - seconds(record["started_at"])
    record["queue_ids"] = sorted(record["queue_ids"])
    record["agent_ids"] = sorted(record["agent_ids"])
    return record


def main(input_path: Path, out_dir: Path) -> int:
    conversations: dict[str, tuple[str, dict[tuple[str, int], dict[str, Any]]]] = {}
    with input_path.open("rb") as lines:
        for line in lines:
            parsed = json.loads(line)
            for payload in parsed if isinstance(parsed, list) else [parsed]:
                data = payload["data"]
                media, seen = conversations.setdefault(data["id"], (data.get("type", ""), {}))
                created = payload["createdTimestamp"]
                for detail in data["details"]:
                    seen.setdefault((created, detail["sequence"]), detail)
    out_dir.mkdir(parents=True, exist_ok=True)
    for conversation_id, (media, seen) in conversations.items():
        ordered = sorted((created, seq, d) for (created, seq), d in seen.items())
        record = fold(conversation_id, media, ordered)
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in conversation_id)
        (out_dir / f"{name}.json").write_text(json.dumps(record, indent=2))
    return len(conversations)


if __name__ == "__main__":
    count = main(Path(sys.argv[1]), Path(sys.argv[2]))
    sys.stdout.write(f"{count} conversations\n")
