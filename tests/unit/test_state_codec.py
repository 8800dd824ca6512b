"""The state codec: small states stay JSON, large ones are compressed, both decode, and so do
states written by the earlier codec (always compressed); a copy of a state is independent."""

from __future__ import annotations

import tracemalloc
import zlib

import orjson
import pytest

from tests.unit.builders import Step, envelope
from transform.normalize import parse_delivery
from transform.state import (
    COMPRESS_ABOVE_BYTES,
    ConversationState,
    SourcePosition,
    StateCodecError,
    Timing,
    decode_state,
    encode_state,
)


def state_with(messages: int) -> ConversationState:
    """A settled conversation with `messages` chat messages."""
    steps = [
        Step("chat:message", i, {"direction": "inbound", "messageId": f"m{i}"})
        for i in range(messages)
    ]
    body = orjson.dumps(envelope("conv-1", 0, steps, media="chat"))
    state = ConversationState("conv-1")
    for event in parse_delivery(body).events:
        state.add(event, 1_000)
    state.note_position(SourcePosition("0", 7, 2_000))
    state.settle(1_000 + Timing().idle_ms, Timing(), applied_new=True)
    return state


def same(a: ConversationState, b: ConversationState) -> bool:
    return a.events == b.events and a.progress == b.progress and encode_state(a) == encode_state(b)


def test_a_small_state_is_json_and_a_large_one_is_compressed() -> None:
    small, large = state_with(3), state_with(400)
    assert encode_state(small).startswith(b"{")
    assert len(orjson.dumps(orjson.loads(encode_state(small)))) <= COMPRESS_ABOVE_BYTES
    assert not encode_state(large).startswith(b"{")
    assert len(zlib.decompress(encode_state(large))) > COMPRESS_ABOVE_BYTES
    for state in (small, large):
        assert same(decode_state(encode_state(state)), state)


def test_states_written_by_the_earlier_codec_still_decode() -> None:
    state = state_with(3)
    always_compressed = zlib.compress(encode_state(state), 1)
    assert same(decode_state(always_compressed), state)


@pytest.mark.parametrize("blob", [b"", b"{not json", zlib.compress(b'{"v": 99}'), b"\x78garbage"])
def test_corrupt_or_unknown_states_are_refused(blob: bytes) -> None:
    with pytest.raises(StateCodecError):
        decode_state(blob)


def test_a_copy_changes_independently() -> None:
    state = state_with(3)
    before = encode_state(state)
    copy = state.clone()
    extra = parse_delivery(
        orjson.dumps(envelope("conv-1", 5, [Step("chat:message", 5, {"messageId": "x"})]))
    ).events[0]
    copy.add(extra, 9_000)
    copy.note_position(SourcePosition("1", 3, 3_000))
    copy.progress.user_started.add(("p", "s"))
    copy.written_revision = 9
    assert encode_state(state) == before
    assert len(copy.events) == len(state.events) + 1


def test_the_encoded_events_a_cached_state_keeps_are_sized_to_their_json() -> None:
    """A state in the decoded cache keeps each event's JSON; the bytes `orjson.dumps` returns
    hold a 4 KiB buffer each, which made a cached conversation cost ~50 KiB."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        state = state_with(200)
        kept = tracemalloc.get_traced_memory()[0] - before
        after_decode = decode_state(encode_state(state))
        encode_state(after_decode)  # rebuilds the encoded events of a decoded state
        rebuilt = tracemalloc.get_traced_memory()[0] - before - kept
    finally:
        tracemalloc.stop()
    json_length = sum(len(e) for e in state.encoded_events)
    assert len(after_decode.encoded_events) == 200
    assert kept < 200 * 2_048 and rebuilt < 200 * 2_048, (kept, rebuilt, json_length)
