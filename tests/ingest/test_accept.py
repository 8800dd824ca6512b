"""The pure acceptance core: every SPEC 6 case, splitting per conversation, signatures, limits."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.accept import (
    PROPERTY_EVENT_TYPE,
    PROPERTY_FORMAT,
    PROPERTY_IDEMPOTENCY_KEY,
    PROPERTY_MESSAGE_ID,
    PROPERTY_PAYLOAD_COUNT,
    PROPERTY_RECEIVED_AT,
    AcceptanceLimits,
    Plan,
    check_content_type,
    check_request,
    partition_key_for,
    plan,
    sign,
    verify_signature,
)
from ingest.errors import BodyTooLarge, SignatureMismatch, UnsupportedContentType
from tests.ingest.helpers import (
    SECRET,
    Step,
    body_of,
    envelope,
    eventbridge,
    identities,
    notification,
    request,
    voice,
)
from transform.deadletters import raw_bytes
from transform.normalize import parse_delivery

LIMITS = AcceptanceLimits()


def planned(document: object, **headers: str) -> Plan:
    return plan(request(document, headers), LIMITS)


# ------------------------------------------------------------------ recognised payloads


@pytest.mark.parametrize(
    ("payload", "fmt"),
    [
        (voice("c-env"), "envelope"),
        (notification("c-note", "customer.start", 0, participantId="p1"), "notification"),
        (eventbridge(notification("c-eb", "customer.end", 5, participantId="p1")), "eventbridge"),
    ],
)
def test_single_payload_of_each_format_is_one_event_with_the_original_bytes(
    payload: dict[str, object], fmt: str
) -> None:
    raw = b'{ "spacing": "kept" , ' + body_of(payload)[1:]  # bytes orjson would not produce
    result = plan(request(raw), LIMITS)
    assert len(result.events) == 1
    event = result.events[0]
    assert event.body == raw
    assert event.properties[PROPERTY_FORMAT] == fmt
    assert event.payload_count == 1
    assert result.accepted_payloads == 1
    assert not result.dead_letters


def test_partition_key_is_the_conversation_id_and_properties_follow_spec_6() -> None:
    result = planned(
        voice("conv/with ?odd#chars\u00e9"),
        **{"X-Idempotency-Key": "idem-1", "X-Genesys-Event-Type": "v2.detail.events"},
    )
    (event,) = result.events
    assert event.partition_key == "conv/with ?odd#chars\u00e9"
    assert event.properties == {
        PROPERTY_RECEIVED_AT: "2026-11-24T09:00:00.000Z",
        PROPERTY_MESSAGE_ID: "m-1",
        PROPERTY_IDEMPOTENCY_KEY: "idem-1",
        PROPERTY_EVENT_TYPE: "v2.detail.events",
        PROPERTY_FORMAT: "envelope",
        PROPERTY_PAYLOAD_COUNT: "1",
    }


def test_ids_longer_than_a_partition_key_go_by_their_digest_on_one_partition() -> None:
    long_id = "會" * 129
    first = planned(voice(long_id)).events[0].partition_key
    again = planned([voice(long_id), voice(long_id)]).events[0].partition_key
    assert first == again == partition_key_for(long_id)
    assert first.startswith("sha256:") and len(first) == 71
    assert partition_key_for("會" * 128) == "會" * 128
    assert partition_key_for(long_id + "x") != first


def test_event_type_headers_in_order_of_preference() -> None:
    both = planned(voice("c"), **{"X-Genesys-Event-Type": "second", "X-Event-Type": "first"})
    assert both.events[0].properties[PROPERTY_EVENT_TYPE] == "first"
    cloud_event = planned(voice("c"), **{"ce-type": "com.genesys.conversation"})
    assert cloud_event.events[0].properties[PROPERTY_EVENT_TYPE] == "com.genesys.conversation"
    none = planned(voice("c"))
    assert PROPERTY_EVENT_TYPE not in none.events[0].properties
    assert PROPERTY_IDEMPOTENCY_KEY not in none.events[0].properties


def test_a_batch_is_split_per_conversation_keeping_order_within_each() -> None:
    a1, a2 = voice("A", 0), voice("A", 100, disconnected=True)
    b1 = notification("B", "customer.start", 0, participantId="p")
    c1 = eventbridge(notification("C", "customer.start", 0, participantId="p"))
    b2 = eventbridge(notification("B", "customer.end", 9, participantId="p"))
    body = body_of([a1, b1, c1, a2, b2])
    result = plan(request(body), LIMITS)

    assert [e.partition_key for e in result.events] == ["A", "B", "C"]
    a, b, c = result.events
    assert orjson.loads(a.body) == [a1, a2]
    assert orjson.loads(b.body) == [b1, b2]
    assert orjson.loads(c.body) == c1  # alone: a single payload, not an array
    assert b.properties[PROPERTY_FORMAT] == "eventbridge,notification"
    assert (a.payload_count, b.payload_count, c.payload_count) == (2, 2, 1)
    assert result.conversations == 3
    assert result.accepted_payloads == 5
    # the transform applies exactly the same micro-events from the split events
    assert set().union(*(identities(e.body) for e in result.events)) == identities(body)


def test_a_conversation_too_big_for_one_event_is_split_over_several() -> None:
    payloads = [voice("big", i) for i in range(10)]  # all the same size
    one = len(body_of(payloads[0]))
    limits = AcceptanceLimits(max_event_bytes=one * 3 + 10)
    result = plan(request(payloads), limits)
    assert len(result.events) == 4  # 3 + 3 + 3 + 1
    assert all(len(e.body) <= limits.max_event_bytes for e in result.events)
    assert all(e.partition_key == "big" for e in result.events)
    decoded = [p for e in result.events for p in _as_list(orjson.loads(e.body))]
    assert decoded == payloads


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def test_utf8_bom_is_accepted() -> None:
    result = plan(request(b"\xef\xbb\xbf" + body_of(voice("bom"))), LIMITS)
    assert [e.partition_key for e in result.events] == ["bom"]
    assert not result.events[0].body.startswith(b"\xef\xbb\xbf")


# ------------------------------------------------------------------ rejections (400)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"  \n\t ", "empty"),
        (b"[]", "empty"),
        (b"{not json", "invalid-json"),
        (b'{"a": 1', "invalid-json"),
        (b"\xff\xfe\x00garbage", "invalid-json"),
        (b"42", "not-an-object"),
        (b'"a string"', "not-an-object"),
        (b"null", "not-an-object"),
        (b'{"hello": "world"}', "unrecognized-payload"),
        (b'{"data": {"details": []}, "createdTimestamp": 1}', "missing-conversation-id"),
    ],
)
def test_nothing_acceptable_is_one_dead_letter_holding_the_raw_body(
    raw: bytes, reason: str
) -> None:
    result = plan(request(raw, {"X-Idempotency-Key": "k"}), LIMITS)
    assert result.nothing_accepted
    (letter,) = result.dead_letters
    assert letter.stage == "ingest"
    assert letter.reason == reason
    assert letter.error
    assert letter.received_at == "2026-11-24T09:00:00.000Z"
    assert letter.source.headers == {"content-type": "application/json", "x-idempotency-key": "k"}
    assert raw_bytes(letter) == raw  # raw keeps the original bytes, as text or base64


def test_missing_conversation_id_in_genesys_formats_is_rejected() -> None:
    note = notification("x", "customer.start", 0)
    del note["eventBody"]["conversationId"]
    result = planned(note)
    assert [d.reason for d in result.dead_letters] == ["missing-conversation-id"]
    assert not result.events


def test_mixed_array_sends_the_good_and_dead_letters_each_bad_payload() -> None:
    good_a, good_b = voice("A"), notification("B", "customer.start", 0, participantId="p")
    body = [good_a, {"unknown": True}, good_b, 7]
    result = planned(body)
    assert [e.partition_key for e in result.events] == ["A", "B"]
    assert [(d.reason, orjson.loads(d.raw)) for d in result.dead_letters] == [
        ("unrecognized-payload", {"unknown": True}),
        ("not-an-object", 7),
    ]
    assert result.rejected_payloads == 2
    assert result.accepted_payloads == 2
    assert len({d.id for d in result.dead_letters}) == 2


def test_all_bad_array_rejects_every_payload_with_its_own_letter() -> None:
    result = planned([{"a": 1}, [], "x"])
    assert result.nothing_accepted
    assert [d.reason for d in result.dead_letters] == [
        "unrecognized-payload",
        "not-an-object",
        "not-an-object",
    ]


def test_an_envelope_with_some_bad_details_is_sent_whole_and_not_dead_lettered_here() -> None:
    payload = voice("partial")
    payload["data"]["details"].append({"name": "conversation:state", "sequence": "x"})
    result = planned(payload)
    assert result.partial_payloads == 1
    assert not result.dead_letters  # the transform dead-letters it once, with the good applied
    assert [e.partition_key for e in result.events] == ["partial"]
    assert len(parse_delivery(result.events[0].body).rejections) == 1


def test_an_envelope_whose_details_are_all_bad_is_dead_lettered() -> None:
    payload = envelope("bad-details", 0, [Step("conversation:state", 0)])
    payload["data"]["details"][0]["sequence"] = {"not": "a number"}
    result = planned(payload)
    assert [d.reason for d in result.dead_letters] == ["invalid-micro-event"]
    assert not result.events


def test_dead_letter_ids_derive_from_the_body() -> None:
    first = plan(request(b"{nope", message_id="m-1"), LIMITS)
    retried = plan(request(b"{nope", message_id="m-2"), LIMITS)
    other = plan(request(b"{nope!", message_id="m-1"), LIMITS)
    assert first.dead_letters[0].id == retried.dead_letters[0].id
    assert first.dead_letters[0].id != other.dead_letters[0].id
    assert first.dead_letters[0].id.startswith("ingest-")


def test_dead_letters_never_copy_signatures_or_keys() -> None:
    headers = {"X-Functions-Key": "key", "Authorization": "Bearer t", "Cookie": "c=1"}
    req = request(b"{nope", headers, secret=SECRET)
    letter = plan(req, LIMITS).dead_letters[0]
    assert letter.source.headers is not None
    assert set(letter.source.headers) == {"content-type"}


# ------------------------------------------------------------------ limits (413)


def test_body_over_the_limit_is_refused_before_parsing() -> None:
    limits = AcceptanceLimits(max_body_bytes=100)
    with pytest.raises(BodyTooLarge, match=r"101 bytes; the limit is 100"):
        check_request(request(b"x" * 101), limits, None)
    check_request(request(body_of("x" * 98)), limits, None)  # exactly 100 bytes is fine


def test_array_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(BodyTooLarge, match="INGEST_MAX_PAYLOADS"):
        plan(request([voice("a")] * 3), AcceptanceLimits(max_payloads=2))


def test_too_many_micro_events_are_refused() -> None:
    steps = [Step("conversation:state", i, {"status": "connected"}) for i in range(6)]
    with pytest.raises(BodyTooLarge, match="INGEST_MAX_MICRO_EVENTS"):
        plan(request([envelope("a", 0, steps)]), AcceptanceLimits(max_micro_events=5))


def test_a_single_payload_larger_than_an_event_is_refused() -> None:
    payload = voice("huge")
    payload["metadata"] = {"pad": "x" * 5000}
    with pytest.raises(BodyTooLarge, match="INGEST_MAX_EVENT_BYTES"):
        plan(request(payload), AcceptanceLimits(max_event_bytes=4096))


# ------------------------------------------------------------------ content type (415)


@pytest.mark.parametrize(
    "value",
    [
        "application/json",
        "APPLICATION/JSON",
        "application/json; charset=utf-8",
        "Application/Json;Charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/json;charset=utf8",
        "application/json; foo=bar",
    ],
)
def test_json_content_types_are_accepted(value: str) -> None:
    check_content_type(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "text/plain",
        "application/xml",
        "application/jsonx",
        "application/json-patch+json",
        "application/json; charset=iso-8859-1",
        "multipart/form-data; boundary=x",
    ],
)
def test_other_content_types_are_refused(value: str | None) -> None:
    with pytest.raises(UnsupportedContentType) as caught:
        check_content_type(value)
    assert caught.value.status == 415
    assert "application/json" in str(caught.value) or "UTF-8" in str(caught.value)


# ------------------------------------------------------------------ signatures (401)


def test_a_good_signature_passes() -> None:
    req = request(voice("s"), secret=SECRET)
    check_request(req, LIMITS, SECRET)


def test_signature_hex_and_prefix_case_do_not_matter() -> None:
    raw = body_of(voice("s"))
    digest = hmac.new(SECRET, raw, hashlib.sha256).hexdigest().upper()
    verify_signature(raw, f"SHA256={digest}", SECRET)
    verify_signature(raw, f"  sha256={digest}  ", SECRET)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing"),
        ("", "missing"),
        ("sha1=abcdef", "must start with 'sha256='"),
        ("sha256=zz-not-hex", "not hex"),
        ("sha256=" + "00" * 32, "does not match"),
        ("sha256=" + "ab" * 16, "does not match"),  # wrong length
    ],
)
def test_bad_or_missing_signatures_are_refused(header: str | None, message: str) -> None:
    headers = {} if header is None else {"X-Signature-256": header}
    with pytest.raises(SignatureMismatch, match=message) as caught:
        check_request(request(voice("s"), headers), LIMITS, SECRET)
    assert caught.value.status == 401


def test_a_replayed_signature_with_a_changed_body_is_refused() -> None:
    original = body_of(voice("s"))
    tampered = body_of(voice("s", 5))
    headers = {"X-Signature-256": sign(original, SECRET)}
    with pytest.raises(SignatureMismatch, match="does not match"):
        check_request(request(tampered, headers), LIMITS, SECRET)


def test_a_signature_made_with_another_secret_is_refused() -> None:
    with pytest.raises(SignatureMismatch):
        check_request(request(voice("s"), secret=b"other"), LIMITS, SECRET)


def test_without_a_secret_no_signature_is_needed() -> None:
    check_request(request(voice("s")), LIMITS, None)


def test_signature_is_checked_before_content_type() -> None:
    with pytest.raises(SignatureMismatch):
        check_request(request(b"x", {"Content-Type": "text/plain"}), LIMITS, SECRET)


def test_signature_error_messages_never_show_the_expected_digest() -> None:
    raw = body_of(voice("s"))
    expected = hmac.new(SECRET, raw, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureMismatch) as caught:
        verify_signature(raw, "sha256=" + "00" * 32, SECRET)
    assert expected not in str(caught.value)


# ------------------------------------------------------------------ properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


def _mutated_payloads() -> st.SearchStrategy[object]:
    """Real payloads with a key dropped or a value replaced: near misses find the edge cases."""
    base = st.sampled_from(
        [
            voice("p1"),
            voice("p2", disconnected=True),
            notification("p3", "customer.start", 0, participantId="x"),
            eventbridge(notification("p4", "user.end", 3, participantId="y")),
        ]
    )

    def mutate(payload: dict[str, object], key: str, value: object, drop: bool) -> object:
        copy = orjson.loads(orjson.dumps(payload))
        target = copy.get("data") or copy.get("eventBody") or copy.get("detail") or copy
        if isinstance(target, dict) and target:
            name = sorted(target)[len(key) % len(target)]
            if drop:
                del target[name]
            else:
                target[name] = value
        return copy

    return st.builds(mutate, base, st.text(max_size=5), json_values, st.booleans()) | base


bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(orjson.dumps),
    st.lists(_mutated_payloads(), max_size=5).map(orjson.dumps),
    _mutated_payloads().map(orjson.dumps),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_the_plan_forwards_exactly_what_the_transform_would_apply(raw: bytes) -> None:
    result = plan(request(raw), LIMITS)  # never raises for a body within the limits
    forwarded: set[tuple[str, str]] = set()
    for event in result.events:
        forwarded |= identities(event.body)
        keys = {partition_key_for(key) for key, _ in identities(event.body)}
        assert keys <= {event.partition_key}
    assert forwarded == identities(raw)
    if result.payloads == 0:  # empty, not JSON, or []: one letter for the whole body
        assert result.rejected_payloads == 1
    else:
        assert result.accepted_payloads + result.rejected_payloads == result.payloads
    if result.nothing_accepted:
        assert result.dead_letters  # a 400 always has a dead letter to point at


# ------------------------------------------------------------------ topics and heartbeats


def test_only_detail_topics_are_accepted_in_either_genesys_format() -> None:
    good = notification("A", "customer.start", 0)
    other = notification("A", "customer.start", 0)
    other["topicName"] = "v2.conversations.A.transcription"
    result = planned([good, other, eventbridge(other)])
    assert [e.partition_key for e in result.events] == ["A"]
    assert [(d.reason, d.source.headers is not None) for d in result.dead_letters] == [
        ("unsupported-topic", True),
        ("unsupported-topic", True),
    ]
    assert "v2.conversations.A.transcription" in result.dead_letters[0].error


def test_heartbeats_are_counted_and_never_sent_or_dead_lettered() -> None:
    heartbeat = {"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}
    alone = planned(heartbeat)
    assert (alone.heartbeats, alone.only_heartbeats, alone.nothing_accepted) == (1, True, False)
    assert not alone.events and not alone.dead_letters
    mixed = planned([heartbeat, voice("A"), heartbeat])
    assert mixed.heartbeats == 2 and mixed.accepted_payloads == 1
    assert [orjson.loads(e.body) for e in mixed.events] == [voice("A")]
    assert not mixed.only_heartbeats
