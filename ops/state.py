"""One conversation as the consumer keeps it: decoded state, storage facts, stored record.

The state is loaded through `TableStateStore` (shard, row, spill blob, then
`transform.state.decode_state`) with a private counter and no cache, so inspecting never
touches the app's figures; the record is read through `BlobRecordSink`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableClient

from adapters.blob_records import BlobRecordSink, record_blob_name
from adapters.entity import LAYOUT_PARTITION, LAYOUT_ROW, SPILL_CONTAINER, shard_of
from adapters.opcount import OperationCounter
from adapters.table_state import TableStateStore
from functions.settings import TransformSettings
from functions.transform import table_service
from ops import clients
from ops.errors import NotFound, Unreachable
from schemas.timestamps import iso_ms
from transform.keys import safe_key
from transform.state import DAY_MS, ConversationState, Timing

_ROW_FACTS = ["Deadline", "Slot", "Spill", "StateBytes", "Revision", "Chunks"]


@dataclass(frozen=True, slots=True)
class Inspected:
    """Everything stored about one conversation."""

    state: ConversationState
    etag: str
    row: dict[str, Any]
    """Where and how it is stored: shard, row key, deadline, slot, spill blob, sizes."""
    record: dict[str, Any] | None
    record_metadata: dict[str, str]

    @property
    def record_revision(self) -> int | None:
        """The revision of the stored record, if any."""
        return None if self.record is None else int(self.record.get("revision", 0))


def timing_of(settings: TransformSettings) -> Timing:
    """The grace, idle and retention periods the app runs with."""
    return Timing(
        grace_ms=round(settings.grace_seconds * 1000),
        idle_ms=round(settings.idle_timeout_seconds * 1000),
        retention_ms=round(settings.retention_days * DAY_MS),
    )


def phase(state: ConversationState, timing: Timing) -> str:
    """Where the conversation stands: open, ended (in grace), finalized, or owed a write."""
    if state.record_meta is None:
        return "ended, in grace period" if state.ended_since_ms is not None else "open"
    if state.written_revision < state.revision:
        return f"revision {state.revision} owed to the record store"
    return "finalized"


def summary(inspected: Inspected, timing: Timing) -> dict[str, Any]:
    """Plain values for a table or JSON."""
    state = inspected.state

    def when(ms: int | None) -> str | None:
        return None if ms is None else iso_ms(ms)

    return {
        "conversation_id": state.conversation_id,
        "phase": phase(state, timing),
        "events": len(state.events),
        "revision": state.revision,
        "written_revision": state.written_revision,
        "record_revision": inspected.record_revision,
        "duplicate_count": state.duplicate_count,
        "late_event_count": state.late_event_count,
        "first_seen_at": when(state.first_seen_at_ms),
        "last_applied_at": when(state.last_applied_at_ms),
        "ended_since": when(state.ended_since_ms),
        "next_deadline": when(state.next_deadline_ms(timing)),
        "finalized_at": when(state.record_meta.finalized_at_ms if state.record_meta else None),
        "watermarks": {
            p: {"sequence": s, "enqueued": when(t)} for p, (s, t) in state.watermarks.items()
        },
        "etag": inspected.etag,
        "storage": inspected.row,
    }


def events(state: ConversationState) -> list[dict[str, Any]]:
    """The distinct micro-events in order."""
    ordered = sorted(state.events.values(), key=lambda event: event.sort_key)
    return [
        {
            "timestamp": iso_ms(event.timestamp_ms),
            "action": event.action,
            "format": event.source_format,
            "order": [event.order_time_ms, event.sequence, event.kind],
            "identity": event.identity,
        }
        for event in ordered
    ]


def inspect(settings: TransformSettings, conversation_id: str) -> Inspected:
    """Load a conversation's state and record."""
    tables = table_service(settings.state)
    blobs = clients.blobs(settings.state)
    table = tables.get_table_client(settings.state_table)
    store = TableStateStore(
        table,
        blobs.get_container_client(SPILL_CONTAINER),
        counter=OperationCounter(),
        cache_size=0,
        presume_new=False,
    )
    try:
        adopt_layout(store, table)
        loaded = store.load(conversation_id)
        row = _row_facts(table, conversation_id, store.shards)
        sink = BlobRecordSink(
            blobs.get_container_client(settings.records_container), counter=OperationCounter()
        )
        record = sink.read(conversation_id)
        record_metadata = _record_metadata(blobs, settings.records_container, conversation_id)
    except AzureError as e:
        raise Unreachable(
            f"could not read conversation {conversation_id[:80]!r}: {type(e).__name__}: "
            f"{str(e)[:300]}; check StateStorage and STATE_TABLE_NAME"
        ) from e
    if loaded is None:
        where = f"table {settings.state_table!r}"
        hint = (
            "its record is stored: the state was purged after retention"
            if record is not None
            else "the id is exact and case-sensitive; a new conversation has no state until "
            "its first batch is applied"
        )
        raise NotFound(f"no state for conversation {conversation_id!r} in {where}: {hint}")
    state, etag = loaded
    return Inspected(state, etag, row, record, record_metadata)


def adopt_layout(store: TableStateStore, table: TableClient) -> None:
    """Use the shard count the table was created with (read-only: the operator may not write)."""
    try:
        layout = table.get_entity(LAYOUT_PARTITION, LAYOUT_ROW)
    except ResourceNotFoundError:
        return  # no table or no state yet: the default layout is as good as any
    store.shards = int(getattr(layout["Shards"], "value", layout["Shards"]))


def _row_facts(table: TableClient, conversation_id: str, shards: int) -> dict[str, Any]:
    partition, key = shard_of(conversation_id, shards), safe_key(conversation_id)
    facts: dict[str, Any] = {"table": table.table_name, "partition_key": partition, "row_key": key}
    try:
        entity = table.get_entity(partition, key, select=_ROW_FACTS)
    except ResourceNotFoundError:
        return facts
    for name in _ROW_FACTS:
        value = entity.get(name)
        facts[name.lower()] = getattr(value, "value", value)
    return facts


def _record_metadata(blobs: Any, container: str, conversation_id: str) -> dict[str, str]:
    blob = blobs.get_blob_client(container, record_blob_name(conversation_id))
    try:
        return dict(blob.get_blob_properties().metadata or {})
    except ResourceNotFoundError:
        return {}
