"""Every SPEC 4 field on hand-made conversations, in all three formats."""

from __future__ import annotations

from tests.unit.builders import Step, envelope, eventbridge, notification
from tests.unit.conftest import Replay


def test_voice_call_with_two_holds_transfer_and_late_wrap_up(replayed: Replay) -> None:
    first = envelope(
        "voice-1",
        30,
        [
            Step("conversation:state", 0, {"status": "ringing"}),
            Step(
                "participant:added",
                1,
                {
                    "participantId": "p1",
                    "purpose": "customer",
                    "queueId": "q-sales",
                    "skillIds": ["s-en", "s-vip"],
                },
            ),
            Step(
                "voice:call:connected",
                5,
                {
                    "callerNumber": "+15550001",
                    "calleeNumber": "+15550002",
                    "direction": "Inbound",
                    "agentId": "a-1",
                },
            ),
            Step("conversation:state", 6, {"status": "connected"}),
            Step("conversation:state", 20, {"status": "onhold"}),
            Step("conversation:state", 25, {"status": "ONHOLD"}),
        ],
    )
    second = envelope(
        "voice-1",
        120,
        [
            Step("conversation:state", 50, {"status": "connected"}),
            Step(
                "voice:call:transferred",
                60,
                {"fromAgentId": "a-1", "toAgentId": "a-2", "toQueueId": "q-support"},
            ),
            Step("conversation:state", 70, {"status": "onhold"}),
            Step("conversation:state", 80, {"status": "connected"}),
            Step("conversation:state", 100, {"status": "disconnected"}),
            Step("conversation:state:updated", 100, {"duration": "100.4567"}),
        ],
    )
    wrap_up = envelope(
        "voice-1", 200, [Step("agent:wrapup", 140, {"agentId": "a-2", "wrapUpCode": "SALE"})]
    )

    record = replayed([first, second, first, wrap_up])["voice-1"]

    assert record["media_type"] == "voice"
    assert record["direction"] == "inbound"
    assert (record["status"], record["finalized_reason"]) == ("final", "ended")
    assert record["final_state"] == "disconnected"
    assert record["started_at"] == "2026-11-02T09:00:00.000Z"
    assert record["ended_at"] == "2026-11-02T09:01:40.000Z"
    assert record["duration_seconds"] == 100.0
    assert record["reported_duration_seconds"] == 100.457
    # holds: 20 → 50 (the second onhold at 25 continues the first) and 70 → 80
    assert record["hold_seconds"] == 40.0
    assert record["hold_count"] == 2
    assert record["transfers"] == 1
    assert record["wrap_up_code"] == "SALE"
    assert record["wrap_up_seconds"] == 40.0
    assert (record["caller"], record["callee"]) == ("+15550001", "+15550002")
    assert record["queue_ids"] == ["q-sales", "q-support"]
    assert record["agent_ids"] == ["a-1", "a-2"]
    assert record["skill_ids"] == ["s-en", "s-vip"]
    assert record["message_count"] == 0
    assert record["event_count"] == 13
    assert record["duplicate_count"] == 6
    assert record["unknown_events"] == []
    assert record["source_formats"] == ["envelope"]
    assert [entry["order"][1] for entry in record["lifecycle"]] == [
        1,
        2,
        3,
        4,
        5,
        6,
        1,
        2,
        3,
        4,
        5,
        6,
        1,
    ]
    assert record["lifecycle"][6] == {
        "order": ["2026-11-02T09:02:00.000Z", 1],
        "timestamp": "2026-11-02T09:00:50.000Z",
        "action": "conversation:state",
    }


def test_hold_open_at_the_end_runs_to_ended_at_via_genesys_rule(replayed: Replay) -> None:
    # A hold with no later state event only counts once ended_at exists; here it never ends.
    payload = envelope(
        "hold-open",
        10,
        [
            Step("conversation:state", 0, {"status": "connected"}),
            Step("conversation:state", 5, {"status": "onhold"}),
        ],
    )
    record = replayed([payload])["hold-open"]
    assert record["status"] == "partial"
    assert record["hold_count"] == 1
    assert record["hold_seconds"] == 0.0
    assert record["ended_at"] is None
    assert record["duration_seconds"] is None
    assert record["final_state"] == "onhold"


def test_chat_counts_messages_and_keeps_unknown_events(replayed: Replay) -> None:
    payload = envelope(
        "chat-1",
        40,
        [
            Step("conversation:state", 0, {"status": "connected", "skillIds": "s-chat"}),
            Step("chat:message", 2, {"direction": "inbound", "messageId": "m1"}),
            Step("chat:message", 9, {"direction": "outbound", "messageId": "m2", "agentId": "a-3"}),
            Step("chat:typing", 10, {"brandNewField": {"nested": True}}),
            Step("chat:transferred", 12, {"toQueueId": "q-2"}),
            Step("conversation:state", 30, {"status": "disconnected"}),
        ],
        media="CHAT",
    )
    record = replayed([payload])["chat-1"]
    assert record["media_type"] == "chat"
    assert record["direction"] == "inbound"
    assert record["message_count"] == 2
    assert record["transfers"] == 1
    assert record["unknown_events"] == ["chat:typing"]
    assert record["skill_ids"] == ["s-chat"]
    assert record["queue_ids"] == ["q-2"]
    assert record["wrap_up_code"] is None
    assert record["wrap_up_seconds"] is None
    assert record["caller"] is None


