"""Hostile input through the real HTTP route of the local host, on Azurite and the emulator.

- mutants of real bodies: always a 2xx/4xx with a JSON body, never a 500 (nor a 503 on a
  healthy stack); every accepted payload ends applied or dead-lettered, exactly as the offline
  replay of what reached the hub says; every rejected one is a dead letter holding its bytes;
- hostile conversation ids: stored, retrievable and round-tripped exactly, no key or blob name
  outside the rules;
- HMAC: nothing unauthenticated is stored or sent, and no secret or signature reaches a log or
  a dead letter.
"""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from azure.data.tables import TableServiceClient
from azure.eventhub import EventData, EventHubConsumerClient
from azure.storage.blob import BlobServiceClient

from adapters.blob_deadletters import read_letter
from adapters.entity import MAX_KEY_BYTES
from devstack.stack import Stack
from ingest.accept import sign
from simulator.generate.mutate import mutants
from tests.conftest import OBSERVER_GROUP
from tests.contract.states import HOSTILE_IDS
from tests.ingest.helpers import notification, voice
from tests.reliability.seeds import seed_bodies
from tests.replaying import replay_in_memory
from transform.deadletters import raw_bytes
from transform.derive import PROCESSING_FIELDS
from transform.jsontext import dump_json
from transform.state import Timing

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
GRACE_S, IDLE_S = 2, 8
MUTANTS = int(os.environ.get("RELIABILITY_HTTP_MUTANTS", "300"))  # more outside CI
IGNORED = PROCESSING_FIELDS | {"first_seen_at"}
ROUTE = "/api/v1/genesys/events"


class Pipeline:
    """The project's app on one host, with its own hub, table and containers."""

    def __init__(self, start_hosts: Callable[..., Stack], hub: str, secret: str) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.hub = hub
        self.records = f"rel-records-{suffix}"
        self.dead_letters = f"rel-deadletter-{suffix}"
        self.table = f"relstate{suffix}"
        self.stack = start_hosts(
            app_dir=ROOT,
            env={
                "EVENTHUB_NAME": hub,
                "WEBHOOK_SECRET": secret,
                "STATE_TABLE_NAME": self.table,
                "RECORDS_CONTAINER": self.records,
                "DEADLETTER_CONTAINER": self.dead_letters,
                "GRACE_PERIOD_SECONDS": str(GRACE_S),
                "IDLE_TIMEOUT_SECONDS": str(IDLE_S),
                "TIMER_SCHEDULE": "*/2 * * * * *",
            },
        )
        self.url = self.stack.http_base_url() + ROUTE

    def post_all(
        self, bodies: list[bytes], headers: list[dict[str, str]] | None = None
    ) -> list[tuple[int, Any]]:
        """POST every body (16 at a time); (status, parsed JSON answer) in order."""
        heads = headers or [{"Content-Type": "application/json"}] * len(bodies)
        with httpx.Client(timeout=60) as client:

            def post(item: tuple[bytes, dict[str, str]]) -> tuple[int, Any]:
                answer = client.post(self.url, content=item[0], headers=item[1])
                try:
                    document = orjson.loads(answer.content)
                except orjson.JSONDecodeError:
                    document = None
                return answer.status_code, document

            with ThreadPoolExecutor(max_workers=16) as pool:
                return list(pool.map(post, zip(bodies, heads, strict=True)))

    def hub_bodies(self, expected: int, stall_s: float = 30) -> list[bytes]:
        """Bodies of every event in the pipeline's hub (read by the observer group), read
        until `expected` have come, or nothing more has for `stall_s` seconds."""
        found: list[bytes] = []
        client = EventHubConsumerClient.from_connection_string(
            self.stack.eventhub_connection_string, OBSERVER_GROUP, eventhub_name=self.hub
        )

        def on_event(_: Any, event: EventData | None) -> None:
            if event is not None:
                found.append(event.body_as_str(encoding="utf-8").encode())

        reader = threading.Thread(
            target=client.receive,
            kwargs={"on_event": on_event, "starting_position": "-1", "max_wait_time": 1},
            daemon=True,
        )
        reader.start()
        seen, last_progress = 0, time.monotonic()
        while len(found) < expected and time.monotonic() - last_progress < stall_s:
            time.sleep(0.5)
            if len(found) > seen:
                seen, last_progress = len(found), time.monotonic()
        time.sleep(1.0)  # anything beyond the expected count shows up too
        client.close()
        reader.join(10)
        return found

    def blobs(self, container: str) -> dict[str, bytes]:
        with BlobServiceClient.from_connection_string(
            self.stack.storage_connection_string
        ) as service:
            client = service.get_container_client(container)
            if not client.exists():
                return {}
            return {b.name: client.download_blob(b.name).readall() for b in client.list_blobs()}

    def records_by_id(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for data in self.blobs(self.records).values():
            document = orjson.loads(data)
            out[document["conversation_id"]] = document
        return out

    def wait_for_records(
        self, expected: dict[str, dict[str, Any]], stall_s: float = 60
    ) -> dict[str, dict[str, Any]]:
        """The stored records once they equal `expected`, or once they stop changing."""
        got: dict[str, dict[str, Any]] = {}
        last_change = time.monotonic()
        while time.monotonic() - last_change < stall_s:
            now = {cid: observable(r) for cid, r in self.records_by_id().items()}
            if now == expected:
                return now
            if now != got:
                got, last_change = now, time.monotonic()
            time.sleep(2)
        return got


def observable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in IGNORED}


