"""The Table Storage entity layout of conversation state, and the Table rules it must obey.

Shared by the Azure Table adapter and its in-memory twin so both enforce the same limits:
keys without `/ \\ # ?` or control characters and at most 1 KiB, binary properties at most
64 KiB, entities at most 1 MiB and 252 custom properties, transactions of at most 100 entities
of one PartitionKey and under 4 MiB.

Layout (one table): PartitionKey = shard of the conversation id (`s00`.., see `STATE_SHARDS`).
- state row: RowKey = safe key; the encoded state in chunks `S0..`, or `Spill` naming a
  blob in container `state-spill` when it outgrows one entity; `Deadline`, `Slot` (the due
  index slot it holds), `Revision`.
- due-index row: RowKey = `!due-<slot ms, 13 digits>-<safe key>`, written and deleted in the
  same transaction as the state row, so the index never disagrees with the state.
- layout row: PartitionKey `!meta`, RowKey `layout`, `Shards`: fixed when the table is made.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

from adapters.partition_hash import partition_index
from transform.errors import StateTooLarge
from transform.keys import id_from_key, is_digest_key, safe_key

STATE_SHARDS = 4
"""Shards of a new table (PartitionKeys `s00`..`s03`); a table keeps the count it was made with.

A conversation's rows live in the shard of its Event Hubs partition (`shard_of`), so one
entity-group transaction saves a batch's conversations with their due-index rows. Keep the
count a divisor of the hub's partition count (4 divides 4..32); each shard takes ~2,000
entities/s (about 1,000 conversation saves/s), several times SPEC 12's ingest target."""
LAYOUT_PARTITION = "!meta"
"""PartitionKey of the table's layout row (its shard count)."""
LAYOUT_ROW = "layout"
INDEX_PREFIX = "!due-"
"""RowKey prefix of due-index rows; `!` sorts before every character a safe key can hold."""
SLOT_DIGITS = 13
MAX_PROPERTY_BYTES = 64 * 1024
MAX_ENTITY_BYTES = 1024 * 1024
MAX_KEY_BYTES = 1024
MAX_CUSTOM_PROPERTIES = 252
CHUNK_BYTES = 63 * 1024  # binary chunk size: under the 64 KiB property limit with headroom
MAX_CHUNKS = 15  # 15 x 63 KiB stays under the 1 MiB entity limit with room for the rest
MAX_INLINE_BYTES = MAX_CHUNKS * CHUNK_BYTES
MAX_SPILL_BYTES = 64 * 1024 * 1024
"""Encoded state beyond one entity goes to a blob; beyond this it is `StateTooLarge`."""
SPILL_CONTAINER = "state-spill"
MAX_TRANSACTION_OPS = 100
MAX_TRANSACTION_BYTES = 3 * 1024 * 1024
"""Estimated request size per transaction; the service refuses more than 4 MiB."""
MAX_ID_PROPERTY_CHARS = 16_000
_FORBIDDEN_KEY = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


class TableRuleViolation(ValueError):
    """An entity that Azure Table Storage would reject."""


KEY_MEMO = 65_536
"""Keys, shards and sizes computed per conversation are remembered for this many ids: a
conversation is committed several times, and each computation is pure."""


def check_key(key: str, what: str) -> None:
    """Raise unless `key` is a legal PartitionKey / RowKey."""
    problem = _key_problem(key)
    if problem is not None:
        raise TableRuleViolation(f"{what} {problem}")


@functools.lru_cache(maxsize=KEY_MEMO)
def _key_problem(key: str) -> str | None:
    if _FORBIDDEN_KEY.search(key):
        return f"{key[:60]!r} contains a character Tables forbid"
    if _utf16_bytes(key) > MAX_KEY_BYTES:
        return "is longer than 1 KiB"
    return None


def _utf16_bytes(text: str) -> int:
    return 2 * len(text) if text.isascii() else len(text.encode("utf-16-le"))


_SYSTEM_PROPERTIES = frozenset({"PartitionKey", "RowKey", "Timestamp"})


def check_entity(entity: dict[str, Any]) -> None:
    """Raise unless the whole entity fits the Table limits."""
    check_key(entity["PartitionKey"], "PartitionKey")
    check_key(entity["RowKey"], "RowKey")
    custom = len(entity) - len(_SYSTEM_PROPERTIES.intersection(entity))
    if custom > MAX_CUSTOM_PROPERTIES:
        raise TableRuleViolation(f"{custom} properties; Tables allow {MAX_CUSTOM_PROPERTIES}")
    total = 0
    for name, value in entity.items():
        kind = type(value)
        size = len(value) if kind is bytes else _utf16_bytes(value) if kind is str else 8
        if size > MAX_PROPERTY_BYTES:
            raise TableRuleViolation(f"property {name} is {size} bytes; the limit is 64 KiB")
        total += size + len(name) * 2
    if total > MAX_ENTITY_BYTES:
        raise TableRuleViolation(f"entity is {total} bytes; the limit is 1 MiB")


@functools.lru_cache(maxsize=KEY_MEMO)
def shard_of(conversation_id: str, shards: int = STATE_SHARDS) -> str:
    """The PartitionKey of a conversation's rows: its Event Hubs partition, folded to `shards`.

    Conversations are sent with their id as partition key, so with a shard count that divides
    the partition count one batch (one partition) falls in one shard: one transaction.
    """
    return f"s{partition_index(conversation_id, shards):02d}"


def all_shards(shards: int = STATE_SHARDS) -> list[str]:
    """Every PartitionKey that can hold state."""
    return [f"s{n:02d}" for n in range(shards)]


