"""The `StateStore` contract, for the in-memory twin and the Table adapter alike."""

from __future__ import annotations

import pytest

from adapters import entity
from adapters.entity import (
    INDEX_PREFIX,
    MAX_INLINE_BYTES,
    STATE_SHARDS,
    check_key,
    index_row_key,
    shard_of,
)
from tests.contract.conftest import Storage
from tests.contract.states import HOSTILE_IDS, make_state
from transform.errors import ConcurrencyConflict, StateTooLarge
from transform.keys import safe_key
from transform.ports import Delete, Put
from transform.state import ConversationState, encode_state

NOW = 1_793_610_000_000
MINUTE = 60_000


def same_state(a: ConversationState, b: ConversationState) -> bool:
    return encode_state(a) == encode_state(b)


def test_missing_conversation_loads_as_none(storage: Storage) -> None:
    assert storage.new_store().load("nobody") is None


def test_insert_then_load_round_trips_and_insert_again_conflicts(storage: Storage) -> None:
    store = storage.new_store()
    state = make_state("c1")
    etag = store.save(state, None, NOW + MINUTE)
    loaded = storage.new_store().load("c1")
    assert loaded is not None
    assert same_state(loaded[0], state)
    assert loaded[1] == etag
    with pytest.raises(ConcurrencyConflict):
        storage.new_store().save(make_state("c1", 5), None, NOW)


def test_replace_needs_the_current_etag(storage: Storage) -> None:
    store = storage.new_store()
    first = store.save(make_state("c2", 1), None, NOW)
    second = store.save(make_state("c2", 2), first, NOW)
    assert second != first
    with pytest.raises(ConcurrencyConflict):
        store.save(make_state("c2", 3), first, NOW)
    loaded = storage.new_store().load("c2")
    assert loaded is not None
    assert len(loaded[0].events) == 2


def test_delete_needs_the_current_etag(storage: Storage) -> None:
    store = storage.new_store()
    first = store.save(make_state("c3"), None, NOW)
    second = store.save(make_state("c3", 4), first, NOW)
    with pytest.raises(ConcurrencyConflict):
        store.delete("c3", first)
    store.delete("c3", second)
    assert storage.new_store().load("c3") is None
    assert storage.new_store().due(NOW + MINUTE, 10) == []
    with pytest.raises(ConcurrencyConflict):
        store.delete("c3", second)


def test_a_stale_cache_never_overwrites_another_writer(storage: Storage) -> None:
    a, b = storage.new_store(), storage.new_store()
    a.save(make_state("c4", 1), None, NOW)
    _state_a, etag_a = a.load("c4") or pytest.fail("saved state is missing")
    _state_b, etag_b = b.load("c4") or pytest.fail("saved state is missing")
    b.save(make_state("c4", 2), etag_b, NOW)
    with pytest.raises(ConcurrencyConflict):
        a.save(make_state("c4", 3), etag_a, NOW)
    reloaded = a.load("c4")
    assert reloaded is not None
    assert len(reloaded[0].events) == 2, "after a conflict the cache must not answer"


def test_commit_reports_each_change_on_its_own(storage: Storage) -> None:
    store = storage.new_store()
    ids = [f"batch-{n}" for n in range(40)]
    result = store.commit([Put(make_state(i), None, NOW) for i in ids], NOW)
    assert sorted(result.etags) == sorted(ids)
    assert len({shard_of(i) for i in ids}) > 1, "the batch should span shards"
    stale = result.etags[ids[0]]
    store.save(make_state(ids[0], 2), stale, NOW)
    changes: list[Put | Delete] = [Put(make_state(ids[0], 3), stale, NOW)]
    changes += [Put(make_state(i, 2), result.etags[i], NOW) for i in ids[1:20]]
    changes += [Delete(i, result.etags[i]) for i in ids[20:]]
    second = store.commit(changes, NOW)
    assert second.conflicts == {ids[0]}
    assert sorted(second.etags) == sorted(ids[1:20])
    assert second.deleted == set(ids[20:])
    fresh = storage.new_store()
    assert all(fresh.load(i) is None for i in ids[20:])
    assert all(len((fresh.load(i) or pytest.fail())[0].events) == 2 for i in ids[:20])


def test_a_commit_larger_than_one_transaction_is_split(storage: Storage) -> None:
    store = storage.new_store()
    ids = [f"many-{n}" for n in range(60 * STATE_SHARDS)]
    result = store.commit([Put(make_state(i, 1), None, NOW + n) for n, i in enumerate(ids)], NOW)
    assert len(result.etags) == len(ids)
    assert store.ops.table_writes >= len(ids) * 2 / entity.MAX_TRANSACTION_OPS
    assert len(storage.new_store().due(NOW + len(ids), 10_000)) == len(ids)


@pytest.mark.parametrize("conversation_id", HOSTILE_IDS, ids=range(len(HOSTILE_IDS)))
def test_hostile_ids_round_trip(storage: Storage, conversation_id: str) -> None:
    check_key(safe_key(conversation_id), "RowKey")
    check_key(index_row_key(NOW, safe_key(conversation_id)), "RowKey")
    store = storage.new_store()
    state = make_state(conversation_id)
    etag = store.save(state, None, NOW)
    loaded = storage.new_store().load(conversation_id)
    assert loaded is not None
    assert loaded[0].conversation_id == conversation_id
    assert same_state(loaded[0], state)
    assert storage.new_store().due(NOW, 10) == [conversation_id]
    store.delete(conversation_id, etag)
    assert storage.new_store().load(conversation_id) is None