@pytest.fixture
def pipeline(local_stack: Stack, start_hosts: Callable[..., Stack]) -> Callable[..., Pipeline]:
    def start(hub: str, secret: str = "") -> Pipeline:
        return Pipeline(start_hosts, hub, secret)

    return start


def kept_from(body: bytes, raw: bytes) -> bool:
    """A letter holds the whole body, or one payload of the body's array, re-encoded."""
    if raw == body:
        return True
    document = orjson.loads(body.removeprefix(b"\xef\xbb\xbf"))
    return isinstance(document, list) and any(dump_json(item) == raw for item in document)


def test_mutants_through_http_are_answered_and_every_payload_is_accounted_for(
    pipeline: Callable[..., Pipeline],
) -> None:
    run = pipeline("reliability-fuzz")
    bodies = list(seed_bodies()) + [m.body for m in mutants(seed_bodies(), MUTANTS, seed=7)]
    answers = run.post_all(bodies)

    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 400, 413, 415}, {s: statuses.count(s) for s in set(statuses)}
    assert all(isinstance(doc, dict) and doc.get("status") for _, doc in answers)
    assert {200, 400, 413} <= set(statuses), "the mutants reach every answer"

    # Ingest: every rejected payload is a dead letter holding the bytes it was sent as.
    letter_ids = {i for _, doc in answers for i in doc.get("deadletter_ids", ())}
    blobs = run.blobs(run.dead_letters)
    parsed = (read_letter(data) for name, data in blobs.items() if name.startswith("ingest/"))
    letters = {letter.id: letter for letter in parsed}
    assert set(letters) == letter_ids
    for (status, doc), body in zip(answers, bodies, strict=True):
        for letter_id in doc.get("deadletter_ids", ()) if status in (200, 400) else ():
            assert kept_from(body, raw_bytes(letters[letter_id])), letter_id

    # Event Hubs: exactly the events ingest said it wrote.
    sent = sum(doc["eventhub_events"] for status, doc in answers if status == 200)
    in_hub = run.hub_bodies(sent)
    assert len(in_hub) == sent

    # Transform: what reached the hub ends as the offline replay says, records and letters.
    lines = b"\n".join(dump_json(orjson.loads(body)) for body in in_hub) + b"\n"
    expected_records, expected_letters, _ = replay_in_memory(
        io.BytesIO(lines), timing=Timing(GRACE_S * 1000, IDLE_S * 1000)
    )
    expected = {cid: observable(r) for cid, r in expected_records.records.items()}
    assert expected, "some mutants stay valid and become records"
    got = run.wait_for_records(expected)
    assert got == expected, sorted(set(got) ^ set(expected))[:5]
    transform_letters = [n for n in run.blobs(run.dead_letters) if n.startswith("transform/")]
    assert len(transform_letters) == len(expected_letters.letters)
    answered = {status: statuses.count(status) for status in sorted(set(statuses))}
    print(  # the figures RELIABILITY.md records (pytest -s)
        f"\n{len(bodies)} bodies: answers {answered}; {len(letters)} ingest dead letters; "
        f"{sent} events in the hub; {len(got)} records and {len(transform_letters)} transform "
        "dead letters, as the replay says"
    )


