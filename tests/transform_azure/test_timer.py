"""The timer's work on Azurite: finalize after the grace, expire idle, retry owed, purge."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.memory import InMemoryDeadLetterSink, ManualClock
from schemas.timestamps import ms_to_datetime
from tests.contract.states import envelope
from tests.transform_azure.conftest import AzureStorage
from tests.transform_azure.harness import drain
from transform.errors import StorageUnavailable
from transform.service import Delivery, TransformService
from transform.state import Timing

pytestmark = pytest.mark.stack

T0 = 1_793_610_000_000
TIMING = Timing(grace_ms=10_000, idle_ms=60_000, retention_ms=300_000)


def state_event(conversation_id: str, at_ms: int, status: str) -> Delivery:
    body = envelope(
        conversation_id, at_ms, [{"name": "conversation:state", "data": {"status": status}}]
    )
    return Delivery(body)


def test_the_timer_finalizes_expires_retries_and_purges(azure_storage: AzureStorage) -> None:
    store = azure_storage.new_store()
    records = azure_storage.new_records()
    clock = ManualClock(ms_to_datetime(T0))
    service = TransformService(store, records, InMemoryDeadLetterSink(), clock, TIMING)
    service.process(
        [
            state_event("ends", T0, "connected"),
            state_event("ends", T0 + 1000, "disconnected"),
            state_event("idles", T0, "connected"),
        ]
    )
    clock.set(clock.now() + timedelta(seconds=9))
    assert drain(service).finalized == 0, "not before the grace period"
    clock.set(clock.now() + timedelta(seconds=1))
    assert drain(service).finalized == 1
    assert azure_storage.records()["ends"]["status"] == "final"

    failing = azure_storage.new_records()
    failing.write = lambda record: (_ for _ in ()).throw(StorageUnavailable("blob down"))  # type: ignore[method-assign]
    flaky = TransformService(store, failing, InMemoryDeadLetterSink(), clock, TIMING)
    clock.set(clock.now() + timedelta(seconds=50))
    assert drain(flaky).records_owed == 1, "the idle one is owed when Blob is down"
    assert "idles" not in azure_storage.records()
    assert drain(service).revisions_written == 1, "the owed record is retried"
    assert azure_storage.records()["idles"]["finalized_reason"] == "idle-timeout"

    clock.set(clock.now() + timedelta(seconds=301))
    assert drain(service).purged == 2
    fresh = azure_storage.new_store()
    assert fresh.load("ends") is None and fresh.load("idles") is None
    assert fresh.due(T0 + 10**9, 100) == []
    assert set(azure_storage.records()) == {"ends", "idles"}, "records outlive their state"
