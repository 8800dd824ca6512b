"""A hand-built `realistic` delivery stream, with the processing time of each delivery.

Kept apart from the simulator's `generate`: its `deliveries.jsonl` lines carry no send times
(those are in `chaos.Plan.items`), and the request ceilings of `test_operations` and the
knobs of `test_exactly_once` were set on this stream.

Shaped like SPEC 10's realistic profile: envelope conversations (voice, chat, email) whose
micro-events are flushed in small bursts (so most envelopes hold one or two micro-events and
sequence numbers restart in each), delivered in time order with a few duplicates, local
reordering, array deliveries, late wrap-ups past the grace period and conversations that never
end. Deterministic for a seed. Each delivery carries the processing time at which it is sent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from schemas.timestamps import iso_ms

SECOND = 1000
MINUTE = 60 * SECOND
BURST_GAP_MS = 3 * SECOND
START_MS = 1_793_610_000_000  # 2026-11-02T09:00:00Z


@dataclass(frozen=True, slots=True)
class Knobs:
    """The rates that shape a stream (defaults: the realistic profile)."""

    arrivals_per_minute: float = 30.0
    duplicate_rate: float = 0.03
    reorder_rate: float = 0.05
    array_rate: float = 0.1
    late_wrapup_rate: float = 0.05
    never_end_rate: float = 0.02


@dataclass(slots=True)
class Sent:
    """One delivery: when it is sent (processing time) and its body."""

    at_ms: int
    body: bytes
    conversation_id: str


@dataclass(slots=True)
class _Timeline:
    rng: random.Random
    t: int
    steps: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)

    def wait(self, lo: int, hi: int) -> None:
        self.t += self.rng.randint(lo, hi)

    def emit(self, name: str, **data: Any) -> None:
        if self.steps and self.t <= self.steps[-1][1]:
            self.t = self.steps[-1][1] + 1
        self.steps.append((name, self.t, {k: v for k, v in data.items() if v is not None}))


def _script(rng: random.Random, media: str, t0: int, never_ends: bool) -> _Timeline:
    tl = _Timeline(rng, t0)
    queue = f"q-{rng.randint(1, 12)}"
    agent = f"a-{rng.randint(1, 80)}"
    tl.emit("conversation:state", status="ringing")
    tl.emit("participant:added", participantId=f"p-{rng.random():.8f}", purpose="customer")
    tl.wait(3 * SECOND, 40 * SECOND)
    tl.emit(
        "participant:added", participantId=f"p-{rng.random():.8f}", purpose="acd", queueId=queue
    )
    tl.wait(5 * SECOND, 2 * MINUTE)
    tl.emit(
        "participant:added", participantId=f"p-{rng.random():.8f}", purpose="agent", agentId=agent
    )
    tl.wait(200, 3 * SECOND)
    tl.emit("conversation:state", status="connected")
    if media == "voice":
        tl.emit(
            "voice:call:connected",
            callerNumber=f"+1555{rng.randint(0, 9999999):07d}",
            calleeNumber="+15550100",
            direction="inbound",
            holdDuration=0,
        )
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
            tl.wait(20 * SECOND, 3 * MINUTE)
            tl.emit("conversation:state", status="onhold")
            tl.wait(10 * SECOND, 2 * MINUTE)
            tl.emit("conversation:state", status="connected")
    else:
        name = "chat:message" if media == "chat" else "email:message"
        for n in range(rng.randint(2, 12)):
            tl.wait(4 * SECOND, 70 * SECOND)
            tl.emit(
                name,
                direction="inbound" if n % 2 == 0 else "outbound",
                messageId=f"m-{rng.random():.10f}",
            )
    if rng.random() < 0.2:
        tl.wait(20 * SECOND, 2 * MINUTE)
        tl.emit(
            f"{'voice:call' if media == 'voice' else media}:transferred",
            fromAgentId=agent,
            toAgentId=f"a-{rng.randint(1, 80)}",
        )
        tl.emit("conversation:state", status="connected")
    if never_ends:
        return tl
    tl.wait(10 * SECOND, 4 * MINUTE)
    tl.emit("conversation:state", status="disconnected")
    if rng.random() < 0.8:
        tl.wait(0, 400)
        tl.emit("conversation:state:updated", duration=round((tl.t - t0) / 1000))
    tl.wait(5 * SECOND, 40 * SECOND)
    tl.emit("agent:wrapup", agentId=agent, wrapUpCode=f"W-{rng.randint(1, 9)}")
    return tl


def _envelope(
    conversation_id: str,
    media: str,
    created: int,
    started: int,
    group: list[tuple[str, int, dict[str, Any]]],
) -> dict[str, Any]:
    return {
        "id": f"env-{conversation_id}-{created}",
        "type": "v2.detail.events.conversation",
        "createdTimestamp": iso_ms(created),
        "data": {
            "id": conversation_id,
            "type": media,
            "createdTimestamp": iso_ms(started),
            "updatedTimestamp": iso_ms(created),
            "details": [
                {
                    "name": name,
                    "type": "event",
                    "data": data,
                    "sequence": seq,
                    "timestamp": iso_ms(at),
                }
                for seq, (name, at, data) in enumerate(group, start=1)
            ],
        },
        "metadata": {"source": "realistic"},
    }


def generate(conversations: int, seed: int = 1, knobs: Knobs | None = None) -> list[Sent]:
    """The deliveries of `conversations` conversations, in the order they are sent."""
    knobs = knobs or Knobs()
    rng = random.Random(seed)
    sent: list[Sent] = []
    t = START_MS
    for number in range(conversations):
        t += int(rng.expovariate(knobs.arrivals_per_minute / MINUTE))
        media = rng.choices(("voice", "chat", "email"), (60, 28, 12))[0]
        conversation_id = f"conv-{seed}-{number:06d}"
        tl = _script(rng, media, t, rng.random() < knobs.never_end_rate)
        late = rng.random() < knobs.late_wrapup_rate and tl.steps[-1][0] == "agent:wrapup"
        groups: list[list[tuple[str, int, dict[str, Any]]]] = []
        limit = 0
        for step in tl.steps:
            if not groups or len(groups[-1]) >= limit or step[1] - groups[-1][-1][1] > BURST_GAP_MS:
                groups.append([step])
                limit = rng.randint(1, 6)
            else:
                groups[-1].append(step)
        if late and len(groups[-1]) > 1:
            groups.append([groups[-1].pop()])
        previous = -1
        bodies: list[tuple[int, dict[str, Any]]] = []
        for index, group in enumerate(groups):
            created = max(group[-1][1] + rng.randint(20, 900), previous + 1)
            previous = created
            send_at = created
            if late and index == len(groups) - 1:
                send_at = created + rng.randint(2 * MINUTE, 10 * MINUTE)
            bodies.append(
                (send_at, _envelope(conversation_id, media, created, tl.steps[0][1], group))
            )
        index = 0
        while index < len(bodies):
            at, body = bodies[index]
            if index + 1 < len(bodies) and rng.random() < knobs.array_rate:
                payload: Any = [body, bodies[index + 1][1]]
                at = max(at, bodies[index + 1][0])
                index += 2
            else:
                payload = body
                index += 1
            raw = orjson.dumps(payload)
            sent.append(Sent(at, raw, conversation_id))
            if rng.random() < knobs.duplicate_rate:
                sent.append(Sent(at + rng.randint(1 * SECOND, 90 * SECOND), raw, conversation_id))
    sent.sort(key=lambda s: s.at_ms)
    for i in range(len(sent) - 1):
        if rng.random() < knobs.reorder_rate:
            sent[i], sent[i + 1] = sent[i + 1], sent[i]
            sent[i].at_ms, sent[i + 1].at_ms = sent[i + 1].at_ms, sent[i].at_ms
    return sent


def micro_event_count(sent: list[Sent]) -> int:
    """Micro-events in the stream, duplicates included (the P2 denominator)."""
    total = 0
    for delivery in sent:
        document = orjson.loads(delivery.body)
        for payload in document if isinstance(document, list) else [document]:
            total += len(payload["data"]["details"])
    return total


def write_jsonl(sent: list[Sent], path: Path) -> None:
    """One delivery per line, for `python -m transform replay`."""
    with path.open("wb") as out:
        for delivery in sent:
            out.write(delivery.body + b"\n")
