"""The Blueprint functions against the real services: Azurite and the Event Hubs emulator.

Requests are `azure.functions.HttpRequest` objects handed to the registered functions, exactly
as the worker would; the adapters behind them are the real ones.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import azure.functions as func
import httpx
import orjson
import pytest
from azure.storage.blob import LinearRetry

from adapters.blob_deadletters import (
    AsyncBlobDeadLetterSink,
    BlobDeadLetterSink,
    InMemoryAsyncDeadLetterSink,
    blob_name,
    read_letter,
)
from adapters.settings import IngestSettings, storage_connection
from devstack.stack import Stack
from ingest.accept import sign
from ingest.breaker import BreakerState
from schemas.record import DeadLetter, DeadLetterSource
from tests.ingest.conftest import (
    PrivateEmulator,
    RuntimeFactory,
    dead_letter_blobs,
    properties,
    read_events,
    settings_for,
)
from tests.ingest.helpers import SECRET, body_of, eventbridge, notification, voice
from tests.ingest.test_function import functions_by_name
from transform.errors import StorageUnavailable

pytestmark = pytest.mark.stack


def post(body: bytes, headers: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(
        method="POST",
        url="http://localhost/api/v1/genesys/events",
        headers={"Content-Type": "application/json", **(headers or {})},
        body=body,
    )


async def call(body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    response = await functions_by_name()["ingest_events"](post(body, headers))
    return response.status_code, orjson.loads(response.get_body())


async def health() -> dict[str, Any]:
    response = await functions_by_name()["health"](
        func.HttpRequest(method="GET", url="http://localhost/api/health", body=b"")
    )
    result: dict[str, Any] = orjson.loads(response.get_body())
    return result


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------ accepted → Event Hubs


@pytest.mark.asyncio
async def test_accepted_events_are_in_the_hub_with_key_and_properties(
    local_stack: Stack, stack_settings: Callable[..., IngestSettings], install: RuntimeFactory
) -> None:
    install(stack_settings())
    a, b = unique("conv-a"), unique("conv/b ?#")
    payloads = [
        voice(a),
        notification(b, "customer.start", 0, participantId="p"),
        voice(a, 30, disconnected=True),
        eventbridge(notification(b, "customer.end", 9, participantId="p")),
    ]
    headers = {"X-Idempotency-Key": "idem-42", "X-Genesys-Event-Type": "conversation.detail"}
    status, answer = await call(body_of(payloads), headers)
    assert status == 200, answer
    assert (answer["events"], answer["conversations"], answer["eventhub_events"]) == (4, 2, 2)

    found = await read_events(local_stack.eventhub_connection_string, {answer["message_id"]}, 2)
    by_key = {event.partition_key.decode(): (partition, event) for partition, event in found}
    assert set(by_key) == {a, b}
    assert orjson.loads(by_key[a][1].body_as_str()) == [payloads[0], payloads[2]]
    assert orjson.loads(by_key[b][1].body_as_str()) == [payloads[1], payloads[3]]
    props = properties(by_key[b][1])
    assert props["idempotency_key"] == "idem-42"
    assert props["event_type"] == "conversation.detail"
    assert props["format"] == "eventbridge,notification"
    assert props["payload_count"] == "2"
    assert props["received_at"] is not None and props["received_at"].endswith("Z")


@pytest.mark.asyncio
async def test_one_conversation_always_lands_on_one_partition(
    local_stack: Stack, stack_settings: Callable[..., IngestSettings], install: RuntimeFactory
) -> None:
    install(stack_settings())
    conversation = unique("sticky")
    ids = set()
    for created in range(5):
        status, answer = await call(body_of(voice(conversation, created * 10)))
        assert status == 200
        ids.add(answer["message_id"])
    found = await read_events(local_stack.eventhub_connection_string, ids, 5)
    assert len(found) == 5
    assert len({partition for partition, _ in found}) == 1


# ------------------------------------------------------------------ rejected → dead letters


@pytest.mark.asyncio
async def test_a_400_leaves_a_dead_letter_holding_the_raw_body(
    local_stack: Stack, stack_settings: Callable[..., IngestSettings], install: RuntimeFactory
) -> None:
    install(stack_settings())
    raw = b'{"not": "a genesys payload", "nonce": "' + uuid.uuid4().hex.encode() + b'"}'
    status, answer = await call(raw, {"X-Idempotency-Key": "k-400"})
    assert status == 400
    assert answer["reason"] == "unrecognized-payload"
    blobs = dead_letter_blobs(local_stack.storage_connection_string)
    (name,) = [n for n in blobs if n.endswith(f"/{answer['deadletter_id']}.json")]
    assert name.startswith("ingest/20")
    content, metadata = blobs[name]
    letter = read_letter(content)
    assert letter.raw.encode() == raw
    assert letter.stage == "ingest"
    assert letter.source.headers == {
        "content-type": "application/json",
        "x-idempotency-key": "k-400",
    }
    assert metadata["reason"] == "unrecognized-payload"


@pytest.mark.asyncio
async def test_binary_garbage_is_kept_as_base64(
    local_stack: Stack, stack_settings: Callable[..., IngestSettings], install: RuntimeFactory
) -> None:
    install(stack_settings())
    raw = b"\xff\xfe" + uuid.uuid4().bytes
    status, answer = await call(raw)
    assert status == 400
    blobs = dead_letter_blobs(local_stack.storage_connection_string)
    (content, _) = next(v for n, v in blobs.items() if answer["deadletter_id"] in n)
    letter = read_letter(content)
    assert letter.raw_encoding == "base64"
    import base64

    assert base64.b64decode(letter.raw) == raw


@pytest.mark.asyncio
async def test_a_mixed_body_sends_the_good_and_stores_the_bad(
    local_stack: Stack, stack_settings: Callable[..., IngestSettings], install: RuntimeFactory
) -> None:
    install(stack_settings())
    good = unique("mixed")
    bad = {"bad": uuid.uuid4().hex}
    status, answer = await call(body_of([voice(good), bad]))
    assert status == 200
    assert answer["rejected"] == 1
    (letter_id,) = answer["deadletter_ids"]
    blobs = dead_letter_blobs(local_stack.storage_connection_string)
    (content, _) = next(v for n, v in blobs.items() if letter_id in n)
    assert orjson.loads(read_letter(content).raw) == bad
    found = await read_events(local_stack.eventhub_connection_string, {answer["message_id"]}, 1)
    assert [e.partition_key.decode() for _, e in found] == [good]


# ------------------------------------------------------------------ refusals store nothing


@pytest.mark.asyncio
async def test_signatures_oversize_and_content_type_store_nothing(
    local_stack: Stack, stack_settings: Callable[..., IngestSettings], install: RuntimeFactory
) -> None:
    install(stack_settings(WEBHOOK_SECRET=SECRET.decode(), INGEST_MAX_BODY_BYTES="4096"))
    before = set(dead_letter_blobs(local_stack.storage_connection_string))
    body = body_of(voice(unique("signed")))

    missing, _ = await call(body)
    wrong, _ = await call(body, {"X-Signature-256": sign(body, b"another secret")})
    tampered, _ = await call(body + b" ", {"X-Signature-256": sign(body, SECRET)})
    unsigned_garbage, _ = await call(b"garbage")
    oversize, oversize_answer = await call(b"[" + b" " * 5000 + b"]")
    text_plain, _ = await call(
        body, {"X-Signature-256": sign(body, SECRET), "Content-Type": "text/plain"}
    )
    assert (missing, wrong, tampered, unsigned_garbage) == (401, 401, 401, 401)
    assert oversize == 413 and "4096" in oversize_answer["error"]
    assert text_plain == 415
    assert set(dead_letter_blobs(local_stack.storage_connection_string)) == before

    signed, answer = await call(body, {"X-Signature-256": sign(body, SECRET)})
    assert signed == 200, answer


# ------------------------------------------------------------------ concurrency and latency


@pytest.mark.asyncio
async def test_64_concurrent_requests_share_one_producer(
    local_stack: Stack, stack_settings: Callable[..., IngestSettings], install: RuntimeFactory
) -> None:
    runtime = install(stack_settings())
    bodies = [body_of([voice(unique("c64")), voice(unique("c64"))]) for _ in range(64)]
    results = await asyncio.gather(*(call(body) for body in bodies))
    assert {status for status, _ in results} == {200}
    assert runtime.publisher.clients_created == 1
    ids = {answer["message_id"] for _, answer in results}
    found = await read_events(local_stack.eventhub_connection_string, ids, 128, timeout=30)
    assert len(found) == 128


@pytest.mark.asyncio
async def test_request_latency_on_the_emulator(
    local_stack: Stack, stack_settings: Callable[..., IngestSettings], install: RuntimeFactory
) -> None:
    install(stack_settings())
    body = body_of([voice(unique("lat")), notification(unique("lat"), "acw", 3)])
    assert (await call(body))[0] == 200  # the first request opens the AMQP connection

    sequential = []
    for _ in range(200):
        started = time.perf_counter()
        status, _ = await call(body)
        sequential.append((time.perf_counter() - started) * 1000)
        assert status == 200

    gate = asyncio.Semaphore(64)  # 64 senders, each sending its next request when answered

    async def timed() -> float:
        async with gate:
            started = time.perf_counter()
            assert (await call(body))[0] == 200
            return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    concurrent = await asyncio.gather(*(timed() for _ in range(640)))
    wall = time.perf_counter() - started

    def p(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1]

    print(
        f"\ningest latency on the emulator (2 conversations per request): sequential "
        f"p50={statistics.median(sequential):.2f} ms p99={p(sequential, 99):.2f} ms; "
        f"640 requests by 64 concurrent senders p50={statistics.median(concurrent):.2f} ms "
        f"p99={p(list(concurrent), 99):.2f} ms, {640 / wall:.0f} requests/s"
    )
    assert statistics.median(sequential) < 50
    assert p(list(concurrent), 99) < 1000


# ------------------------------------------------------------------ Event Hubs outages


@pytest.mark.asyncio
async def test_emulator_stopped_503_breaker_opens_then_closes_after_restart(
    local_stack: Stack, private_emulator: PrivateEmulator, install: RuntimeFactory
) -> None:
    install(
        settings_for(
            private_emulator.connection_string,
            local_stack.storage_connection_string,
            INGEST_SEND_TIMEOUT_SECONDS="3",
            BREAKER_FAILURE_THRESHOLD="2",
            BREAKER_OPEN_SECONDS="2",
        )
    )
    body = body_of(voice(unique("outage")))
    assert (await call(body))[0] == 200

    private_emulator.stop()
    for _ in range(2):
        started = time.monotonic()
        status, answer = await call(body)
        assert status == 503
        assert answer["code"] == "publish-failed"
        assert time.monotonic() - started < 3.5  # within the send timeout
    assert (await health())["breaker"]["state"] == "open"

    started = time.monotonic()
    status, answer = await call(body)
    assert (status, answer["code"]) == (503, "circuit-open")
    assert time.monotonic() - started < 0.1  # refused at once, no send attempted
    assert 1 <= answer["retry_after_seconds"] <= 2

    private_emulator.start()
    await asyncio.sleep(2.1)  # the open period
    status, answer = await call(body)  # the half-open probe
    assert status == 200, answer
    state = await health()
    assert state["status"] == "ok"
    assert state["breaker"]["state"] == BreakerState.CLOSED
    assert state["breaker"]["times_opened"] == 1


@pytest.mark.asyncio
async def test_a_frozen_emulator_answers_503_within_the_send_timeout(
    local_stack: Stack, private_emulator: PrivateEmulator, install: RuntimeFactory
) -> None:
    install(
        settings_for(
            private_emulator.connection_string,
            local_stack.storage_connection_string,
            INGEST_SEND_TIMEOUT_SECONDS="1",
        )
    )
    body = body_of(voice(unique("frozen")))
    assert (await call(body))[0] == 200
    private_emulator.freeze()
    started = time.monotonic()
    status, answer = await call(body)
    elapsed = time.monotonic() - started
    private_emulator.thaw()
    assert status == 503
    assert "did not confirm within 1.0 s" in answer["error"]
    assert elapsed < 1.5
    for _ in range(20):  # the same producer recovers once the broker answers again
        if (await call(body))[0] == 200:
            break
        await asyncio.sleep(0.25)
    else:
        pytest.fail("ingest did not recover after the emulator thawed")


@pytest.mark.asyncio
async def test_storage_down_turns_a_rejection_into_503(
    private_emulator: PrivateEmulator, install: RuntimeFactory
) -> None:
    dead_storage = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    install(settings_for(private_emulator.connection_string, dead_storage))
    started = time.monotonic()
    status, answer = await call(b"not json")
    assert status == 503
    assert answer["code"] == "deadletter-store-failed"
    assert time.monotonic() - started < 10


# ------------------------------------------------------------------ the dead-letter sinks


def letter(stage: str = "ingest", raw: str = "{}") -> DeadLetter:
    return DeadLetter(
        id=f"{stage}-{uuid.uuid4().hex}",
        stage=stage,
        reason="invalid-json",
        error="the body is not JSON",
        received_at="2026-11-24T09:00:00.123Z",
        source=DeadLetterSource(headers={"content-type": "application/json"}),
        raw=raw,
    )


def test_blob_names_are_dated_by_stage() -> None:
    item = letter("transform")
    assert blob_name(item) == f"transform/2026/11/24/{item.id}.json"


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["memory", "async-blob", "sync-blob"])
async def test_dead_letter_sinks_are_create_only_per_id(local_stack: Stack, kind: str) -> None:
    container = unique("dl").lower()
    connection = storage_connection({"S": local_stack.storage_connection_string}, "S")
    first, second = letter(raw="first"), None
    second = first.model_copy(update={"raw": "second"})
    if kind == "memory":
        memory = InMemoryAsyncDeadLetterSink()
        await memory.write(first)
        await memory.write(second)
        stored = {name: data for name, data in memory.blobs.items()}
    elif kind == "async-blob":
        sink = AsyncBlobDeadLetterSink(connection, container)
        await asyncio.gather(sink.write(first), sink.write(second))  # racing writers
        await sink.close()
        stored = {
            n: c
            for n, (c, _) in dead_letter_blobs(
                local_stack.storage_connection_string, container
            ).items()
        }
    else:
        sync_sink = BlobDeadLetterSink(connection, container)
        sync_sink.write(first)  # the container does not exist yet: created on demand
        sync_sink.write(second)
        sync_sink.close()
        stored = {
            n: c
            for n, (c, _) in dead_letter_blobs(
                local_stack.storage_connection_string, container
            ).items()
        }
    assert list(stored) == [blob_name(first)]
    assert read_letter(stored[blob_name(first)]).raw in ("first", "second")
    if kind != "async-blob":  # sequential writers: the first copy is kept
        assert read_letter(stored[blob_name(first)]).raw == "first"


@pytest.mark.asyncio
async def test_unreachable_storage_is_storage_unavailable_within_seconds() -> None:
    connection = storage_connection(
        {
            "S": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
            "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
        },
        "S",
    )
    sink = AsyncBlobDeadLetterSink(connection)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match="check the StateStorage setting"):
        await sink.write(letter())
    await sink.close()
    assert time.monotonic() - started < 10
    sync_sink = BlobDeadLetterSink(connection, retry_policy=LinearRetry(retry_total=0))
    with pytest.raises(StorageUnavailable):
        sync_sink.write(letter())
    sync_sink.close()


# ------------------------------------------------------------------ through the local host


@pytest.mark.e2e
@pytest.mark.asyncio
async def test_through_real_http_on_the_local_host(
    local_stack: Stack, start_hosts: Callable[..., Stack]
) -> None:
    from tests.conftest import ROOT

    host = start_hosts(app_dir=ROOT, env={"EVENTHUB_NAME": "test-events", "WEBHOOK_SECRET": ""})
    url = host.http_base_url() + "/api/v1/genesys/events"
    body = body_of([voice(unique("http")), notification(unique("http"), "acw", 2)])
    json_type = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=10) as client:
        accepted = await client.post(url, content=body, headers=json_type)
        assert accepted.status_code == 200, accepted.text
        assert accepted.headers["content-type"].startswith("application/json")
        rejected = await client.post(url, content=b"{oops", headers=json_type)
        assert rejected.status_code == 400
        wrong_type = await client.post(url, content=body, headers={"Content-Type": "text/plain"})
        assert wrong_type.status_code == 415
        health = await client.get(host.http_base_url() + "/api/health")
        assert health.json()["breaker"]["state"] == "closed"

        gate = asyncio.Semaphore(64)

        async def timed() -> float:
            async with gate:
                started = time.perf_counter()
                answer = await client.post(url, content=body, headers=json_type)
                assert answer.status_code == 200
                return (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        latencies = await asyncio.gather(*(timed() for _ in range(640)))
        wall = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"\ningest through the local host over HTTP, 64 concurrent senders: "
        f"p50={quantiles[49]:.1f} ms p99={quantiles[98]:.1f} ms, {640 / wall:.0f} requests/s"
    )
    found = await read_events(
        local_stack.eventhub_connection_string, {accepted.json()["message_id"]}, 2
    )
    assert len(found) == 2


def test_the_producer_is_closed_at_exit_on_its_idle_loop(
    private_emulator: PrivateEmulator,
) -> None:
    from adapters.eventhub_producer import EventHubPublisher
    from adapters.settings import eventhub_connection
    from ingest.accept import OutboundEvent

    connection = eventhub_connection({"E": private_emulator.connection_string}, "E")
    publisher = EventHubPublisher(connection, "test-events")
    health_url = f"http://127.0.0.1:{private_emulator.health_port}/health"

    def connections() -> int:
        count: int = httpx.get(health_url).json()["connections"]
        return count

    loop = asyncio.new_event_loop()
    try:
        event = OutboundEvent("exit", b"{}", {}, 1)
        loop.run_until_complete(publisher.publish([event], 5))
        assert connections() == 1
        publisher.close_at_exit()  # what the atexit hook runs once the worker's loop stopped
        deadline = time.monotonic() + 5
        while connections() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert connections() == 0
        publisher.close_at_exit()  # a second call (nothing open) is harmless
    finally:
        loop.close()
