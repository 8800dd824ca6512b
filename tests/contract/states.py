"""Conversation states for storage tests, built through the real parser."""

from __future__ import annotations

import random
import string

import orjson

from transform.normalize import parse_delivery
from transform.state import ConversationState

HOSTILE_IDS = [
    "plain-id",
    "chat/42#x?y",
    "back\\slash%25already-encoded",
    "dots/../../etc/passwd",
    "ctrl\x00\x01\x1f\x7f\x9f-chars",
    "quote'and\"double",
    "ünïcødé 会话 🎧",
    "~tilde~and.dot",
    "space and\ttab\nnewline",
    "x" * 600,  # a digest key
    "y" * 20_000,  # beyond what a Table property holds: the id lives only in the state
]


def envelope(conversation_id: str, created_ms: int, details: list[dict[str, object]]) -> bytes:
    """One envelope delivery."""
    iso = _iso(created_ms)
    return orjson.dumps(
        {
            "id": f"env-{created_ms}",
            "type": "v2.detail.events.conversation",
            "createdTimestamp": iso,
            "data": {
                "id": conversation_id,
                "type": "chat",
                "createdTimestamp": iso,
                "updatedTimestamp": iso,
                "details": [
                    {"type": "event", "sequence": n, "timestamp": iso, **d}
                    for n, d in enumerate(details, start=1)
                ],
            },
        }
    )


def _iso(ms: int) -> str:
    from schemas.timestamps import iso_ms

    return iso_ms(ms)


def make_state(
    conversation_id: str, events: int = 3, *, noise_bytes: int = 0, seed: int = 0
) -> ConversationState:
    """A state with `events` chat messages; `noise_bytes` of incompressible text per event."""
    rng = random.Random(seed)
    state = ConversationState(conversation_id)
    details: list[dict[str, object]] = []
    for n in range(events):
        data: dict[str, object] = {"direction": "inbound", "messageId": f"m{n}"}
        if noise_bytes:
            data["wrapUpCode"] = "".join(rng.choices(string.ascii_letters, k=noise_bytes))
        details.append({"name": "chat:message", "data": data})
    parsed = parse_delivery(envelope(conversation_id, 1_793_610_000_000 + seed, details))
    assert not parsed.rejections, parsed.rejections
    for event in parsed.events:
        state.add(event, 1_793_610_000_000)
    return state
