"""The ground truth against hand-checked records of small scenarios, and fold properties."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.generate import truth
from simulator.generate.model import EVENTBRIDGE, MicroEvent
from simulator.generate.truth import RECORD_FIELDS, derive
from tests.simulator.builders import envelope, genesys, when


def voice_call_two_holds_and_a_transfer() -> list[MicroEvent]:
    c = "call-1"
    return [
        *envelope(
            c,
            10,
            ("conversation:state", 0, {"status": "ringing"}),
            ("participant:added", 1, {"participantId": "pc", "purpose": "customer"}),
            ("participant:added", 5, {"purpose": "acd", "queueId": "q1", "skillIds": ["s2", "s1"]}),
        ),
        *envelope(
            c,
            40,
            ("participant:added", 30, {"purpose": "agent", "agentId": "a1", "queueId": "q1"}),
            ("conversation:state", 31, {"status": "connected"}),
            (
                "voice:call:connected",
                31.5,
                {
                    "callerNumber": "+441234",
                    "calleeNumber": "+18001234567",
                    "direction": "inbound",
                    "holdDuration": 0,
                },
            ),
        ),
        *envelope(
            c,
            200,
            ("conversation:state", 100, {"status": "onhold"}),
            ("conversation:state", 130, {"status": "connected"}),  # hold 1: 30 s
            ("conversation:state", 150, {"status": "onhold"}),
            ("conversation:state", 160, {"status": "onhold"}),  # re-announced: same hold
            ("conversation:state", 195.5, {"status": "connected"}),  # hold 2: 45.5 s
        ),
        *envelope(
            c,
            300,
            ("voice:call:transferred", 250, {"fromAgentId": "a1", "toAgentId": "a2"}),
            ("agent:wrapup", 260, {"agentId": "a1", "wrapUpCode": "Escalated"}),
            ("participant:added", 255, {"purpose": "agent", "agentId": "a2", "queueId": "q1"}),
        ),
        *envelope(
            c,
            400.25,
            ("conversation:state:updated", 380, {"duration": 380}),
            ("conversation:state", 390, {"status": "disconnected"}),
            ("conversation:state:updated", 390.1, {"duration": 390.123}),
        ),
        *envelope(c, 500, ("agent:wrapup", 420.5, {"agentId": "a2", "wrapUpCode": "Resolved"})),
    ]


def test_voice_call_with_two_holds_and_a_transfer() -> None:
    record = derive("call-1", voice_call_two_holds_and_a_transfer(), duplicates_delivered=3)
    assert set(record) == set(RECORD_FIELDS)
    assert record == record | {
        "schema_version": "1",
        "conversation_id": "call-1",
        "media_type": "voice",
        "direction": "inbound",
        "status": "final",
        "finalized_reason": "ended",
        "final_state": "disconnected",
        "started_at": when(0),
        "ended_at": when(390),
        "duration_seconds": 390.0,
        "reported_duration_seconds": 390.123,
        "hold_seconds": 75.5,
        "hold_count": 2,
        "transfers": 1,
        "wrap_up_code": "Resolved",
        "wrap_up_seconds": 30.5,
        "caller": "+441234",
        "callee": "+18001234567",
        "queue_ids": ["q1"],
        "agent_ids": ["a1", "a2"],
        "skill_ids": ["s1", "s2"],
        "message_count": 0,
        "event_count": 18,
        "duplicate_count": 3,
        "unknown_events": [],
        "source_formats": ["envelope"],
        "revision": None,
        "first_seen_at": None,
        "finalized_at": None,
    }
    # order is (envelope createdTimestamp, sequence), not the micro-event timestamp
    assert record["lifecycle"][0] == {
        "order": [when(10), 1],
        "timestamp": when(0),
        "action": "conversation:state",
    }
    actions = [entry["action"] for entry in record["lifecycle"]]
    assert actions[11:14] == ["voice:call:transferred", "agent:wrapup", "participant:added"]
    assert record["lifecycle"][-1]["order"] == [when(500), 1]


def chat() -> list[MicroEvent]:
    c = "chat-1"
    return [
        *envelope(
            c,
            20,
            ("conversation:state", 0, {"status": "ringing"}),
            ("participant:added", 0.5, {"purpose": "customer"}),
            ("chat:message", 1, {"direction": "inbound", "messageId": "m1"}),
            ("participant:added", 2, {"purpose": "acd", "queueId": "q2", "skillIds": "s3"}),
            media="chat",
        ),
        *envelope(
            c,
            120,
            ("participant:added", 60, {"purpose": "agent", "agentId": "a3", "queueId": "q2"}),
            ("conversation:state", 60.5, {"status": "connected"}),
            ("chat:message", 70, {"direction": "outbound", "messageId": "m2"}),
            ("Chat:Message", 90, {"direction": "INBOUND", "messageId": "m3"}),
            ("chat:transferred", 100, {"fromAgentId": "a3", "toQueueId": "q3"}),
            ("conversation:state", 110, {"status": "Disconnected"}),
            media="chat",
        ),
        *envelope(
            c, 150, ("agent:wrapup", 115, {"agentId": "a3", "wrapUpCode": "Sale"}), media="chat"
        ),
        # a later, empty wrap-up code changes neither the code nor the wrap-up time
        *envelope(c, 160, ("agent:wrapup", 150, {"agentId": "a3", "wrapUpCode": ""}), media="chat"),
    ]


def test_chat() -> None:
    record = derive("chat-1", chat())
    assert record == record | {
        "media_type": "chat",
        "direction": "inbound",  # the first message's direction
        "status": "final",
        "final_state": "Disconnected",  # kept as received, compared case-insensitively
        "ended_at": when(110),
        "duration_seconds": 110.0,
        "reported_duration_seconds": None,
        "hold_seconds": 0.0,
        "hold_count": 0,
        "transfers": 1,
        "message_count": 3,
        "wrap_up_code": "Sale",
        "wrap_up_seconds": 5.0,
        "caller": None,
        "callee": None,
        "queue_ids": ["q2", "q3"],
        "agent_ids": ["a3"],
        "skill_ids": ["s3"],
        "event_count": 12,
        "unknown_events": [],
    }


def genesys_call_two_sessions_and_a_transfer() -> list[MicroEvent]:
    c = "g-1"
    customer, flow, acd = ("pc", "sc"), ("pf", "sf"), ("pa", "sa")
    first, second = ("p1", "s1"), ("p2", "s2")
    return [
        genesys(
            c,
            "customer.start",
            0,
            customer,
            ani="tel:+4912345",
            dnis="tel:+18005550100",
            direction="INBOUND",
        ),
        genesys(c, "flow.start", 1, flow, direction="INBOUND"),
        genesys(c, "flow.end", 20, flow, disconnectType="transfer"),
        genesys(
            c,
            "acd.start",
            20.5,
            acd,
            queueId="q1",
            requestedRoutingSkillIds=["s1"],
            fmt=EVENTBRIDGE,
        ),
        genesys(
            c, "acd.end", 45, acd, queueId="q1", answeredUserId="a1", disconnectType="transfer"
        ),  # routing, not a transfer
        genesys(c, "user.start", 45.2, first, userId="a1", queueId="q1"),
        genesys(
            c, "user.end", 200, first, userId="a1", disconnectType="TRANSFER", heldDurationMs=30_000
        ),
        genesys(c, "user.start", 205, second, userId="a2", queueId="q1"),
        genesys(c, "wrapup", 230, first, userId="a1", wrapupCode="c1", wrapupDurationMs=30_000),
        genesys(c, "customer.end", 400, customer, disconnectType="client"),
        genesys(c, "user.end", 400.3, second, userId="a2", disconnectType="peer", heldDurationMs=0),
        genesys(c, "acw", 445.3, second, userId="a2", wrapupDurationMs=45_000),
        genesys(
            c,
            "wrapup",
            445.35,
            second,
            userId="a2",
            wrapupCode="c2",
            wrapupDurationMs=45_000,
            fmt=EVENTBRIDGE,
        ),
    ]


def test_genesys_call_with_two_agent_sessions_and_a_transfer() -> None:
    record = derive("g-1", genesys_call_two_sessions_and_a_transfer())
    assert record == record | {
        "media_type": "voice",
        "direction": "inbound",
        "status": "final",
        "finalized_reason": "ended",
        "final_state": "disconnected",
        "started_at": when(0),
        "ended_at": when(400),  # the customer.end, not the later user.end
        "duration_seconds": 400.0,
        "hold_seconds": 30.0,
        "hold_count": 1,
        "transfers": 1,
        "wrap_up_code": "c2",
        "wrap_up_seconds": 45.0,
        "caller": "tel:+4912345",
        "callee": "tel:+18005550100",
        "queue_ids": ["q1"],
        "agent_ids": ["a1", "a2"],
        "skill_ids": ["s1"],
        "message_count": 0,
        "event_count": 13,
        "unknown_events": [],
        "source_formats": ["eventbridge", "notification"],
    }
    assert record["lifecycle"][4] == {
        "order": [when(45), "acd.end"],
        "timestamp": when(45),
        "action": "acd.end",
    }


def test_genesys_call_is_not_ended_while_an_agent_session_is_open() -> None:
    events = [
        e
        for e in genesys_call_two_sessions_and_a_transfer()
        if e.time_ms != genesys("g-1", "x", 400.3, ("", "")).time_ms
    ]
    record = derive("g-1", events)
    assert (record["status"], record["finalized_reason"]) == ("partial", "idle-timeout")
    assert (record["ended_at"], record["duration_seconds"], record["final_state"]) == (
        None,
        None,
        None,
    )
    assert record["hold_count"] == 1  # the first session's user.end still counts


def test_a_conversation_that_never_ends() -> None:
    events = envelope(
        "stuck",
        30,
        ("conversation:state", 0, {"status": "ringing"}),
        ("conversation:state", 5, {"status": "connected"}),
        ("conversation:state", 20, {"status": "onhold"}),
        ("agent:wrapup", 25, {"agentId": "a9", "wrapUpCode": "early"}),
    )
    record = derive("stuck", events)
    assert record == record | {
        "status": "partial",
        "finalized_reason": "idle-timeout",
        "final_state": "onhold",
        "ended_at": None,
        "duration_seconds": None,
        "hold_count": 1,
        "hold_seconds": 0.0,  # a hold with neither a next state nor an end counts 0
        "wrap_up_code": "early",
        "wrap_up_seconds": None,
        "agent_ids": ["a9"],
    }


def test_hold_open_at_the_disconnect_ends_there_and_unknown_names_are_kept() -> None:
    events = envelope(
        "h",
        60,
        ("conversation:state", 0, {"status": "connected"}),
        ("conversation:state", 10, {"status": "ONHOLD"}),
        ("Conversation:Sentiment:Updated", 12, {"score": 0.5}),
        ("conversation:state", 25, {"status": "disconnected"}),
        media="Cobrowse",
    )
    record = derive("h", events)
    assert record["hold_seconds"] == 15.0
    assert record["hold_count"] == 1
    assert record["unknown_events"] == ["Conversation:Sentiment:Updated"]
    assert record["media_type"] == "cobrowse"
    assert [e["action"] for e in record["lifecycle"]][2] == "Conversation:Sentiment:Updated"


def test_negative_wrap_up_time_gives_null() -> None:
    events = envelope(
        "w",
        60,
        ("agent:wrapup", 5, {"agentId": "a", "wrapUpCode": "x"}),
        ("conversation:state", 10, {"status": "disconnected"}),
    )
    assert derive("w", events)["wrap_up_seconds"] is None


def test_end_time_follows_the_last_state_in_order() -> None:
    ended = envelope("e", 9, ("conversation:state", 1, {"status": "disconnected"}))
    reopened = [*ended, *envelope("e", 10, ("conversation:state", 2, {"status": "connected"}))]
    assert truth.end_time(ended) is not None
    assert truth.end_time(reopened) is None


SCENARIOS = [
    voice_call_two_holds_and_a_transfer,
    chat,
    genesys_call_two_sessions_and_a_transfer,
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SCENARIOS), st.randoms(use_true_random=False), st.integers(0, 30))
def test_any_shuffle_or_duplication_folds_to_the_same_record(
    scenario: object, rng: random.Random, copies: int
) -> None:
    events = scenario()  # type: ignore[operator]
    cid = events[0].conversation_id
    delivered = events + [rng.choice(events) for _ in range(copies)]
    rng.shuffle(delivered)
    assert derive(cid, delivered) == derive(cid, events)
