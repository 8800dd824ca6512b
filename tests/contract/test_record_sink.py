"""The `RecordSink` contract: one record per conversation that never goes backwards."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.conftest import Storage
from tests.contract.states import HOSTILE_IDS


def record(conversation_id: str, revision: int, **fields: Any) -> dict[str, Any]:
    return {"conversation_id": conversation_id, "revision": revision, "status": "final", **fields}


def test_first_revision_is_stored_with_revision_metadata(storage: Storage) -> None:
    sink = storage.new_sink()
    sink.write(record("r1", 1, event_count=3))
    assert storage.read_record("r1") == record("r1", 1, event_count=3)
    assert storage.record_metadata("r1")["revision"] == "1"


def test_a_record_never_goes_backwards(storage: Storage) -> None:
    sink = storage.new_sink()
    sink.write(record("r2", 1, note="first"))
    sink.write(record("r2", 3, note="third"))
    sink.write(record("r2", 2, note="late second"))
    sink.write(record("r2", 1, note="replayed first"))
    stored = storage.read_record("r2")
    assert stored is not None
    assert (stored["revision"], stored["note"]) == (3, "third")
    assert storage.record_metadata("r2")["revision"] == "3"


def test_an_equal_revision_replaces(storage: Storage) -> None:
    sink = storage.new_sink()
    sink.write(record("r3", 1, note="before a crash"))
    sink.write(record("r3", 1, note="rewritten"))
    stored = storage.read_record("r3")
    assert stored is not None
    assert stored["note"] == "rewritten"


def test_writers_with_stale_knowledge_do_not_go_backwards(storage: Storage) -> None:
    a, b = storage.new_sink(), storage.new_sink()
    a.write(record("r4", 1))
    b.write(record("r4", 2, note="b"))
    a.write(record("r4", 1, note="a, stale"))  # a remembers revision 1 and its ETag
    stored = storage.read_record("r4")
    assert stored is not None
    assert stored["note"] == "b"
    a.write(record("r4", 3, note="a, newer"))
    stored = storage.read_record("r4")
    assert stored is not None
    assert (stored["revision"], stored["note"]) == (3, "a, newer")


@pytest.mark.parametrize("conversation_id", HOSTILE_IDS, ids=range(len(HOSTILE_IDS)))
def test_hostile_ids_get_their_own_record(storage: Storage, conversation_id: str) -> None:
    sink = storage.new_sink()
    sink.write(record(conversation_id, 1))
    sink.write(record(conversation_id + "/other", 1))
    stored = storage.read_record(conversation_id)
    assert stored is not None
    assert stored["conversation_id"] == conversation_id
