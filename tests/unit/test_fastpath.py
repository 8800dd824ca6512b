"""The fast path and the tolerant path agree whenever the fast path answers."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.wire import detect_format
from transform.fastpath import fast_events
from transform.normalize import tolerant_events

TEXT = st.sampled_from(["", "a-1", "Connected", "disconnected", "INBOUND", "+1555", " x "])
NUMBERISH = st.one_of(
    st.integers(min_value=-3, max_value=2_000_000_000_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["7", "-1", "1.5", "abc", "", " 3", "+3", "1e3"]),
)
TIMESTAMP = st.one_of(
    st.sampled_from(
        [
            "2026-11-24T08:00:00.564Z",
            "2026-11-24T08:00:00Z",
            "2026-11-24T09:00:00.1+01:00",
            "2026-11-24T08:00:00.123456",
            "2026-11-24",
            "1793523600123",
            "yesterday",
            "",
        ]
    ),
    NUMBERISH,
)
VALUE = st.one_of(TEXT, NUMBERISH, st.none(), st.booleans(), st.lists(TEXT, max_size=3))
DATA_KEYS = [
    "status",
    "duration",
    "agentId",
    "queueId",
    "skillIds",
    "wrapUpCode",
    "wrapupCode",
    "callerNumber",
    "calleeNumber",
    "direction",
    "fromAgentId",
    "toAgentId",
    "toQueueId",
    "unknownField",
]
BODY_KEYS = [
    "participantId",
    "sessionId",
    "mediaType",
    "direction",
    "ani",
    "dnis",
    "queueId",
    "userId",
    "answeredUserId",
    "requestedRoutingSkillIds",
    "disconnectType",
    "heldDurationMs",
    "wrapupCode",
    "wrapupDurationMs",
    "skillIds",
]


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    details = [
        {
            "name": draw(
                st.sampled_from(
                    [
                        "conversation:state",
                        "conversation:state:updated",
                        "chat:message",
                        "",
                        "x:transferred",
                    ]
                )
            ),
            "sequence": draw(st.one_of(st.integers(0, 20), NUMBERISH)),
            "timestamp": draw(TIMESTAMP),
            "data": draw(st.dictionaries(st.sampled_from(DATA_KEYS), VALUE, max_size=6)),
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    return {
        "createdTimestamp": draw(TIMESTAMP),
        "data": {
            "id": draw(st.one_of(TEXT, st.integers())),
            "type": draw(VALUE),
            "details": details,
        },
        "metadata": draw(VALUE),
    }


@st.composite
def notifications(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(st.dictionaries(st.sampled_from(BODY_KEYS), VALUE, max_size=8))
    body["eventTime"] = draw(TIMESTAMP)
    body["conversationId"] = draw(st.one_of(TEXT, st.integers()))
    note = {
        "topicName": draw(st.sampled_from(["v2.detail.events.conversation.a-1.user.end", "t", ""])),
        "eventBody": body,
    }
    return {"detail": note} if draw(st.booleans()) else note


@settings(max_examples=1500)
@given(payload=envelopes() | notifications())
def test_fast_and_tolerant_paths_agree(payload: dict[str, Any]) -> None:
    fmt = detect_format(payload)
    assert fmt is not None
    fast = fast_events(fmt, payload)
    tolerant, rejection = tolerant_events(fmt, payload)
    if fast is not None:
        assert rejection is None
        assert fast == tolerant


def test_clean_payloads_take_the_fast_path() -> None:
    from pathlib import Path

    import orjson

    sample = Path(__file__).parents[1] / "data" / "sample_deliveries.jsonl"
    taken = declined = 0
    for line in sample.read_bytes().splitlines():
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        for payload in document if isinstance(document, list) else [document]:
            fmt = detect_format(payload)
            if fmt is None:
                continue
            fast = fast_events(fmt, payload)
            if fast is not None:
                assert fast == tolerant_events(fmt, payload)[0]
                taken += 1
            else:
                declined += 1
    # Every clean payload of the sample; the two with numbers sent as strings go tolerant.
    assert (taken, declined) == (9, 2)
