"""The timer's dead-letter purge on Azurite (`DEADLETTER_PURGE=timer`, the local stack's
stand-in for the lifecycle rule Azure runs): letters older than `DEADLETTER_RETENTION_DAYS`
go, counted from their creation; the container is listed at most once an hour. Processing time
is a manual clock; creation times are Azurite's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory import ManualClock
from adapters.opcount import OperationCounter
from adapters.settings import TransformSettings, Tuning
from adapters.wiring import deadletter_store, output_of, transform_runtime
from functions.transform import purge_dead_letters
from schemas.record import DeadLetter, DeadLetterSource
from tests.transform_azure.conftest import AzureStorage

pytestmark = pytest.mark.stack


def _settings(storage: AzureStorage, **extra: str) -> TransformSettings:
    return TransformSettings.from_env(
        {
            "StateStorage": storage.connection_string,
            "STATE_TABLE_NAME": storage.table_name,
            "RECORDS_CONTAINER": storage.records_container,
            "DEADLETTER_CONTAINER": storage.deadletter_container,
            **extra,
        }
    )


def _letter(n: int) -> DeadLetter:
    return DeadLetter(
        id=f"transform-purge-{n}",
        stage="transform",
        reason="invalid-json",
        error="not JSON",
        received_at="2026-11-02T10:00:00.000Z",
        source=DeadLetterSource(partition="0", sequence_number=n, offset=str(n)),
        raw='{"callerNumber": "+13175550100"',
    )


def test_the_timer_deletes_dead_letters_past_retention_at_most_once_an_hour(
    azure_storage: AzureStorage,
) -> None:
    settings = _settings(azure_storage, DEADLETTER_PURGE="timer", DEADLETTER_RETENTION_DAYS="30")
    written_at = datetime.now(UTC)
    clock = ManualClock(written_at)
    rt = transform_runtime(settings, Tuning(cache_size=0), OperationCounter(), clock)
    for n in range(3):
        rt.dead_letters.write(_letter(n))
    store = deadletter_store(output_of(settings))
    names = [item.name for item in store.list()]
    assert len(names) == 3

    clock.set(written_at + timedelta(days=29, hours=23))
    first = purge_dead_letters(rt)
    assert first is not None and (first.listed, first.deleted) == (3, 0), "not yet 30 days"
    clock.set(written_at + timedelta(days=29, hours=23, minutes=59))
    assert purge_dead_letters(rt) is None, "listed less than an hour ago: not listed again"
    assert [item.name for item in store.list()] == names
    clock.set(written_at + timedelta(days=30, minutes=1))
    later = purge_dead_letters(rt)
    assert later is not None and (later.listed, later.deleted) == (3, 3)
    assert list(store.list()) == []


def test_the_purge_is_off_unless_asked_for(azure_storage: AzureStorage) -> None:
    settings = _settings(azure_storage, DEADLETTER_RETENTION_DAYS="0")
    rt = transform_runtime(settings, Tuning(cache_size=0), OperationCounter())
    rt.dead_letters.write(_letter(0))
    assert rt.deadletter_purge is None and purge_dead_letters(rt) is None
    assert len(list(deadletter_store(output_of(settings)).list())) == 1, "Azure: lifecycle rule"
