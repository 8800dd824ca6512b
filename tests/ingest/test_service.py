"""The ingest service with the in-memory twins: every SPEC 6 answer, the breaker, never 500."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import metrics as m
from ingest.accept import AcceptanceLimits, Request, lower_headers, sign
from ingest.breaker import BreakerState
from ingest.service import Answer
from tests.ingest.helpers import (
    RECEIVED_MS,
    SECRET,
    Rig,
    body_of,
    notification,
    voice,
)
from transform.normalize import parse_delivery


def assert_unavailable(answer: Answer, code: str) -> None:
    assert answer.status == 503
    assert answer.body["status"] == "unavailable"
    assert answer.body["code"] == code
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.body["retry_after_seconds"] == int(answer.headers["Retry-After"])


# ------------------------------------------------------------------ 200


@pytest.mark.asyncio
async def test_accepted_only_after_the_send_with_counts() -> None:
    rig = Rig()
    answer = await rig.send([voice("A"), voice("B"), voice("A", 50)])
    assert answer.status == 200
    assert answer.body == {
        "status": "accepted",
        "message_id": "m-1",
        "events": 3,
        "heartbeats": 0,
        "rejected": 0,
        "deadletter_ids": [],
        "conversations": 2,
        "micro_events": 6,
        "eventhub_events": 2,
    }
    assert [e.partition_key for e in rig.publisher.sent] == ["A", "B"]
    assert rig.metrics.counter(m.REQUESTS, outcome="accepted", status="200") == 1
    assert rig.metrics.counter(m.PAYLOADS_ACCEPTED) == 3
    assert rig.metrics.counter(m.EVENTS_SENT) == 2
    latency = rig.metrics.histogram(m.SEND_LATENCY_MS)
    assert latency is not None and latency.count == 1


@pytest.mark.asyncio
async def test_mixed_body_sends_the_good_and_stores_the_bad_first() -> None:
    rig = Rig()
    answer = await rig.send([voice("A"), {"what": "ever"}, 3])
    assert answer.status == 200
    assert answer.body["events"] == 1
    assert answer.body["rejected"] == 2
    ids = answer.body["deadletter_ids"]
    assert set(ids) == set(rig.sink.letters)
    assert len(ids) == 2
    assert [e.partition_key for e in rig.publisher.sent] == ["A"]
    assert rig.metrics.counter(m.PAYLOADS_REJECTED, reason="unrecognized-payload") == 1


# ------------------------------------------------------------------ 400


@pytest.mark.asyncio
async def test_rejected_body_is_stored_as_a_dead_letter_before_the_400() -> None:
    rig = Rig()
    answer = await rig.send(b"{this is not json", **{"X-Idempotency-Key": "k-9"})
    assert answer.status == 400
    assert answer.body["status"] == "rejected"
    assert answer.body["reason"] == "invalid-json"
    # One parser, one text: the reason says what it is, the error is the JSON decoder's own.
    assert answer.body["error"] == parse_delivery(b"{this is not json").rejections[0].error
    letter = rig.sink.letters[answer.body["deadletter_id"]]
    assert letter.raw == "{this is not json"
    assert letter.source.headers == {"content-type": "application/json", "x-idempotency-key": "k-9"}
    assert not rig.publisher.sent


@pytest.mark.asyncio
async def test_a_retried_rejection_keeps_one_dead_letter() -> None:
    rig = Rig()
    first = await rig.send(b'{"nope": 1}')
    second = await rig.send(b'{"nope": 1}')
    assert first.body["deadletter_id"] == second.body["deadletter_id"]
    assert len(rig.sink.blobs) == 1


@pytest.mark.asyncio
async def test_all_bad_array_is_400_with_every_letter() -> None:
    rig = Rig()
    answer = await rig.send([{"a": 1}, {"b": 2}])
    assert answer.status == 400
    assert answer.body["rejected"] == 2
    assert answer.body["deadletter_id"] == answer.body["deadletter_ids"][0]
    assert "none of the 2 payloads" in answer.body["error"]
    assert len(rig.sink.letters) == 2


@pytest.mark.asyncio
async def test_a_rejection_that_cannot_be_stored_is_503_not_400() -> None:
    rig = Rig()
    rig.sink.fail_with = ConnectionError("storage down")
    answer = await rig.send(b"not json")
    assert_unavailable(answer, "deadletter-store-failed")
    assert not rig.publisher.sent


@pytest.mark.asyncio
async def test_a_mixed_body_whose_letters_cannot_be_stored_sends_nothing() -> None:
    rig = Rig()
    rig.sink.fail_with = ConnectionError("storage down")
    answer = await rig.send([voice("A"), {"bad": 1}])
    assert_unavailable(answer, "deadletter-store-failed")
    assert not rig.publisher.sent


@pytest.mark.asyncio
async def test_dead_letters_still_work_while_the_circuit_is_open() -> None:
    rig = Rig(threshold=1)
    rig.publisher.fail_with = ConnectionError("hub down")
    await rig.send(voice("A"))
    assert rig.service.breaker.state is BreakerState.OPEN
    answer = await rig.send(b"garbage")
    assert answer.status == 400
    assert answer.body["deadletter_id"] in rig.sink.letters


# ------------------------------------------------------------------ 401, 413, 415


@pytest.mark.asyncio
async def test_refusals_store_and_send_nothing() -> None:
    rig = Rig(secret=SECRET, limits=AcceptanceLimits(max_body_bytes=2000))
    unsigned = Request(
        body=body_of(voice("A")),
        headers=lower_headers({"Content-Type": "application/json"}),
        received_at_ms=RECEIVED_MS,
        message_id="m-x",
    )
    missing = await rig.service.handle(unsigned)
    assert missing.status == 401
    assert missing.body["code"] == "invalid-signature"
    assert "missing" in missing.body["error"]

    wrong_type = await rig.send(voice("A"), **{"Content-Type": "text/plain"})
    assert wrong_type.status == 415
    assert wrong_type.body["status"] == "rejected"

    too_big = await rig.send(b"[" + b" " * 3000 + b"]")
    assert too_big.status == 413
    assert "2000" in too_big.body["error"]

    assert not rig.publisher.sent
    assert not rig.sink.blobs
    assert rig.metrics.total(m.REQUESTS) == 3


# ------------------------------------------------------------------ 503 and the breaker


@pytest.mark.asyncio
async def test_send_failure_is_503_with_retry_after() -> None:
    rig = Rig()
    rig.publisher.fail_with = ConnectionError("hub down")
    answer = await rig.send(voice("A"))
    assert_unavailable(answer, "publish-failed")
    assert answer.headers["Retry-After"] == "1"  # the breaker is still closed
    assert rig.metrics.counter(m.SEND_FAILURES, kind="error") == 1


@pytest.mark.asyncio
async def test_send_timeout_is_503_within_the_timeout() -> None:
    rig = Rig(timeout=0.2)
    rig.publisher.delay_seconds = 5
    started = time.monotonic()
    answer = await rig.send(voice("A"))
    elapsed = time.monotonic() - started
    assert_unavailable(answer, "publish-failed")
    assert "did not confirm within 0.2 s" in answer.body["error"]
    assert elapsed < 1.0
    assert rig.metrics.counter(m.SEND_FAILURES, kind="timeout") == 1


@pytest.mark.asyncio
async def test_breaker_opens_refuses_at_once_then_probes_and_closes() -> None:
    rig = Rig(threshold=3, open_seconds=30)
    rig.publisher.fail_with = ConnectionError("hub down")
    for _ in range(3):
        assert (await rig.send(voice("A"))).status == 503
    assert rig.service.breaker.state is BreakerState.OPEN
    calls = rig.publisher.calls

    refused = await rig.send(voice("A"))
    assert_unavailable(refused, "circuit-open")
    assert refused.headers["Retry-After"] == "30"
    assert rig.publisher.calls == calls  # nothing attempted while open

    rig.clock.advance(31)
    rig.publisher.fail_with = None
    probe = await rig.send(voice("A"))
    assert probe.status == 200
    assert rig.service.breaker.state is BreakerState.CLOSED
    assert (await rig.send(voice("B"))).status == 200


@pytest.mark.asyncio
async def test_the_third_failure_reports_the_open_period_as_retry_after() -> None:
    rig = Rig(threshold=1, open_seconds=12)
    rig.publisher.fail_with = ConnectionError("hub down")
    answer = await rig.send(voice("A"))
    assert answer.headers["Retry-After"] == "12"


@pytest.mark.asyncio
async def test_a_half_written_request_is_503_and_its_retry_completes_it() -> None:
    rig = Rig()
    rig.publisher.fail_after = 1
    body = [voice("A"), voice("B")]
    assert_unavailable(await rig.send(body), "publish-failed")
    assert [e.partition_key for e in rig.publisher.sent] == ["A"]
    rig.publisher.fail_after = None
    assert (await rig.send(body)).status == 200
    # A was written twice: the consumer deduplicates it by micro-event identity.
    assert sorted(e.partition_key for e in rig.publisher.sent) == ["A", "A", "B"]


@pytest.mark.asyncio
async def test_an_unexpected_publisher_error_is_still_503() -> None:
    class Broken:
        async def publish(self, events: object, timeout: float) -> None:
            raise RuntimeError("bug")

    rig = Rig()
    rig.service._publisher = Broken()
    answer = await rig.send(voice("A"))
    assert_unavailable(answer, "publish-failed")
    assert "RuntimeError" in answer.body["error"]


@pytest.mark.asyncio
async def test_an_event_the_hub_cannot_carry_is_413_and_not_a_breaker_failure() -> None:
    rig = Rig(threshold=1)
    rig.publisher.max_event_bytes = 100
    answer = await rig.send(voice("A"))
    assert answer.status == 413
    assert rig.service.breaker.state is BreakerState.CLOSED


# ------------------------------------------------------------------ concurrency, health


@pytest.mark.asyncio
async def test_64_concurrent_requests_are_all_accepted() -> None:
    rig = Rig()
    rig.publisher.delay_seconds = 0.01
    answers = await asyncio.gather(
        *(rig.send([voice(f"c{i}"), notification(f"d{i}", "acw", 1)]) for i in range(64))
    )
    assert {a.status for a in answers} == {200}
    assert len(rig.publisher.sent) == 128
    assert len(rig.publisher.by_key()) == 128


@pytest.mark.asyncio
async def test_health_reports_the_breaker() -> None:
    rig = Rig(threshold=1)
    healthy = rig.service.health()
    assert healthy.status == 200
    assert healthy.body["status"] == "ok"
    assert healthy.body["breaker"]["state"] == "closed"
    rig.publisher.fail_with = ConnectionError("down")
    await rig.send(voice("A"))
    degraded = rig.service.health()
    assert degraded.body["status"] == "degraded"
    assert degraded.body["breaker"]["state"] == "open"


# ------------------------------------------------------------------ never 500

header_values = st.one_of(
    st.none(),
    st.sampled_from(["application/json", "text/plain", "application/json; charset=latin1"]),
    st.text(max_size=30),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.lists(st.sampled_from([voice("h1"), {"x": 1}, 5, None, []]), max_size=4).map(
            orjson.dumps
        ),
    ),
    content_type=header_values,
    signature=st.one_of(st.none(), st.text(max_size=80), st.just("valid")),
    extra=st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=3),
)
def test_never_500_and_every_answer_is_json(
    body: bytes, content_type: str | None, signature: str | None, extra: dict[str, str]
) -> None:
    headers = dict(extra)
    if content_type is not None:
        headers["Content-Type"] = content_type
    if signature == "valid":
        headers["X-Signature-256"] = sign(body, SECRET)
    elif signature is not None:
        headers["X-Signature-256"] = signature
    rig = Rig(secret=SECRET, limits=AcceptanceLimits(max_body_bytes=250))
    req = Request(body, lower_headers(headers), RECEIVED_MS, "m-h")
    answer = asyncio.run(rig.service.handle(req))
    assert answer.status in {200, 400, 401, 413, 415}
    assert isinstance(orjson.loads(orjson.dumps(answer.body))["status"], str)
    if answer.status == 200:
        assert rig.publisher.sent or answer.body["heartbeats"] > 0
    if answer.status == 400:
        assert answer.body["deadletter_id"] in rig.sink.letters
    if answer.status in {401, 413, 415}:
        assert not rig.sink.blobs and not rig.publisher.sent


@pytest.mark.asyncio
async def test_logs_carry_context_but_never_bodies_or_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig(secret=SECRET)
    marker = "PRIVATE-CALLER-NUMBER-5550123"
    payload = voice("logged")
    payload["data"]["details"][0]["data"]["callerNumber"] = marker
    with caplog.at_level("DEBUG"):
        assert (await rig.send(payload, **{"X-Idempotency-Key": "idem-7"})).status == 200
        assert (await rig.send({"unknown": marker})).status == 400
        rig.publisher.fail_with = ConnectionError("down")
        assert (await rig.send(payload)).status == 503
    text = caplog.text
    assert "message_id=m-1" in text
    assert "idempotency_key=idem-7" in text
    assert "reason=unrecognized-payload" in text
    assert marker not in text
    assert SECRET.decode() not in text


# ------------------------------------------------------------------ topics and heartbeats

HEARTBEAT = {"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}


@pytest.mark.asyncio
async def test_a_heartbeat_is_answered_200_counted_and_neither_sent_nor_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    with caplog.at_level("INFO"):
        answer = await rig.send(HEARTBEAT)
    assert answer.status == 200
    assert answer.body["status"] == "accepted"
    assert (answer.body["heartbeats"], answer.body["events"], answer.body["rejected"]) == (1, 0, 0)
    assert not rig.publisher.sent and not rig.sink.blobs
    assert rig.metrics.counter(m.HEARTBEATS) == 1
    assert rig.metrics.counter(m.REQUESTS, outcome="heartbeat", status="200") == 1
    assert "heartbeat message_id=m-1 heartbeats=1" in caplog.text


@pytest.mark.asyncio
async def test_heartbeats_beside_events_and_rejections_are_counted_not_sent() -> None:
    rig = Rig()
    answer = await rig.send([HEARTBEAT, voice("A"), HEARTBEAT])
    assert answer.status == 200 and answer.body["heartbeats"] == 2
    assert [orjson.loads(e.body) for e in rig.publisher.sent] == [voice("A")]
    rejected = await rig.send([HEARTBEAT, {"what": "ever"}])
    assert rejected.status == 400 and len(rig.sink.letters) == 1
    assert rig.metrics.counter(m.HEARTBEATS) == 3


@pytest.mark.asyncio
async def test_a_heartbeat_is_answered_even_while_the_circuit_is_open() -> None:
    rig = Rig()
    rig.publisher.fail_with = ConnectionError("down")
    for _ in range(3):
        await rig.send(voice("A"))
    assert rig.service.breaker.state is BreakerState.OPEN
    assert (await rig.send(HEARTBEAT)).status == 200


@pytest.mark.asyncio
async def test_an_unsupported_topic_is_a_400_and_a_dead_letter_with_its_reason() -> None:
    rig = Rig()
    transcription = notification("c1", "customer.start", 0)
    transcription["topicName"] = "v2.conversations.c1.transcription"
    answer = await rig.send(transcription)
    assert answer.status == 400
    assert answer.body["reason"] == "unsupported-topic"
    letter = rig.sink.letters[answer.body["deadletter_id"]]
    assert letter.reason == "unsupported-topic" and orjson.loads(letter.raw) == transcription
    assert rig.metrics.counter(m.PAYLOADS_REJECTED, reason="unsupported-topic") == 1
    assert not rig.publisher.sent
