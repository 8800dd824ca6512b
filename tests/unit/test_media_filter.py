"""The media-type filter: decided per conversation on its state, whatever order events come in."""

from __future__ import annotations

import io
from datetime import timedelta
from itertools import pairwise
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from tests.replaying import replay_in_memory
from tests.unit.builders import T0, Step, envelope, eventbridge, line, notification
from transform.derive import PROCESSING_FIELDS
from transform.media import ALL_MEDIA, MediaFilter, conversation_media
from transform.normalize import parse_delivery
from transform.service import Delivery, TransformService
from transform.state import ConversationState, Timing, decode_state, encode_state, state_json

VOICE_ONLY = MediaFilter.parse("voice")


# ---------------------------------------------------------------------- the setting
@pytest.mark.parametrize(
    ("text", "included"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("all", None),
        ("ALL", None),
        ("voice", {"voice"}),
        (" Voice , CHAT,email ", {"voice", "chat", "email"}),
        ("workitem,callback", {"workitem", "callback"}),
    ],
)
def test_the_setting_is_a_case_insensitive_list_and_empty_means_all(
    text: str | None, included: set[str] | None
) -> None:
    media = MediaFilter.parse(text)
    assert media.included == (None if included is None else frozenset(included))
    assert media.keeps_all is (included is None)


@pytest.mark.parametrize("text", ["voice,", ",voice", "voice,,chat", " , "])
def test_an_empty_name_in_the_list_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"empty name.*voice,chat"):
        MediaFilter.parse(text)


def test_admits_compares_case_insensitively_and_refuses_unknown_media_only_when_filtering() -> None:
    assert VOICE_ONLY.admits("voice") and VOICE_ONLY.admits("VOICE")
    assert not VOICE_ONLY.admits("chat") and not VOICE_ONLY.admits(None)
    assert ALL_MEDIA.admits(None) and ALL_MEDIA.admits("anything")
    assert VOICE_ONLY.describe() == "voice" and ALL_MEDIA.describe() == "all"
    assert MediaFilter.parse("voice,chat").describe() == "chat,voice"


def test_the_media_of_a_conversation_is_the_first_in_order_that_names_one() -> None:
    body = [
        notification("c", "attributes", 1),  # no media: says nothing
        notification("c", "acd.start", 5, mediaType="CHAT"),
        notification("c", "customer.start", 2, mediaType="VOICE"),
    ]
    events = parse_delivery(orjson.dumps(body)).events
    assert conversation_media(events) == "voice"
    assert conversation_media(events[:1]) is None
    assert conversation_media(reversed(events)) == "voice"


# ---------------------------------------------------------------------- the service
class Rig:
    """The batch service over the in-memory twins, with a filter and a clock the test moves."""

    def __init__(self, media: MediaFilter = VOICE_ONLY) -> None:
        self.store = InMemoryStateStore()
        self.records = InMemoryRecordSink()
        self.letters = InMemoryDeadLetterSink()
        self.clock = ManualClock(T0)
        self.service = TransformService(
            self.store, self.records, self.letters, self.clock, Timing(), media=media
        )

    def send(self, *payloads: object) -> Any:
        return self.service.process([Delivery(orjson.dumps(p)) for p in payloads])

    def move(self, seconds: float) -> Any:
        self.clock.set(self.clock.now() + timedelta(seconds=seconds))
        return self.service.tick()

    def state(self, conversation_id: str) -> ConversationState:
        loaded = self.store.load(conversation_id)
        assert loaded is not None
        return loaded[0]


def call(conversation_id: str, media: str | None, *, end: bool = True) -> list[dict[str, Any]]:
    """A Genesys call: its start and end name the media, `attributes` does not."""
    named = {} if media is None else {"mediaType": media}
    body = [
        notification(conversation_id, "customer.start", 0, participantId="p", **named),
        notification(conversation_id, "attributes", 3, participantId="p"),
    ]
    if end:
        body.append(notification(conversation_id, "customer.end", 30, participantId="p", **named))
    return body


def test_an_excluded_conversation_writes_nothing_and_is_counted_once() -> None:
    rig = Rig()
    counts = rig.send(*call("chat-1", "CHAT"), *call("voice-1", "VOICE"))
    counts.add(rig.move(61))
    assert sorted(rig.records.records) == ["voice-1"]
    assert not rig.letters.letters
    assert (counts.filtered_conversations, counts.filtered_events) == (1, 3)
    assert rig.state("chat-1").filtered_at_ms is not None
    # Events arriving later follow their conversation: applied, counted, never written.
    late = rig.send(notification("chat-1", "wrapup", 90, participantId="p", wrapupCode="W"))
    late.add(rig.move(600))
    assert (late.applied, late.filtered_conversations, late.filtered_events) == (1, 0, 1)
    assert sorted(rig.records.records) == ["voice-1"]


