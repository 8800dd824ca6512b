"""Planning a state commit, without I/O: which Table operations each change needs.

A change (`Put` / `Delete` of the core's `StateStore` port) becomes the operations of one
entity-group transaction: the state row (created, or updated under its ETag) and, when the
conversation's due-index slot moves, the index rows deleted and written with it, so the index
never disagrees with the state. Plans are then packed into transactions of at most 100
operations and about 3 MiB. `adapters.sharded_state` sends them through its primitives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from adapters.entity import (
    MAX_INLINE_BYTES,
    MAX_SPILL_BYTES,
    MAX_TRANSACTION_BYTES,
    MAX_TRANSACTION_OPS,
    index_entity,
    index_row_key,
    index_slot,
    ops_payload_bound,
    shard_of,
    spill_name,
    state_entity,
)
from transform.errors import StateTooLarge
from transform.keys import safe_key
from transform.ports import Delete, StateChange
from transform.state import ConversationState, encode_state


@dataclass(slots=True)
class TableOp:
    """One operation of an entity-group transaction; `etag` is an IfNotModified precondition."""

    kind: Literal["create", "update", "upsert", "delete"]
    entity: dict[str, Any]
    etag: str | None = None


@dataclass(slots=True)
class KnownRow:
    """What must be known of a stored state row to change it atomically with its index row."""

    etag: str
    slot: int | None
    spill: str | None


@dataclass(slots=True)
class ChangePlan:
    """The operations of one change, always sent in one transaction."""

    conversation_id: str
    partition_key: str
    ops: list[TableOp]
    size: int
    blob: bytes | None = None
    """The encoded state of a put; None for a delete."""
    state: ConversationState | None = None
    """A copy of the state as committed (for the cache); None for a delete."""
    slot: int | None = None
    spill: str | None = None
    upload: bytes | None = None
    """Bytes to write to `spill` before the transaction."""
    old_spill: str | None = None


def known_of(entity: dict[str, Any], etag: str) -> KnownRow:
    slot = entity.get("Slot")
    spill = entity.get("Spill")
    return KnownRow(etag, None if slot is None else int(slot), str(spill) if spill else None)


def plan_change(
    change: StateChange, known: KnownRow | None, now_ms: int | None, shards: int
) -> ChangePlan:
    """The operations of one change: the state row and, when its slot moves, its index rows."""
    if isinstance(change, Delete):
        assert known is not None
        partition_key = shard_of(change.conversation_id, shards)
        key = safe_key(change.conversation_id)
        ops = [TableOp("delete", {"PartitionKey": partition_key, "RowKey": key}, known.etag)]
        if known.slot is not None:
            row = {"PartitionKey": partition_key, "RowKey": index_row_key(known.slot, key)}
            ops.append(TableOp("delete", row))
        return ChangePlan(change.conversation_id, partition_key, ops, 512, old_spill=known.spill)
    state = change.state
    conversation_id = state.conversation_id
    blob = encode_state(state)
    key = safe_key(conversation_id)
    current = known.slot if known else None
    slot = index_slot(change.deadline_ms, now_ms, current)
    spill: str | None = None
    if len(blob) > MAX_INLINE_BYTES:
        if len(blob) > MAX_SPILL_BYTES:
            raise StateTooLarge(
                f"conversation {conversation_id[:80]!r}: state is {len(blob)} bytes encoded; "
                f"the limit is {MAX_SPILL_BYTES}"
            )
        spill = spill_name(key, blob)
    entity = state_entity(
        conversation_id,
        blob,
        change.deadline_ms,
        state.revision,
        slot_ms=slot,
        spill=spill,
        shards=shards,
    )
    ops = [TableOp("create", entity) if known is None else TableOp("update", entity, known.etag)]
    if current is not None and current != slot:
        ops.append(
            TableOp(
                "delete",
                {"PartitionKey": entity["PartitionKey"], "RowKey": index_row_key(current, key)},
            )
        )
    if current != slot:
        ops.append(TableOp("upsert", index_entity(conversation_id, slot, shards)))
    return ChangePlan(
        conversation_id,
        entity["PartitionKey"],
        ops,
        ops_payload_bound(len(ops), len(blob), key, conversation_id, spill or ""),
        blob=blob,
        state=state.clone(),
        slot=slot,
        spill=spill,
        upload=blob if spill is not None else None,
        old_spill=known.spill if known else None,
    )


def pack_plans(plans: list[ChangePlan]) -> Iterator[list[ChangePlan]]:
    """Whole plans into transactions of at most 100 operations and about 3 MiB."""
    batch: list[ChangePlan] = []
    ops = size = 0
    for plan in plans:
        if batch and (
            ops + len(plan.ops) > MAX_TRANSACTION_OPS or size + plan.size > MAX_TRANSACTION_BYTES
        ):
            yield batch
            batch, ops, size = [], 0, 0
        batch.append(plan)
        ops += len(plan.ops)
        size += plan.size
    if batch:
        yield batch