def test_state_beyond_one_property_is_chunked(storage: Storage) -> None:
    store = storage.new_store()
    state = make_state("chunky", events=20, noise_bytes=20_000)
    assert 4 * 64 * 1024 < len(encode_state(state)) < MAX_INLINE_BYTES
    store.save(state, None, NOW)
    loaded = storage.new_store().load("chunky")
    assert loaded is not None
    assert same_state(loaded[0], state)
    assert storage.spill_names() == []


def test_state_beyond_one_entity_spills_and_is_cleaned_up(storage: Storage) -> None:
    store = storage.new_store()
    big = make_state("huge", events=50, noise_bytes=30_000)
    assert len(encode_state(big)) > MAX_INLINE_BYTES
    etag = store.save(big, None, NOW)
    (spilled,) = storage.spill_names()
    assert spilled.startswith(safe_key("huge") + "/")
    loaded = storage.new_store().load("huge")
    assert loaded is not None
    assert same_state(loaded[0], big)

    bigger = make_state("huge", events=52, noise_bytes=30_000)
    etag = store.save(bigger, etag, NOW)
    assert storage.spill_names() != [spilled], "a new version gets a new blob, the old one goes"
    assert len(storage.spill_names()) == 1
    loaded = storage.new_store().load("huge")
    assert loaded is not None
    assert same_state(loaded[0], bigger)

    small = make_state("huge", events=2)
    etag = store.save(small, etag, NOW)
    assert storage.spill_names() == []
    store.save(bigger, etag, NOW)
    loaded = storage.new_store().load("huge")
    assert loaded is not None
    store.delete("huge", loaded[1])
    assert storage.spill_names() == []


def test_state_beyond_every_limit_is_reported_not_written(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adapters.state_plan

    monkeypatch.setattr(adapters.state_plan, "MAX_SPILL_BYTES", MAX_INLINE_BYTES + 1)
    store = storage.new_store()
    big = make_state("too-big", events=50, noise_bytes=30_000)
    result = store.commit([Put(big, None, NOW), Put(make_state("fine"), None, NOW)], NOW)
    assert result.too_large == {"too-big"}
    assert set(result.etags) == {"fine"}
    with pytest.raises(StateTooLarge):
        store.save(big, None, NOW)
    assert storage.new_store().load("too-big") is None


def test_due_returns_what_has_come_due_in_deadline_order(storage: Storage) -> None:
    store = storage.new_store()
    deadlines = {f"d{n}": NOW + n * MINUTE for n in range(12)}
    store.commit([Put(make_state(i), None, d) for i, d in deadlines.items()], NOW - MINUTE)
    reader = storage.new_store()
    assert reader.due(NOW - 1, 100) == []
    assert reader.due(NOW + 5 * MINUTE, 100) == [f"d{n}" for n in range(6)]
    assert reader.due(NOW + 5 * MINUTE, 3) == ["d0", "d1", "d2"]
    assert len(reader.due(NOW + 60 * MINUTE, 100)) == 12


def test_a_moved_deadline_moves_the_index_entry(storage: Storage) -> None:
    store = storage.new_store()
    etag = store.save(make_state("mover"), None, NOW + 10 * MINUTE)
    etag = store.commit([Put(make_state("mover", 2), etag, NOW + MINUTE)], NOW).etags["mover"]
    assert store.due(NOW + MINUTE, 10) == ["mover"], "an earlier deadline is indexed at once"
    store.commit([Put(make_state("mover", 3), etag, NOW + 60 * MINUTE)], NOW + 2 * MINUTE)
    reader = storage.new_store()
    assert reader.due(NOW + 59 * MINUTE, 10) == []
    assert reader.due(NOW + 60 * MINUTE, 10) == ["mover"]
    rows = _index_rows(storage, "mover")
    if rows is not None:
        assert len(rows) == 1, "exactly one index row per conversation"


def test_an_index_slot_may_come_early_but_never_late(storage: Storage) -> None:
    store = storage.new_store()
    etag = store.save(make_state("active"), None, NOW + 240 * MINUTE)
    for minute in range(1, 30):
        deadline = NOW + (240 + minute) * MINUTE
        put = Put(make_state("active", 2 + minute % 3), etag, deadline)
        etag = store.commit([put], NOW + minute * MINUTE).etags["active"]
    reader = storage.new_store()
    assert reader.due(NOW + 239 * MINUTE, 10) == []
    assert reader.due(NOW + 240 * MINUTE, 10) == ["active"], "kept early slot (no churn)"
    assert store.ops.table_entities < 29 * 2, "active saves must not move the index each time"


def _index_rows(storage: Storage, conversation_id: str) -> list[str] | None:
    if storage.backend != "memory":
        return None
    store = storage.new_store()
    rows = store.rows()  # type: ignore[attr-defined]
    key = safe_key(conversation_id)
    return [rk for (_, rk) in rows if rk.startswith(INDEX_PREFIX) and rk.endswith(key)]
