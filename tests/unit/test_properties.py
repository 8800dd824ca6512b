"""Properties of the fold: order, duplication and envelope splitting do not change the record."""

from __future__ import annotations

import io
import json
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.replaying import replay_in_memory
from tests.unit.builders import Step, envelope, notification
from tests.unit.conftest import replay_payloads
from transform.derive import PROCESSING_FIELDS
from transform.normalize import parse_delivery

STATUSES = ["ringing", "connected", "onhold", "Connected", "ONHOLD", "disconnected"]
NAMES = [
    "participant:added",
    "voice:call:connected",
    "voice:call:transferred",
    "chat:message",
    "agent:wrapup",
    "conversation:state:updated",
    "brand:new:event",
]


@st.composite
def envelope_steps(draw: st.DrawFn) -> list[Step]:
    """A conversation's micro-events with increasing timestamps."""
    count = draw(st.integers(min_value=1, max_value=14))
    steps: list[Step] = []
    seconds = 0.0
    for _ in range(count):
        seconds += draw(st.integers(min_value=0, max_value=30))
        if draw(st.booleans()):
            data: dict[str, Any] = {"status": draw(st.sampled_from(STATUSES))}
            steps.append(Step("conversation:state", seconds, data))
        else:
            name = draw(st.sampled_from(NAMES))
            data = {
                "agentId": draw(st.sampled_from(["a-1", "a-2", None])),
                "queueId": draw(st.sampled_from(["q-1", "q-2", None])),
                "wrapUpCode": draw(st.sampled_from(["W1", "", None])),
                "duration": draw(st.sampled_from([12, "13.5", None])),
                "direction": draw(st.sampled_from(["inbound", "outbound", None])),
            }
            steps.append(Step(name, seconds, {k: v for k, v in data.items() if v is not None}))
    return steps


def _split(steps: list[Step], cuts: list[int]) -> list[dict[str, Any]]:
    """Envelopes of consecutive steps, created later each time, sequences restarting at 1."""
    bounds = sorted({c % (len(steps) + 1) for c in cuts} | {0, len(steps)})
    envelopes = []
    for number, (lo, hi) in enumerate(pairwise(bounds)):
        if lo < hi:
            envelopes.append(envelope("conv", 1000 + number, steps[lo:hi]))
    return envelopes


def _observable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in PROCESSING_FIELDS | {"first_seen_at"}}


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=envelope_steps(),
    cuts=st.lists(st.integers(min_value=0, max_value=20), max_size=4),
    data=st.data(),
)
def test_any_permutation_and_duplication_gives_the_same_record(
    steps: list[Step], cuts: list[int], data: st.DataObject
) -> None:
    deliveries = _split(steps, cuts)
    baseline = replay_payloads(deliveries, batch_size=1000)["conv"]
    extra = data.draw(st.lists(st.sampled_from(deliveries), max_size=5))
    shuffled = data.draw(st.permutations(deliveries + extra))
    batch_size = data.draw(st.integers(min_value=1, max_value=5))
    again = replay_payloads(shuffled, batch_size=1000)["conv"]
    assert again == {**baseline, "duplicate_count": again["duplicate_count"]}
    assert again["duplicate_count"] == sum(len(e["data"]["details"]) for e in extra)
    small_batches = replay_payloads(shuffled, batch_size=batch_size)["conv"]
    assert _observable(small_batches) == _observable(baseline)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(steps=envelope_steps(), cuts=st.lists(st.integers(min_value=0, max_value=20), max_size=4))
def test_splitting_across_envelopes_with_restarted_sequences_changes_nothing(
    steps: list[Step], cuts: list[int]
) -> None:
    whole = replay_payloads([envelope("conv", 1000, steps)])["conv"]
    split = replay_payloads(_split(steps, cuts))["conv"]
    for record in (whole, split):
        record["lifecycle"] = [{**e, "order": None} for e in record["lifecycle"]]
    assert _observable(split) == _observable(whole)


@st.composite
def genesys_deliveries(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A Genesys conversation: customer, some agent sessions, wrap-up."""
    deliveries = [
        notification(
            "g",
            "customer.start",
            0,
            participantId="c",
            sessionId="s0",
            mediaType="VOICE",
            direction="INBOUND",
            ani="tel:1",
        )
    ]
    t = 1
    for n in range(draw(st.integers(min_value=0, max_value=3))):
        deliveries.append(
            notification(
                "g", "user.start", t, participantId=f"u{n}", sessionId=f"s{n}", userId=f"agent-{n}"
            )
        )
        t += draw(st.integers(min_value=1, max_value=50))
        deliveries.append(
            notification(
                "g",
                "user.end",
                t,
                participantId=f"u{n}",
                sessionId=f"s{n}",
                heldDurationMs=draw(st.sampled_from([0, 1500, "2500"])),
                disconnectType=draw(st.sampled_from(["TRANSFER", "client", "peer"])),
            )
        )
    if draw(st.booleans()):
        deliveries.append(
            notification("g", "customer.end", t + 1, participantId="c", sessionId="s0")
        )
    return deliveries


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries=genesys_deliveries(), data=st.data())
def test_genesys_order_and_duplicates_do_not_matter(
    deliveries: list[dict[str, Any]], data: st.DataObject
) -> None:
    baseline = replay_payloads(deliveries, batch_size=1000)["g"]
    shuffled = data.draw(st.permutations(deliveries + deliveries[:2]))
    again = replay_payloads(shuffled, batch_size=1000)["g"]
    assert again == {**baseline, "duplicate_count": min(2, len(deliveries))}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
SHAPED = (
    st.fixed_dictionaries(
        {"createdTimestamp": JSON, "data": st.fixed_dictionaries({"id": JSON, "details": JSON})}
    )
    | st.fixed_dictionaries(
        {
            "topicName": JSON,
            "eventBody": JSON | st.fixed_dictionaries({"eventTime": JSON, "conversationId": JSON}),
        }
    )
    | st.fixed_dictionaries(
        {"detail": st.fixed_dictionaries({"eventBody": JSON, "topicName": JSON})}
    )
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(payload=JSON | SHAPED | st.lists(SHAPED, max_size=3))
def test_garbage_never_raises_and_every_payload_is_accounted_for(payload: object) -> None:
    raw = json.dumps(payload).encode()  # the stdlib: it also writes integers beyond 64 bits
    parsed = parse_delivery(raw)
    _, dead_letters, counts = replay_in_memory(io.BytesIO(raw + b"\n"))
    assert counts.dead_letters == len(parsed.rejections) == len(dead_letters.letters)
    assert counts.applied + counts.duplicates == counts.micro_events == len(parsed.events)


@settings(max_examples=300)
@given(raw=st.binary(max_size=200))
def test_random_bytes_never_raise(raw: bytes) -> None:
    parsed = parse_delivery(raw)
    assert parsed.rejections or parsed.events or parsed.payload_count >= 1
