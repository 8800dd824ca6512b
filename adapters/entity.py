"""The Table Storage entity layout of conversation state, and the Table rules it must obey.

Shared by the Azure Table adapter and its in-memory twin so both enforce the same limits:
keys without `/ \\ # ?` or control characters and at most 1 KiB, binary properties at most
64 KiB, entities at most 1 MiB and 252 custom properties.
"""

from __future__ import annotations

import re
from typing import Any

from transform.errors import StateTooLarge
from transform.keys import safe_key

STATE_ROW = "state"
MAX_PROPERTY_BYTES = 64 * 1024
MAX_ENTITY_BYTES = 1024 * 1024
MAX_KEY_BYTES = 1024
MAX_CUSTOM_PROPERTIES = 252
CHUNK_BYTES = 63 * 1024  # binary chunk size: under the 64 KiB property limit with headroom
MAX_CHUNKS = 15  # 15 x 63 KiB stays under the 1 MiB entity limit with room for the rest
_FORBIDDEN_KEY = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


class TableRuleViolation(ValueError):
    """An entity that Azure Table Storage would reject."""


def check_key(key: str, what: str) -> None:
    """Raise unless `key` is a legal PartitionKey / RowKey."""
    if _FORBIDDEN_KEY.search(key):
        raise TableRuleViolation(f"{what} {key[:60]!r} contains a character Tables forbid")
    if len(key.encode("utf-16-le")) > MAX_KEY_BYTES:
        raise TableRuleViolation(f"{what} is longer than 1 KiB")


def check_entity(entity: dict[str, Any]) -> None:
    """Raise unless the whole entity fits the Table limits."""
    check_key(entity["PartitionKey"], "PartitionKey")
    check_key(entity["RowKey"], "RowKey")
    custom = [k for k in entity if k not in ("PartitionKey", "RowKey", "Timestamp")]
    if len(custom) > MAX_CUSTOM_PROPERTIES:
        raise TableRuleViolation(f"{len(custom)} properties; Tables allow {MAX_CUSTOM_PROPERTIES}")
    total = 0
    for name, value in entity.items():
        size = _property_bytes(value)
        if size > MAX_PROPERTY_BYTES:
            raise TableRuleViolation(f"property {name} is {size} bytes; the limit is 64 KiB")
        total += size + len(name) * 2
    if total > MAX_ENTITY_BYTES:
        raise TableRuleViolation(f"entity is {total} bytes; the limit is 1 MiB")


def _property_bytes(value: object) -> int:
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-16-le"))
    return 8


def state_entity(
    conversation_id: str, blob: bytes, deadline_ms: int, revision: int
) -> dict[str, Any]:
    """The entity holding one conversation's encoded state, split into binary chunks."""
    chunks = [blob[i : i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
    if len(chunks) > MAX_CHUNKS:
        raise StateTooLarge(
            f"conversation {conversation_id[:80]!r}: state is {len(blob)} bytes compressed; "
            f"one entity holds at most {MAX_CHUNKS * CHUNK_BYTES}"
        )
    entity: dict[str, Any] = {
        "PartitionKey": safe_key(conversation_id),
        "RowKey": STATE_ROW,
        "ConversationId": conversation_id if len(conversation_id) <= 16_000 else "",
        "Deadline": deadline_ms,
        "Revision": revision,
        "Chunks": len(chunks),
    }
    for index, chunk in enumerate(chunks):
        entity[f"S{index}"] = chunk
    check_entity(entity)
    return entity


def state_blob(entity: dict[str, Any]) -> bytes:
    """Reassemble the encoded state from an entity."""
    return b"".join(bytes(entity[f"S{i}"]) for i in range(int(entity["Chunks"])))
