"""Erasure end to end on the local stack, and the local host's dead-letter purge.

The project's function_app.py runs on the local host with `RECORD_PII=hash`; conversations
(one number in several forms, others without it, one with a bad detail) and a broken body
holding the number go through the webhook, Event Hubs and the transform into Azurite. Then
`python -m ops erase` removes one conversation and then everything of the number: afterwards
no table row (state or due index), spill blob, record or dead letter of them is left, nothing
anywhere holds the number raw or pseudonymized, and the conversation without it is untouched.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import orjson
import pytest
from azure.data.tables import EntityProperty, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient

import adapters.state_plan
from adapters.blob_deadletters import BlobDeadLetterSink
from adapters.entity import SPILL_CONTAINER, state_blob
from adapters.opcount import OperationCounter
from adapters.settings import TransformSettings
from adapters.table_state import TableStateStore
from schemas.record import DeadLetter, DeadLetterSource
from tests.conftest import ROOT, HostStarter
from tests.ops.conftest import Scenario, ScenarioFactory
from tests.unit.builders import Step, envelope, eventbridge, line, notification
from transform.keys import safe_key
from transform.normalize import parse_delivery
from transform.pii import pseudonym
from transform.ports import Put
from transform.state import ConversationState, state_json

pytestmark = pytest.mark.stack

KEY = "stack-erasure-test-key-0123456789abcdef"
NUMBER = "+1 (317) 555-0100"
DIGITS = re.compile(r"\+?1\D{0,3}317\D{0,3}555\D{0,3}0100(?!\d)")
WITH_NUMBER = ["env-with-number", "genesys-with-number"]
ERASED_BY_ID = "partly-bad"
UNTOUCHED = "someone-else"
SPILLED = "spilled-before-hashing"


def _call(conversation_id: str, caller: str) -> dict[str, Any]:
    return envelope(
        conversation_id,
        0,
        [
            Step(
                "voice:call:connected", 1, {"callerNumber": caller, "calleeNumber": "+18005550199"}
            ),
            Step("conversation:state", 2, {"status": "disconnected"}),
        ],
    )


def _bodies() -> list[bytes]:
    partly_bad = _call(ERASED_BY_ID, "+4930999888")
    partly_bad["data"]["details"].append(
        {"name": "agent:wrapup", "type": "event", "data": {}, "sequence": "one", "timestamp": 0}
    )
    start = notification(
        "genesys-with-number", "customer.start", 1, ani="tel:+13175550100", mediaType="VOICE"
    )
    end = notification("genesys-with-number", "customer.end", 2, mediaType="VOICE")
    return [
        line(_call("env-with-number", NUMBER)),
        line(eventbridge(start)),
        line(end),
        line(_call(UNTOUCHED, "+4930123456")),
        line(partly_bad),
        b'{"data": {"id": "broken", "details": [{"callerNumber": "+1-317-555-0100"',
    ]


def _records(blobs: BlobServiceClient, container: str) -> dict[str, bytes]:
    client = blobs.get_container_client(container)
    if not client.exists():
        return {}
    return {
        orjson.loads(data)["conversation_id"]: data
        for data in (client.download_blob(b.name).readall() for b in client.list_blobs())
    }


def _rows(tables: TableServiceClient, table: str) -> list[dict[str, Any]]:
    """Every row of the table, as plain values."""
    return [
        {k: v.value if isinstance(v, EntityProperty) else v for k, v in entity.items()}
        for entity in tables.get_table_client(table).list_entities()
    ]


def _texts(s: Scenario, blobs: BlobServiceClient, tables: TableServiceClient) -> list[str]:
    """Everything stored for this scenario as text: rows (state decompressed), records, dead
    letters, and the spill blobs of its conversations."""
    out: list[str] = []
    for row in _rows(tables, s.values["STATE_TABLE_NAME"]):
        out.extend(str(v) for v in row.values() if isinstance(v, str))
        if "Chunks" in row and not row.get("Spill"):
            out.append(state_json(state_blob(row)).decode())
    for name in ("RECORDS_CONTAINER", "DEADLETTER_CONTAINER"):
        client = blobs.get_container_client(s.values[name])
        out.extend(client.download_blob(b.name).readall().decode() for b in client.list_blobs())
    out.extend(state_json(data).decode() for data in _spill(blobs).values())
    return out


def _spill(blobs: BlobServiceClient) -> dict[str, bytes]:
    """The spill blobs of this module's conversations (the container is the app's, shared)."""
    client: ContainerClient = blobs.get_container_client(SPILL_CONTAINER)
    if not client.exists():
        return {}
    ours = [safe_key(c) + "/" for c in (*WITH_NUMBER, ERASED_BY_ID, UNTOUCHED, SPILLED)]
    return {
        b.name: client.download_blob(b.name).readall()
        for b in client.list_blobs()
        if any(b.name.startswith(prefix) for prefix in ours)
    }


def _seed_spilled_state(s: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    """A conversation whose state holds the number raw (written before RECORD_PII=hash) and
    outgrew one entity, so it lives in a spill blob."""
    monkeypatch.setattr(adapters.state_plan, "MAX_INLINE_BYTES", 200)
    settings = TransformSettings.from_env(s.values)
    tables = TableServiceClient.from_connection_string(s.stack.storage_connection_string)
    blobs = BlobServiceClient.from_connection_string(s.stack.storage_connection_string)
    store = TableStateStore(
        tables.get_table_client(settings.state_table),
        blobs.get_container_client(SPILL_CONTAINER),
        counter=OperationCounter(),
    )
    store.ensure_table()
    state = ConversationState(SPILLED)
    for event in parse_delivery(line(_call(SPILLED, NUMBER))).events:
        state.add(event, 1_900_000_000_000)
    assert not store.commit([Put(state, None, 1_900_000_060_000)], 1_900_000_000_000).conflicts


def test_erase_a_conversation_then_a_number_leaves_nothing_behind(
    scenario: ScenarioFactory, start_hosts: HostStarter, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = scenario(
        "ops-erase",
        GRACE_PERIOD_SECONDS="1",
        TIMER_SCHEDULE="*/1 * * * * *",
        RECORD_PII="hash",
        RECORD_PII_KEY=KEY,
    )
    blobs = BlobServiceClient.from_connection_string(s.stack.storage_connection_string)
    tables = TableServiceClient.from_connection_string(s.stack.storage_connection_string)
    host = start_hosts(app_dir=ROOT, env=s.values)
    url = host.http_base_url() + "/api/v1/genesys/events"
    with httpx.Client(timeout=30) as client:
        statuses = [
            client.post(url, content=body, headers={"Content-Type": "application/json"}).status_code
            for body in _bodies()
        ]
    assert statuses == [200, 200, 200, 200, 200, 400]
    expected = {*WITH_NUMBER, ERASED_BY_ID, UNTOUCHED}
    deadline = time.monotonic() + 120
    while set(_records(blobs, s.values["RECORDS_CONTAINER"])) != expected:
        assert time.monotonic() < deadline, "the pipeline did not write every record"
        time.sleep(1)
    host.stop_host(0)  # nothing writes while we erase (in production: see docs/operations.md)
    _seed_spilled_state(s, monkeypatch)

    hashed = pseudonym(KEY.encode(), NUMBER)
    stored = "\n".join(_texts(s, blobs, tables))
    assert hashed in stored and DIGITS.search(stored), "hashed in records, raw in letters/spill"
    untouched_record = _records(blobs, s.values["RECORDS_CONTAINER"])[UNTOUCHED]
    table = s.values["STATE_TABLE_NAME"]
    untouched_rows = [r for r in _rows(tables, table) if safe_key(UNTOUCHED) in r["RowKey"]]
    assert len(untouched_rows) == 2, "a state row and its due-index row"

    dry = s.cli_json("erase", "--conversation", ERASED_BY_ID)
    one = {"records": 1, "state_rows": 1, "index_rows": 1, "spill_blobs": 0, "dead_letters": 1}
    assert (dry["applied"], dry["found"], sum(dry["deleted"].values())) == (False, one, 0)
    assert ERASED_BY_ID in _records(blobs, s.values["RECORDS_CONTAINER"]), "dry run: kept"
    done = s.cli_json("erase", "--conversation", ERASED_BY_ID, "--apply")
    assert (done["deleted"], sum(done["remaining"].values())) == (one, 0)

    by_number = s.cli_json("erase", "--phone", NUMBER, "--apply")
    assert by_number["conversations"] == sorted([*WITH_NUMBER, SPILLED])
    assert by_number["deleted"] == by_number["found"]
    assert by_number["found"]["records"] == 2 and by_number["found"]["state_rows"] == 3
    assert by_number["found"]["spill_blobs"] == 1 and by_number["found"]["dead_letters"] == 1
    assert sum(by_number["remaining"].values()) == 0 and by_number["unreadable"] == []

    # Nothing of them is left anywhere, and the number in no form.
    gone = [safe_key(c) for c in (*WITH_NUMBER, ERASED_BY_ID, SPILLED)]
    rows = _rows(tables, table)
    assert not [r["RowKey"] for r in rows if any(key in r["RowKey"] for key in gone)]
    assert list(_spill(blobs)) == []
    assert set(_records(blobs, s.values["RECORDS_CONTAINER"])) == {UNTOUCHED}
    stored = "\n".join(_texts(s, blobs, tables))
    assert hashed not in stored and not DIGITS.search(stored)
    assert not any(c in stored for c in (*WITH_NUMBER, ERASED_BY_ID, SPILLED))
    # The other conversation is as it was.
    assert _records(blobs, s.values["RECORDS_CONTAINER"])[UNTOUCHED] == untouched_record
    assert [r for r in rows if safe_key(UNTOUCHED) in r["RowKey"]] == untouched_rows
    again = s.cli_json("erase", "--phone", NUMBER, "--conversation", ERASED_BY_ID)
    assert sum(again["found"].values()) == 0
    table_view = s.cli("erase", "--conversation", UNTOUCHED)
    assert table_view.exit_code == 0, table_view.output
    assert (
        "would erase (dry run" in table_view.output
        and f"conversation {UNTOUCHED}" in table_view.output
    )
    assert "3175550100" not in table_view.output


def test_the_local_host_timer_purges_old_dead_letters(
    scenario: ScenarioFactory, start_hosts: HostStarter
) -> None:
    s = scenario(
        "ops-purge",
        DEADLETTER_PURGE="timer",
        DEADLETTER_RETENTION_DAYS="0.00001",  # under a second
        TIMER_SCHEDULE="*/1 * * * * *",
    )
    settings = TransformSettings.from_env(s.values)
    sink = BlobDeadLetterSink(settings.state, settings.deadletter_container)
    for n in range(2):
        sink.write(
            DeadLetter(
                id=f"ingest-old-{n}",
                stage="ingest",
                reason="invalid-json",
                error="not JSON",
                received_at="2026-11-02T10:00:00.000Z",
                source=DeadLetterSource(headers={}),
                raw='{"ani": "tel:+13175550100"',
            )
        )
    sink.close()
    assert len(s.cli_json("deadletters", "list")) == 2
    time.sleep(1.5)
    start_hosts(app_dir=ROOT, env=s.values)
    deadline = time.monotonic() + 60
    while s.cli_json("deadletters", "list"):
        assert time.monotonic() < deadline, "the host's timer did not purge the dead letters"
        time.sleep(1)