def test_email_thread_and_unknown_media(replayed: Replay) -> None:
    email = envelope(
        "mail-1",
        10,
        [
            Step(
                "email:message",
                1,
                {"direction": "inbound", "messageId": "e1", "threadId": "t", "subject": "Hi"},
            ),
            Step(
                "email:message", 5, {"direction": "outbound", "messageId": "e2", "inReplyTo": "e1"}
            ),
            Step("conversation:state", 6, {"status": "disconnected"}),
        ],
        media="email",
    )
    hologram = envelope(
        "holo-1",
        10,
        [
            Step("hologram:beam", 1, {}),
            Step("conversation:state", 2, {"status": "disconnected"}),
        ],
        media="Hologram",
    )
    records = replayed([email, hologram])
    assert records["mail-1"]["message_count"] == 2
    assert records["holo-1"]["media_type"] == "hologram"
    assert records["holo-1"]["unknown_events"] == ["hologram:beam"]


def test_genesys_call_with_two_agent_sessions_and_a_transfer(replayed: Replay) -> None:
    cid = "gen-1"
    deliveries = [
        notification(
            cid,
            "customer.start",
            0,
            participantId="c",
            sessionId="s0",
            mediaType="VOICE",
            direction="INBOUND",
            ani="tel:+1555",
            dnis="tel:+1666",
        ),
        eventbridge(
            notification(
                cid,
                "acd.start",
                1,
                participantId="acd",
                sessionId="sa",
                queueId="q-1",
                requestedRoutingSkillIds=["sk-1"],
            )
        ),
        notification(
            cid, "acd.end", 4, participantId="acd", sessionId="sa", disconnectType="transfer"
        ),
        notification(cid, "user.start", 5, participantId="u1", sessionId="s1", userId="agent-1"),
        notification(
            cid,
            "user.end",
            60,
            participantId="u1",
            sessionId="s1",
            userId="agent-1",
            heldDurationMs="4000",
            disconnectType="TRANSFER",
        ),
        notification(
            cid, "user.start", 61, participantId="u2", sessionId="s2", answeredUserId="agent-2"
        ),
        notification(cid, "customer.end", 90, participantId="c", sessionId="s0"),
        notification(
            cid,
            "user.end",
            92,
            participantId="u2",
            sessionId="s2",
            heldDurationMs=0,
            disconnectType="client",
        ),
        notification(
            cid,
            "acw",
            110,
            participantId="u2",
            sessionId="s2",
            wrapupCode="RESOLVED",
            wrapupDurationMs=18000,
        ),
        notification(cid, "routing.newthing", 111, participantId="u2", sessionId="s2"),
    ]
    record = replayed(deliveries)[cid]
    assert (record["status"], record["finalized_reason"]) == ("final", "ended")
    assert record["final_state"] == "disconnected"
    assert record["media_type"] == "voice"
    assert record["direction"] == "inbound"
    assert record["ended_at"] == "2026-11-02T09:01:30.000Z"
    assert record["duration_seconds"] == 90.0
    assert record["hold_seconds"] == 4.0
    assert record["hold_count"] == 1
    assert record["transfers"] == 1  # the ACD handing over is routing, not a transfer
    assert record["wrap_up_code"] == "RESOLVED"
    assert record["wrap_up_seconds"] == 18.0
    assert (record["caller"], record["callee"]) == ("tel:+1555", "tel:+1666")
    assert record["agent_ids"] == ["agent-1", "agent-2"]
    assert record["queue_ids"] == ["q-1"]
    assert record["skill_ids"] == ["sk-1"]
    assert record["unknown_events"] == ["routing.newthing"]
    assert record["source_formats"] == ["eventbridge", "notification"]
    assert record["lifecycle"][0]["order"] == ["2026-11-02T09:00:00.000Z", "customer.start"]
    assert record["reported_duration_seconds"] is None


def test_genesys_not_ended_while_an_agent_session_is_open(replayed: Replay) -> None:
    cid = "gen-open"
    deliveries = [
        notification(cid, "customer.start", 0, participantId="c", sessionId="s0"),
        notification(cid, "user.start", 5, participantId="u1", sessionId="s1"),
        notification(cid, "customer.end", 50, participantId="c", sessionId="s0"),
    ]
    record = replayed(deliveries)[cid]
    assert (record["status"], record["finalized_reason"]) == ("partial", "idle-timeout")
    assert record["final_state"] is None
    assert record["ended_at"] is None


def test_drifted_payload_numbers_as_strings_and_extra_fields(replayed: Replay) -> None:
    payload = envelope(
        "drift-1",
        10,
        [
            Step("conversation:state", 0, {"status": "Connected", "newThing": [1, 2]}),
            Step("CONVERSATION:STATE", 5, {"status": "DISCONNECTED"}),
        ],
    )
    payload["data"]["details"][0]["sequence"] = "1"
    payload["createdTimestamp"] = str(1793523610000)  # epoch ms, as a string
    payload["surprise"] = {"deep": {"er": 1}}
    record = replayed([payload])["drift-1"]
    assert record["status"] == "final"
    assert record["final_state"] == "DISCONNECTED"
    assert record["unknown_events"] == []
