"""Small wire payloads for the sender's tests (hand-built, SPEC 2 envelope shape)."""

from __future__ import annotations

from typing import Any


def envelope(cid: str, details: int = 2, bad: bool = False) -> dict[str, Any]:
    items = [
        {
            "name": "conversation:state",
            "type": "conversation",
            "sequence": "x" if bad and i == 1 else i,
            "timestamp": "2026-11-24T08:00:00.000Z",
            "data": {"status": "connected"},
        }
        for i in range(details)
    ]
    return {
        "id": f"e-{cid}",
        "type": "v2.detail.events.conversation",
        "createdTimestamp": "2026-11-24T08:00:00.000Z",
        "data": {
            "id": cid,
            "type": "voice",
            "createdTimestamp": "2026-11-24T08:00:00.000Z",
            "updatedTimestamp": "2026-11-24T08:00:00.000Z",
            "details": items,
        },
        "metadata": {},
    }
