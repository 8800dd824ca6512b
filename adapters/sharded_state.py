"""The `StateStore` logic shared by the Table adapter and its in-memory twin.

Both keep state in the layout of `adapters.entity` (shards, state rows, due-index rows, spill
blobs), plan each commit with `adapters.state_plan` (pure, no I/O) and differ only in their
primitives: read a row, submit one entity-group transaction, query a shard's due-index rows,
and write / read / delete spill blobs. The contract tests hold
both sets of primitives to the same behaviour, so the twin means what the adapter means.

Cost model (SPEC 12 P2): a `commit` groups the changes of a batch by shard and sends one
transaction per shard (≤ 100 entities, ≤ 3 MiB); each change carries its own ETag
precondition and moves its due-index row in the same transaction. A bounded LRU cache of
(decoded state, ETag, index slot, spill name) answers `load` for conversations this process
read or wrote last, without decoding anything: a load gets a copy of the state as committed
(the caller changes its copy), and a commit encodes and compresses only what goes to storage,
once. It is never trusted blindly: a stale entry fails its ETag precondition, is dropped and
the caller reloads.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from adapters.entity import (
    LAYOUT_PARTITION,
    LAYOUT_ROW,
    MAX_TRANSACTION_OPS,
    SLOT_DIGITS,
    all_shards,
    id_of_index_row,
    index_upper_bound,
    key_of_index_row,
    shard_of,
    state_blob,
)
from adapters.opcount import OperationCounter, OperationCounts
from adapters.state_plan import (
    ChangePlan,
    KnownRow,
    TableOp,
    known_of,
    pack_plans,
    plan_change,
)
from transform.errors import ConcurrencyConflict, StateTooLarge, StorageUnavailable
from transform.keys import safe_key
from transform.ports import CommitResult, Delete, Put, StateChange
from transform.state import ConversationState, StateCodecError, decode_state

log = logging.getLogger(__name__)

SPILL_READ_ATTEMPTS = 3
PRESUME_THRESHOLD = 0.8
"""Skip the read of a cache miss once at least this share of recent misses were new."""
PRESUME_WEIGHT = 0.05
MAX_PRESUMED = 50_000
ERASE_ATTEMPTS = 5
_EVERY_SLOT = index_upper_bound(10**SLOT_DIGITS - 1)
_NO_LIMIT = 1 << 62


@dataclass(frozen=True, slots=True)
class Footprint:
    """Every row and blob one conversation holds in the state store."""

    conversation_id: str
    state_etag: str | None
    """The state row's ETag; None when there is no state row."""
    index_rows: tuple[str, ...]
    """RowKeys of its due-index rows (one, in a consistent store)."""
    spill_blobs: tuple[str, ...]
    """Its blobs in the spill container, referenced or left over."""

    @property
    def state_rows(self) -> int:
        """1 when there is a state row, else 0."""
        return 0 if self.state_etag is None else 1

    @property
    def empty(self) -> bool:
        """Nothing of the conversation is stored."""
        return self.state_etag is None and not self.index_rows and not self.spill_blobs


class TransactionRefused(Exception):
    """One operation of a transaction failed its precondition; nothing was written."""

    def __init__(self, index: int, reason: Literal["conflict", "missing"], detail: str) -> None:
        super().__init__(f"operation {index} refused ({reason}): {detail}")
        self.index = index
        self.reason = reason


class TransactionTooLarge(Exception):
    """The service refused a transaction for its size; smaller ones may pass."""


@dataclass(frozen=True, slots=True)
class _Cached:
    state: ConversationState
    """Never handed out: `load` gives a copy."""
    known: KnownRow