def test_a_set_aside_conversation_waits_for_purge_not_for_the_timer() -> None:
    rig = Rig()
    rig.send(*call("chat-1", "CHAT"))
    assert rig.move(61).filtered_conversations == 1
    state = rig.state("chat-1")
    retention = Timing().retention_ms
    assert state.filtered_at_ms == state.last_applied_at_ms + 61_000  # set aside by the timer
    assert state.next_deadline_ms(Timing()) == state.filtered_at_ms + retention
    assert rig.store.due(state.next_deadline_ms(Timing()) - 1, 10) == []
    assert rig.move(7 * 86_400 + 1).purged == 1
    assert rig.store.load("chat-1") is None and not rig.records.records


def test_media_less_events_follow_their_conversation_whenever_they_arrive() -> None:
    rig = Rig()
    first, attributes, last = call("v", "VOICE")
    rig.send(attributes)  # alone first: its conversation's media is not known yet
    rig.send(last, first)
    rig.move(61)
    record = rig.records.records["v"]
    assert record["media_type"] == "voice"
    assert [e["action"] for e in record["lifecycle"]] == [
        "customer.start",
        "attributes",
        "customer.end",
    ]


def test_a_conversation_whose_media_never_shows_leaves_no_orphan_partial_record() -> None:
    # Only the media-less events made it (the EventBridge rule filtered the rest out).
    rig = Rig()
    counts = rig.send(notification("x", "attributes", 0), notification("x", "attributes", 9))
    counts.add(rig.move(4 * 3600 + 1))
    assert not rig.records.records and not rig.letters.letters
    assert (counts.filtered_conversations, counts.filtered_events) == (1, 2)
    # Without a filter, the same events are a partial record, as always.
    unfiltered = Rig(ALL_MEDIA)
    unfiltered.send(notification("x", "attributes", 0), notification("x", "attributes", 9))
    unfiltered.move(4 * 3600 + 1)
    assert unfiltered.records.records["x"]["status"] == "partial"


def test_media_learned_late_writes_the_conversation_then() -> None:
    rig = Rig()
    start, attributes, end = call("v", None)
    rig.send(start, attributes, end)
    assert rig.move(61).filtered_conversations == 1  # ended, media unknown: set aside
    assert not rig.records.records
    named = notification("v", "acd.start", 10, participantId="q", mediaType="VOICE")
    counts = rig.send(named)
    record = rig.records.records["v"]
    assert (record["revision"], record["media_type"], record["event_count"]) == (1, "voice", 4)
    assert counts.revisions_written == 1 and rig.state("v").filtered_at_ms is None
    # From then on it is an ordinary written conversation.
    rig.send(notification("v", "wrapup", 40, participantId="p", wrapupCode="W"))
    assert rig.records.records["v"]["revision"] == 2


def test_every_route_is_filtered_alike() -> None:
    rig = Rig(MediaFilter.parse("voice,email"))
    chat = envelope(
        "env-chat",
        0,
        [Step("conversation:state", 0, {"status": "connected"})],
        media="chat",
    )
    chat_end = envelope(
        "env-chat", 40, [Step("conversation:state", 40, {"status": "disconnected"})], media="Chat"
    )
    chat_end["data"].pop("type")  # an envelope without data.type follows its conversation
    email = [eventbridge(p) for p in call("eb-email", "EMAIL")]
    task = call("note-task", "WORKITEM")
    counts = rig.send(chat, chat_end, *email, *task)
    counts.add(rig.move(61))
    assert sorted(rig.records.records) == ["eb-email"]
    assert counts.filtered_conversations == 2 and counts.filtered_events == 2 + 3


def test_the_set_aside_mark_survives_the_state_codec_and_is_absent_when_unset() -> None:
    state = ConversationState("c")
    assert b"filt" not in state_json(encode_state(state))
    state.filtered_at_ms = 1_790_000_000_000
    assert decode_state(encode_state(state)).filtered_at_ms == 1_790_000_000_000


# ---------------------------------------------------------------------- under any order
MEDIA = ["voice", "chat", "email"]