def test_hostile_conversation_ids_round_trip_exactly_end_to_end(
    pipeline: Callable[..., Pipeline],
) -> None:
    run = pipeline("reliability-ids")
    ids = [*HOSTILE_IDS, "../../conversations/evil", "%2e%2e%2fescape", "a" * 1025 + "/b"]
    bodies = []
    for cid in ids:
        bodies.append(orjson.dumps(voice(cid, disconnected=True)))
        bodies.append(orjson.dumps(notification(cid, "user.end", 3, participantId="p")))
    answers = run.post_all(bodies)
    assert [status for status, _ in answers] == [200] * len(bodies), answers

    records = run.records_by_id()
    deadline = time.monotonic() + 90
    while set(records) != set(ids) and time.monotonic() < deadline:
        time.sleep(2)
        records = run.records_by_id()
    assert set(records) == set(ids)  # every id exactly as sent, control characters and all
    assert all(records[cid]["conversation_id"] == cid for cid in ids)

    names = list(run.blobs(run.records))
    assert len(names) == len(ids)
    for name in names:  # one flat level of safe names: nothing can point outside
        assert "/" not in name and "\\" not in name and ".." not in name, name
        assert name.isascii() and name.isprintable() and len(name) <= 1024, name

    with TableServiceClient.from_connection_string(run.stack.storage_connection_string) as tables:
        for entity in tables.get_table_client(run.table).list_entities():
            for key in (entity["PartitionKey"], entity["RowKey"]):
                assert not any(c in key for c in "/\\#?") and key.isprintable(), key
                assert len(key.encode("utf-16-le")) <= MAX_KEY_BYTES


def test_unauthenticated_requests_store_nothing_and_secrets_never_reach_logs_or_letters(
    pipeline: Callable[..., Pipeline],
) -> None:
    secret = f"hmac-{uuid.uuid4().hex}"
    run = pipeline("reliability-auth", secret=secret)
    good = orjson.dumps(voice("auth-ok", disconnected=True))
    changed = orjson.dumps(voice("auth-forged", disconnected=True))
    garbage = b'{"not": "a payload"}'
    signature = sign(good, secret.encode())
    json_type = {"Content-Type": "application/json"}
    cases = [
        (good, {**json_type, "X-Signature-256": signature}, 200),
        (garbage, {**json_type, "X-Signature-256": sign(garbage, secret.encode())}, 400),
        (changed, {**json_type, "X-Signature-256": signature}, 401),  # replayed signature
        (changed, json_type, 401),  # missing
        (changed, {**json_type, "X-Signature-256": "sha256=" + "0" * 64}, 401),
        (changed, {**json_type, "X-Signature-256": sign(changed, b"another-secret")}, 401),
        (changed, {**json_type, "X-Signature-256": "not-even-the-format"}, 401),
    ]
    answers = run.post_all([body for body, _, _ in cases], [headers for _, headers, _ in cases])
    assert [status for status, _ in answers] == [status for _, _, status in cases]

    in_hub = run.hub_bodies(1)
    assert in_hub == [good]  # only the authenticated payload was sent
    letters = run.blobs(run.dead_letters)
    assert [raw_bytes(read_letter(data)) for data in letters.values()] == [garbage]

    time.sleep(1)  # let the host flush its log
    host_log = run.stack.log_file("host-0").read_bytes()
    assert b"invalid-signature" in host_log, "the log read is this host's"
    stored = b"".join(letters.values())
    for text in (secret.encode(), signature.encode(), signature.removeprefix("sha256=").encode()):
        assert text not in host_log
        assert text not in stored