def index_row_key(slot_ms: int, key: str) -> str:
    """The RowKey of a due-index row: sorts by slot, then conversation."""
    return f"{INDEX_PREFIX}{_slot_text(slot_ms)}-{key}"


def index_upper_bound(now_ms: int) -> str:
    """Exclusive RowKey bound of the index rows whose slot is at or before `now_ms`."""
    return f"{INDEX_PREFIX}{_slot_text(now_ms)}."  # "." sorts right after "-"


def _slot_text(ms: int) -> str:
    return f"{min(max(ms, 0), 10**SLOT_DIGITS - 1):0{SLOT_DIGITS}d}"


def index_slot(deadline_ms: int, now_ms: int | None, current: int | None) -> int:
    """When the timer should look at a conversation next: its deadline, or the slot it has.

    An existing slot is kept while it has not fired, is not after the deadline and is early
    by at most a quarter of the time left: an active conversation's idle deadline moves on
    every batch, and rewriting its index row each time would cost entities for nothing. The
    timer re-checks a conversation whose slot came early and puts it back at its deadline.
    """
    if (
        current is not None
        and now_ms is not None
        and now_ms < current <= deadline_ms
        and deadline_ms - current <= (deadline_ms - now_ms) // 4
    ):
        return current
    return deadline_ms


def state_entity(
    conversation_id: str,
    blob: bytes,
    deadline_ms: int,
    revision: int,
    *,
    slot_ms: int | None = None,
    spill: str | None = None,
    shards: int = STATE_SHARDS,
) -> dict[str, Any]:
    """The entity holding one conversation's encoded state, in binary chunks or spilled.

    `spill` names the blob holding `blob` when it is larger than one entity can hold.
    """
    if spill is None:
        chunks = [blob[i : i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
        if len(chunks) > MAX_CHUNKS:
            raise StateTooLarge(
                f"conversation {conversation_id[:80]!r}: state is {len(blob)} bytes "
                f"encoded; one entity holds at most {MAX_INLINE_BYTES}: spill it"
            )
    else:
        chunks = []
    entity: dict[str, Any] = {
        "PartitionKey": shard_of(conversation_id, shards),
        "RowKey": safe_key(conversation_id),
        "ConversationId": conversation_id if len(conversation_id) <= MAX_ID_PROPERTY_CHARS else "",
        "Deadline": deadline_ms,
        "Revision": revision,
        "Chunks": len(chunks),
        "StateBytes": len(blob),
    }
    if slot_ms is not None:
        entity["Slot"] = slot_ms
    if spill is not None:
        entity["Spill"] = spill
    for index, chunk in enumerate(chunks):
        entity[f"S{index}"] = chunk
    check_entity(entity)
    return entity


def index_entity(conversation_id: str, slot_ms: int, shards: int = STATE_SHARDS) -> dict[str, Any]:
    """A due-index row: the timer looks at `conversation_id` once `slot_ms` has passed."""
    key = safe_key(conversation_id)
    entity: dict[str, Any] = {
        "PartitionKey": shard_of(conversation_id, shards),
        "RowKey": index_row_key(slot_ms, key),
    }
    if is_digest_key(key) and len(conversation_id) <= MAX_ID_PROPERTY_CHARS:
        entity["ConversationId"] = conversation_id  # the key alone does not give it back
    check_entity(entity)
    return entity


def id_of_index_row(entity: dict[str, Any]) -> str | None:
    """The conversation id an index row points to; None when only its state row knows it."""
    if entity.get("ConversationId"):
        return str(entity["ConversationId"])
    key = str(entity["RowKey"])[len(INDEX_PREFIX) + SLOT_DIGITS + 1 :]
    return None if is_digest_key(key) else id_from_key(key)


def key_of_index_row(entity: dict[str, Any]) -> str:
    """The state RowKey an index row points to."""
    return str(entity["RowKey"])[len(INDEX_PREFIX) + SLOT_DIGITS + 1 :]


def state_blob(entity: dict[str, Any]) -> bytes:
    """Reassemble the encoded state from an entity that holds it inline."""
    return b"".join(bytes(entity[f"S{i}"]) for i in range(int(entity["Chunks"])))


def spill_name(key: str, blob: bytes) -> str:
    """Blob name of spilled state: per conversation and content-addressed."""
    return f"{key}/{hashlib.blake2b(blob, digest_size=16).hexdigest()}"


OP_OVERHEAD_BOUND = 1024
"""Request bytes of one operation besides its keys, ids and binary state: property names, the
numbers and the envelope; `payload_bytes` of every entity these builders make stays under it."""


def ops_payload_bound(ops: int, blob_bytes: int, *texts: str) -> int:
    """An upper bound of `payload_bytes` summed over a change's operations, from lengths alone.

    Every op may carry each text (keys, the id, the spill name) at worst as `\\uXXXX` escapes,
    and the state once as base64 in chunks; the commit planner packs transactions with it.
    """
    chunks = blob_bytes // CHUNK_BYTES + 1
    texts_bound = 6 * sum(len(text) for text in texts) + 64
    return ops * (OP_OVERHEAD_BOUND + texts_bound) + (blob_bytes + 2) // 3 * 4 + 64 * chunks


def payload_bytes(entity: dict[str, Any]) -> int:
    """A generous estimate of an entity's size in a request (JSON, binary as base64)."""
    total = 64
    for name, value in entity.items():
        kind = type(value)
        if kind is bytes:
            total += (len(value) + 2) // 3 * 4 + len(name) + 48
        elif kind is str:
            # Plain ASCII goes as is; anything else at worst as \uXXXX escapes.
            plain = value.isascii() and value.isprintable()
            total += len(value) * (1 if plain else 6) + len(name) + 8
        else:
            total += len(name) + 32
    return total