class ShardedStateStore(ABC):
    """`StateStore` over shard transactions, a due index and a write-through LRU cache."""

    def __init__(
        self, counter: OperationCounter, cache_size: int, shards: int, *, presume_new: bool
    ) -> None:
        if cache_size < 0:
            raise ValueError(f"cache size must be >= 0, got {cache_size}")
        if not 1 <= shards <= 100:
            raise ValueError(f"shards must be 1..100, got {shards}")
        self.counter = counter
        self.shards = shards
        self._cache_size = cache_size
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._presume_new = presume_new
        self._new_rate = 0.0
        """Moving share of cache misses that turned out to be new conversations."""
        self._presumed: set[str] = set()

    @property
    def ops(self) -> OperationCounts:
        """Requests made so far (a snapshot)."""
        return self.counter.total()

    # ------------------------------------------------------------------ primitives
    @abstractmethod
    def _read_row(
        self, partition_key: str, row_key: str, *, meta_only: bool = False
    ) -> tuple[dict[str, Any], str] | None:
        """One point read: the entity and its ETag, or None."""

    @abstractmethod
    def _submit(self, partition_key: str, ops: Sequence[TableOp]) -> list[str | None]:
        """One transaction; the new ETag of each op (None for deletes).

        Raises `TransactionRefused` naming the failed op, or `TransactionTooLarge`.
        """

    @abstractmethod
    def _query_index(self, partition_key: str, upper: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` due-index rows of a shard with RowKey < `upper`, in RowKey order."""

    @abstractmethod
    def _spill_write(self, name: str, data: bytes) -> None:
        """Write a spill blob (same name, same bytes: idempotent)."""

    @abstractmethod
    def _spill_read(self, name: str) -> bytes | None:
        """A spill blob, or None if it is gone."""

    @abstractmethod
    def _spill_delete(self, name: str, *, prefix: bool = False) -> None:
        """Delete one spill blob, or every blob under a prefix; missing ones are fine."""

    @abstractmethod
    def _scan_rows(self, partition_key: str) -> Iterator[tuple[dict[str, Any], str]]:
        """Every row of a shard (state and due-index rows) with its ETag, in RowKey order."""

    @abstractmethod
    def _spill_names(self, prefix: str) -> list[str]:
        """The names of the spill blobs under `prefix`."""

    # ------------------------------------------------------------------ cache
    def _cached(self, conversation_id: str) -> _Cached | None:
        with self._cache_lock:
            entry = self._cache.get(conversation_id)
            if entry is not None:
                self._cache.move_to_end(conversation_id)
            return entry

    def _remember(self, conversation_id: str, entry: _Cached) -> None:
        if self._cache_size == 0:
            return
        with self._cache_lock:
            self._cache[conversation_id] = entry
            self._cache.move_to_end(conversation_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _forget(self, conversation_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(conversation_id, None)

    def _learn(self, *, new: bool) -> None:
        with self._cache_lock:
            self._new_rate += PRESUME_WEIGHT * ((1.0 if new else 0.0) - self._new_rate)

    def _settle_presumed(self, conversation_id: str, *, new: bool) -> None:
        with self._cache_lock:
            if conversation_id not in self._presumed:
                return
            self._presumed.discard(conversation_id)
        self._learn(new=new)

    def adopt_layout(self) -> int | None:
        """Use the shard count the table was created with; None while none is recorded.

        Read-only: a tool that only looks must not fix the layout of a table it did not make.
        """
        row = self._read_row(LAYOUT_PARTITION, LAYOUT_ROW)
        if row is None:
            return None
        self.shards = int(row[0]["Shards"])
        return self.shards

    def stored_row(self, conversation_id: str) -> dict[str, Any] | None:
        """A conversation's state row as stored (for tools that show where state lives)."""
        row = self._read_row(shard_of(conversation_id, self.shards), safe_key(conversation_id))
        return None if row is None else row[0]

    # ------------------------------------------------------------------ StateStore
    def load(
        self, conversation_id: str, *, presume_absent: bool = False
    ) -> tuple[ConversationState, str] | None:
        """The stored state and its ETag, or None; from the cache when this process has it.

        With `presume_absent`, a cache miss is answered None without a read while most recent
        misses were new conversations (a warm cache: the process has been consuming these
        partitions); a wrong guess costs a refused insert and a reload, never a wrong write.
        """
        entry = self._cached(conversation_id)
        if entry is not None:
            self.counter.count("cache_hits")
            return entry.state.clone(), entry.known.etag
        if presume_absent and self._presume_new and self._new_rate >= PRESUME_THRESHOLD:
            with self._cache_lock:
                if len(self._presumed) >= MAX_PRESUMED:
                    self._presumed.clear()
                self._presumed.add(conversation_id)
            self.counter.count("presumed_new")
            return None
        read = self._read_state(shard_of(conversation_id, self.shards), safe_key(conversation_id))
        self._learn(new=read is None)
        if read is None:
            return None
        blob, known = read
        state = decode_state(blob)
        self._remember(conversation_id, _Cached(state.clone(), known))
        return state, known.etag

    def _read_state(self, partition_key: str, key: str) -> tuple[bytes, KnownRow] | None:
        for _ in range(SPILL_READ_ATTEMPTS):
            row = self._read_row(partition_key, key)
            if row is None:
                return None
            entity, etag = row
            known = known_of(entity, etag)
            if known.spill is None:
                return state_blob(entity), known
            blob = self._spill_read(known.spill)
            if blob is not None:
                return blob, known
            # A writer replaced the state and removed its old spill blob after our read.
        raise StorageUnavailable(f"state row {key[:80]!r} keeps pointing at a missing spill blob")

    def commit(self, changes: Sequence[StateChange], now_ms: int) -> CommitResult:
        """Apply changes in one transaction per shard; each stands or falls on its own ETag."""
        return self._commit(changes, now_ms)

    def save(self, state: ConversationState, etag: str | None, deadline_ms: int) -> str:
        """One put, indexed exactly at its deadline."""
        result = self._commit([Put(state, etag, deadline_ms)], None)
        conversation_id = state.conversation_id
        if conversation_id in result.too_large:
            raise StateTooLarge(f"state for {conversation_id[:80]!r} outgrew every limit")
        if conversation_id in result.conflicts:
            raise ConcurrencyConflict(f"state for {conversation_id[:80]!r} has changed")
        return result.etags[conversation_id]

    def delete(self, conversation_id: str, etag: str) -> None:
        """One delete."""
        result = self._commit([Delete(conversation_id, etag)], None)
        if conversation_id in result.conflicts:
            raise ConcurrencyConflict(f"state for {conversation_id[:80]!r} has changed")

    def _commit(self, changes: Sequence[StateChange], now_ms: int | None) -> CommitResult:
        result = CommitResult()
        plans: list[ChangePlan] = []
        seen: set[str] = set()
        for change in changes:
            conversation_id = (
                change.state.conversation_id if isinstance(change, Put) else change.conversation_id
            )
            if conversation_id in seen:
                raise ValueError(f"conversation {conversation_id[:80]!r} twice in one commit")
            seen.add(conversation_id)
            known: KnownRow | None = None
            if change.etag is not None:
                known = self._known(conversation_id, change.etag)
                if known is None:
                    result.conflicts.add(conversation_id)
                    self._forget(conversation_id)
                    continue
            try:
                plans.append(plan_change(change, known, now_ms, self.shards))
            except StateTooLarge as e:
                log.error("state too large conversation_id=%s: %s", conversation_id[:200], e)
                result.too_large.add(conversation_id)
        for plan in plans:
            if plan.upload is not None and plan.spill is not None:
                self._spill_write(plan.spill, plan.upload)  # before the row that points at it
        by_shard: dict[str, list[ChangePlan]] = {}
        for plan in plans:
            by_shard.setdefault(plan.partition_key, []).append(plan)
        for partition_key, group in by_shard.items():
            for transaction in pack_plans(group):
                self._transact(partition_key, transaction, result)
        for plan in plans:
            self._clean_spill(plan, result)
        return result

    def _known(self, conversation_id: str, etag: str) -> KnownRow | None:
        """The stored row's index slot and spill if its ETag is `etag`; None if it is not."""
        entry = self._cached(conversation_id)
        if entry is not None and entry.known.etag == etag:
            return entry.known
        row = self._read_row(
            shard_of(conversation_id, self.shards), safe_key(conversation_id), meta_only=True
        )
        if row is None or row[1] != etag:
            return None
        return known_of(row[0], row[1])

    def _transact(self, partition_key: str, plans: list[ChangePlan], result: CommitResult) -> None:
        remaining = list(plans)
        while remaining:
            ops: list[TableOp] = []
            owners: list[tuple[ChangePlan, int]] = []
            for plan in remaining:
                for position, op in enumerate(plan.ops):
                    ops.append(op)
                    owners.append((plan, position))
            try:
                etags = self._submit(partition_key, ops)
            except TransactionTooLarge:
                if len(remaining) == 1:
                    (plan,) = remaining
                    log.error("state too large conversation_id=%s", plan.conversation_id[:200])
                    result.too_large.add(plan.conversation_id)
                    return
                half = len(remaining) // 2
                self._transact(partition_key, remaining[:half], result)
                self._transact(partition_key, remaining[half:], result)
                return
            except TransactionRefused as refused:
                plan, position = owners[refused.index] if refused.index < len(owners) else owners[0]
                if position > 0 and refused.reason == "missing":
                    # An index row that should exist does not (edited by hand?): stop deleting it.
                    log.warning(
                        "index row missing conversation_id=%s row_key=%s: dropped its delete",
                        plan.conversation_id[:200],
                        plan.ops[position].entity["RowKey"][:80],
                    )
                    del plan.ops[position]
                    continue
                result.conflicts.add(plan.conversation_id)
                self._forget(plan.conversation_id)
                self._settle_presumed(plan.conversation_id, new=False)
                remaining.remove(plan)
                continue
            offset = 0
            for plan in remaining:
                etag = etags[offset]
                offset += len(plan.ops)
                if plan.blob is None:
                    result.deleted.add(plan.conversation_id)
                    self._forget(plan.conversation_id)
                else:
                    assert etag is not None and plan.state is not None
                    result.etags[plan.conversation_id] = etag
                    self._settle_presumed(plan.conversation_id, new=True)
                    known = KnownRow(etag, plan.slot, plan.spill)
                    self._remember(plan.conversation_id, _Cached(plan.state, known))
            return

    def _clean_spill(self, plan: ChangePlan, result: CommitResult) -> None:
        """Best effort: a failure leaves an unreferenced blob, never a broken state."""
        try:
            if plan.conversation_id in result.deleted and plan.old_spill is not None:
                self._spill_delete(plan.old_spill.rsplit("/", 1)[0] + "/", prefix=True)
            elif (
                plan.conversation_id in result.etags
                and plan.old_spill is not None
                and plan.old_spill != plan.spill
            ):
                self._spill_delete(plan.old_spill)
        except StorageUnavailable as e:
            log.warning("spill cleanup failed conversation_id=%s: %s", plan.conversation_id, e)

    def due(self, now_ms: int, limit: int) -> list[str]:
        """Conversations whose index slot has come (each shard's index, in slot order)."""
        upper = index_upper_bound(now_ms)
        rows: list[tuple[str, str, dict[str, Any]]] = []
        for partition_key in all_shards(self.shards):
            for row in self._query_index(partition_key, upper, limit):
                rows.append((str(row["RowKey"]), partition_key, row))
        rows.sort(key=lambda found: (found[0], found[1]))
        ids: list[str] = []
        seen: set[str] = set()
        for _, partition_key, row in rows:
            if len(ids) >= limit:
                break
            conversation_id = id_of_index_row(row)
            if conversation_id is None:
                read = self._read_state(partition_key, key_of_index_row(row))
                if read is None:
                    continue
                conversation_id = decode_state(read[0]).conversation_id
            if conversation_id not in seen:
                seen.add(conversation_id)
                ids.append(conversation_id)
        return ids

    # ------------------------------------------------------------------ erasure
    def scan(self) -> Iterator[tuple[str, ConversationState | str]]:
        """Every stored conversation's state, shard by shard, or a text saying why it could not
        be read (keyed by its id, or its RowKey when the row does not say)."""
        for partition_key in all_shards(self.shards):
            for entity, _ in self._scan_rows(partition_key):
                key = str(entity["RowKey"])
                if key.startswith("!"):  # due-index rows
                    continue
                name = str(entity.get("ConversationId") or key)
                try:
                    read = (
                        (state_blob(entity), None)
                        if not entity.get("Spill")
                        else self._read_state(partition_key, key)
                    )
                    if read is None:
                        continue  # deleted since the listing
                    yield name, decode_state(read[0])
                except (StateCodecError, KeyError) as e:
                    yield name, f"unreadable state: {type(e).__name__}: {str(e)[:200]}"

    def footprints(self, conversation_ids: Collection[str]) -> dict[str, Footprint]:
        """Where each conversation is stored: its state row, due-index rows and spill blobs.

        The due index of each shard concerned is read whole once (its RowKeys only), so an
        index row is found even if its state row is gone.
        """
        by_shard: dict[str, dict[str, str]] = {}
        for conversation_id in conversation_ids:
            shard = by_shard.setdefault(shard_of(conversation_id, self.shards), {})
            shard[safe_key(conversation_id)] = conversation_id
        found: dict[str, Footprint] = {}
        for partition_key, keys in by_shard.items():
            index: dict[str, list[str]] = {}
            for row in self._query_index(partition_key, _EVERY_SLOT, _NO_LIMIT):
                key = key_of_index_row(row)
                if key in keys:
                    index.setdefault(key, []).append(str(row["RowKey"]))
            for key, conversation_id in keys.items():
                state_row = self._read_row(partition_key, key, meta_only=True)
                found[conversation_id] = Footprint(
                    conversation_id,
                    None if state_row is None else state_row[1],
                    tuple(sorted(set(index.get(key, ())))),
                    tuple(sorted(self._spill_names(f"{key}/"))),
                )
        return found

    def erase(self, footprint: Footprint) -> Footprint:
        """Delete what `footprint` found (state row under its ETag, index rows, spill blobs);
        if the conversation changed meanwhile, look again. Returns what was deleted."""
        conversation_id = footprint.conversation_id
        partition_key = shard_of(conversation_id, self.shards)
        key = safe_key(conversation_id)
        current = footprint
        for _ in range(ERASE_ATTEMPTS):
            ops: list[TableOp] = []
            if current.state_etag is not None:
                row = {"PartitionKey": partition_key, "RowKey": key}
                ops.append(TableOp("delete", row, current.state_etag))
            for row_key in current.index_rows:
                ops.append(TableOp("delete", {"PartitionKey": partition_key, "RowKey": row_key}))
            try:
                # The state row and its index rows go together (one transaction for any sane
                # count), so the timer never finds an index row pointing at nothing.
                for start in range(0, len(ops), MAX_TRANSACTION_OPS):
                    self._submit(partition_key, ops[start : start + MAX_TRANSACTION_OPS])
            except TransactionRefused:
                # A consumer wrote the state, or moved its index row, since we looked.
                self._forget(conversation_id)
                current = self.footprints([conversation_id])[conversation_id]
                continue
            self._forget(conversation_id)
            for name in current.spill_blobs:
                self._spill_delete(name)
            return current
        raise ConcurrencyConflict(
            f"conversation {conversation_id[:80]!r} kept changing under {ERASE_ATTEMPTS} erasures"
        )


__all__ = ["Footprint", "ShardedStateStore", "TransactionRefused", "TransactionTooLarge"]