@st.composite
def genesys_conversation(draw: st.DrawFn, cid: str, media: str, start: int) -> list[Any]:
    """One payload per event, each in either Genesys format; `attributes` names no media."""
    spelled = draw(st.sampled_from([media.upper(), media, media.title()]))
    named = {"mediaType": spelled}
    events = [notification(cid, "customer.start", start, participantId="c", **named)]
    t = start
    for n in range(draw(st.integers(min_value=0, max_value=3))):
        t += draw(st.integers(min_value=1, max_value=60))
        if draw(st.booleans()):
            events.append(notification(cid, "attributes", t, participantId="c"))
        else:
            events.append(notification(cid, "acd.start", t, participantId=f"q{n}", **named))
    events.append(notification(cid, "customer.end", t + 5, participantId="c", **named))
    return [eventbridge(e) if draw(st.booleans()) else e for e in events]


@st.composite
def envelope_conversation(draw: st.DrawFn, cid: str, media: str, start: int) -> list[Any]:
    """Envelopes, some without `data.type` (their details name no media), at least one with."""
    steps = [Step("conversation:state", start, {"status": "connected"})]
    t = start
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        t += draw(st.integers(min_value=1, max_value=60))
        steps.append(Step("participant:added", t, {"agentId": "a-1"}))
    steps.append(Step("conversation:state", t + 5, {"status": "disconnected"}))
    cuts = draw(st.lists(st.integers(min_value=1, max_value=len(steps) - 1), max_size=3))
    bounds = sorted({0, len(steps), *cuts})
    envelopes = [
        envelope(cid, start + 1000 + n, steps[lo:hi], media=media)
        for n, (lo, hi) in enumerate(pairwise(bounds))
    ]
    keep = draw(st.integers(min_value=0, max_value=len(envelopes) - 1))
    for n, payload in enumerate(envelopes):
        if n != keep and draw(st.booleans()):
            payload["data"].pop("type")
    return envelopes


@st.composite
def traffic(draw: st.DrawFn) -> tuple[MediaFilter, dict[str, str], list[Any]]:
    """A few conversations of several media and routes, shuffled, duplicated, some arrays."""
    included = draw(st.sets(st.sampled_from(MEDIA), min_size=1, max_size=2))
    media_of: dict[str, str] = {}
    payloads: list[Any] = []
    for n in range(draw(st.integers(min_value=1, max_value=3))):
        media = draw(st.sampled_from(MEDIA))
        cid = f"{media}-{n}"
        media_of[cid] = media
        start = draw(st.integers(min_value=0, max_value=300))
        build = draw(st.sampled_from([genesys_conversation, envelope_conversation]))
        payloads += draw(build(cid, media, start))
    extra = draw(st.lists(st.sampled_from(payloads), max_size=4))
    shuffled = draw(st.permutations(payloads + extra))
    deliveries: list[Any] = []
    while shuffled:  # now and then two payloads travel in one array
        take = draw(st.integers(min_value=1, max_value=2))
        deliveries.append(shuffled[0] if take == 1 else shuffled[:take])
        shuffled = shuffled[take:]
    return MediaFilter(frozenset(included)), media_of, deliveries


def observable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in PROCESSING_FIELDS | {"first_seen_at"}}


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(case=traffic(), batch_size=st.integers(min_value=1, max_value=6))
def test_any_order_or_duplication_excluded_gives_nothing_included_the_same_record(
    case: tuple[MediaFilter, dict[str, str], list[Any]], batch_size: int
) -> None:
    media, media_of, deliveries = case
    data = b"".join(line(d) + b"\n" for d in deliveries)
    plain, plain_letters, _ = replay_in_memory(io.BytesIO(data), batch_size=batch_size)
    store = InMemoryStateStore()
    kept, letters, counts = replay_in_memory(
        io.BytesIO(data), batch_size=batch_size, media=media, store=store
    )
    included = {cid for cid, m in media_of.items() if media.admits(m)}
    assert set(kept.records) == included
    assert set(plain.records) == set(media_of)
    for cid in included:
        assert observable(kept.records[cid]) == observable(plain.records[cid])
    assert not letters.letters and not plain_letters.letters
    excluded = set(media_of) - included
    assert counts.filtered_conversations >= len(excluded)
    for cid in excluded:  # set aside with every distinct event it was sent
        loaded = store.load(cid)
        assert loaded is not None and loaded[0].filtered_at_ms is not None
        assert len(loaded[0].events) == plain.records[cid]["event_count"]
    assert counts.filtered_events >= sum(plain.records[c]["event_count"] for c in excluded)
