"""Delivery: when each payload is sent, and everything a real feed does to it on the way.

Every payload gets a simulated send time a little after it was created; deliveries are written
in send-time order, so the offline replay's clock (the latest micro-event time seen) moves on
with the input and grace periods run out as they would live. On top of that, per the knobs:

- reordering: extra delay within the reorder window (below the grace period), and details
  shuffled inside an envelope (their sequence numbers still tell the order);
- late delivery: a payload held back until well past its conversation's end plus the grace;
- duplicates: byte-identical re-sends, or the same details in another envelope with the same
  top-level `createdTimestamp` (same identity, SPEC 3), some of them after finalization;
- render drift (see `drift`);
- malformed payloads, each of which must become exactly one dead letter;
- JSON arrays batching several payloads in one delivery;
- what a relay forwards beside the detail events: Genesys-shaped events of other topics (each a
  dead letter `unsupported-topic`) and Notifications API heartbeats (answered, never kept).
  These draw from a random stream of their own, so knobs left off change no other byte.

The plan records which micro-events each delivery validly carries, so that the truth is derived
from exactly what was delivered.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any

import orjson

from simulator.generate import drift, formats, truth
from simulator.generate.model import ENVELOPE, Conversation, MicroEvent, Payload, new_uuid
from simulator.generate.profiles import Knobs
from simulator.timeutil import MINUTE, SECOND
from transform.state import seconds_to_ms

Json = dict[str, Any]

# Micro-events that decide whether a conversation has ended (SPEC 5); never delayed as "late".
ENDING_ACTIONS = frozenset({"conversation:state", "customer.end", "user.start", "user.end"})

UNSUPPORTED_TOPIC = "unsupported-topic"
"""The malformed kind (and the dead-letter reason) of an event of a non-detail topic."""
FOREIGN_TOPICS = (
    "v2.conversations.{id}.transcription",
    "v2.conversations.{id}.attributes",
    "v2.detail.events.conversatio.{id}.customer.start",
)
"""Topics a relay subscribed too widely forwards (the last: a typo of the detail prefix)."""
HEARTBEAT: Json = {
    "topicName": "channel.metadata",
    "eventBody": {"message": "WebSocket Heartbeat"},
}
"""The Notifications API's keep-alive, every 30 s on a channel."""


@dataclass(slots=True)
class Item:
    """One delivery element: a payload copy or a malformed text, with what it carries."""

    send_ms: int
    seq: int
    role: str  # "original", "duplicate" or "malformed"
    conversation_id: str | None
    doc: Any = None  # the JSON value to serialize, unless `text` is set
    text: str | None = None  # raw (broken) text sent as is
    events: tuple[MicroEvent, ...] = ()  # micro-events this copy validly delivers
    payload: Payload | None = None
    batchable: bool = True
    drift: list[str] = field(default_factory=list)
    note: Json = field(default_factory=dict)
    late: str | None = None  # "delayed" when held back on purpose
    body: bytes = b""
    line: int = 0
    element: int | None = None

    def serialize(self) -> None:
        """Fix the bytes to send, and let go of the document (large runs hold many items)."""
        self.body = self.text.encode() if self.text is not None else formats.dumps(self.doc)
        self.doc = None


@dataclass(slots=True)
class Plan:
    """The delivery lines and, per conversation, the micro-events they validly deliver."""

    lines: list[bytes]
    items: list[Item]
    delivered: dict[str, list[MicroEvent]]
    counters: Counter[str]


def plan(
    conversations: Sequence[Conversation],
    knobs: Knobs,
    *,
    seed: int,
    org_id: str,
    progress: Callable[[int], None] | None = None,
) -> Plan:
    """Schedule every payload of `conversations`, with the faults the knobs ask for."""
    scheduler = _Scheduler(knobs, org_id, seed)
    items: list[Item] = []
    for conversation in conversations:
        rng = Random(f"{seed}:delivery:{conversation.index}")
        items += scheduler.conversation_items(rng, conversation)
        if progress:
            progress(1)
    items.sort(key=lambda it: (it.send_ms, it.seq))
    for item in items:
        item.serialize()
    counters = scheduler.counters
    lines = _lines(Random(f"{seed}:lines"), items, knobs.array_rate, counters)
    delivered: dict[str, list[MicroEvent]] = defaultdict(list)
    for item in items:
        if item.conversation_id is not None:
            delivered[item.conversation_id].extend(item.events)
    return Plan(lines, items, dict(delivered), counters)


@dataclass(slots=True)
class _Scheduler:
    """What every conversation's schedule shares: knobs, org, counters, a creation sequence."""

    knobs: Knobs
    org_id: str
    seed: int = 0
    counters: Counter[str] = field(default_factory=Counter)
    created: int = 0

    def seq(self) -> int:
        self.created += 1
        return self.created

    def conversation_items(self, rng: Random, conversation: Conversation) -> list[Item]:
        knobs = self.knobs
        originals = [self.original(rng, p) for p in conversation.payloads]
        ended_at = truth.end_time(conversation.events)
        if ended_at is not None and rng.random() < knobs.late_rate:
            _delay(rng, originals, ended_at, knobs)
        extra: list[Item] = []
        for item in originals:
            if rng.random() < knobs.malformed_rate and knobs.malformed_kinds:
                broken = self.malformed(rng, item)
                if broken is not None:
                    extra.append(broken)
        for item in originals:
            if item.note.get("kind") != "bad-detail" and rng.random() < knobs.duplicate_rate:
                extra += self.duplicates(rng, item)
        return originals + extra + self.relayed(conversation, originals)

    def relayed(self, conversation: Conversation, originals: list[Item]) -> list[Item]:
        """A foreign-topic event and a heartbeat near the conversation, per the route's knobs."""
        knobs = self.knobs
        if not (knobs.foreign_topic_rate or knobs.heartbeat_rate):
            return []
        rng = Random(f"{self.seed}:relay:{conversation.index}")
        first = min(item.send_ms for item in originals)
        items = []
        if rng.random() < knobs.foreign_topic_rate:
            items.append(self.foreign_topic(rng, conversation, first))
        if rng.random() < knobs.heartbeat_rate:
            items.append(
                Item(
                    send_ms=first + rng.randint(0, 30 * SECOND),
                    seq=self.seq(),
                    role="heartbeat",
                    conversation_id=None,
                    doc=dict(HEARTBEAT),
                    batchable=False,  # a relay forwards each WebSocket message on its own
                    note={"kind": "heartbeat"},
                )
            )
        return items

    def foreign_topic(self, rng: Random, conversation: Conversation, first_ms: int) -> Item:
        """A Genesys-shaped event of a topic that is not a detail topic: one dead letter."""
        self.counters["foreign_serial"] += 1
        marker = f"sim-topic-{self.counters['foreign_serial']:05d}"
        cid = conversation.conversation_id
        template = rng.choice(FOREIGN_TOPICS)
        at = first_ms + rng.randint(1 * SECOND, 60 * SECOND)
        body: Json = {"conversationId": cid, "eventTime": at}
        if "transcription" in template:
            body["transcripts"] = [{"utteranceId": new_uuid(rng), "alternatives": []}]
        inner: Json = {
            "topicName": template.replace("{id}", cid),
            "version": "2",
            "eventBody": body,
            "metadata": {"CorrelationId": new_uuid(rng)},
        }
        doc = inner
        if rng.random() < 0.5:
            doc = formats.wrap_eventbridge(
                inner, template, event_id=new_uuid(rng), created_ms=at, org_id=self.org_id
            )
        doc["simMarker"] = marker
        return Item(
            send_ms=at + rng.randint(50, 1500),
            seq=self.seq(),
            role="malformed",
            conversation_id=cid,
            doc=doc,
            note={
                "kind": UNSUPPORTED_TOPIC,
                "marker": marker,
                "detail": f"an event of topic {template} (not a conversation detail topic)",
            },
        )

    def original(self, rng: Random, payload: Payload) -> Item:
        knobs = self.knobs
        doc = formats.render(payload, self.org_id)
        events = payload.events
        details = doc.get("data", {}).get("details") if payload.fmt == ENVELOPE else None
        if details and len(details) > 1 and rng.random() < knobs.shuffle_rate:
            order = list(range(len(details)))
            while order == sorted(order):
                rng.shuffle(order)
            doc["data"]["details"] = [details[i] for i in order]
            events = tuple(events[i] for i in order)
            self.counters["shuffled_envelopes"] += 1
        applied = []
        if rng.random() < knobs.drift_rate:
            applied = drift.render_drift(rng, doc, payload.fmt, knobs.drift_kinds)
        send = payload.created_ms + rng.randint(50, 1500)
        if rng.random() < knobs.reorder_rate:
            window = max(1 * SECOND, seconds_to_ms(knobs.reorder_window_seconds))
            send += rng.randint(1 * SECOND, window)
        return Item(
            send_ms=send,
            seq=self.seq(),
            role="original",
            conversation_id=payload.conversation_id,
            doc=doc,
            events=events,
            payload=payload,
            drift=applied,
        )

    def duplicates(self, rng: Random, item: Item) -> list[Item]:
        """One to three copies of `item` with the same identity, a few after finalization."""
        payload = item.payload
        assert payload is not None
        copies = []
        while True:
            delay = rng.randint(200, 20 * SECOND)
            if rng.random() < 0.15:  # after the conversation was finalized: must not rewrite
                delay = rng.randint(2 * MINUTE, 30 * MINUTE)
            if payload.fmt == ENVELOPE and rng.random() < 0.5:
                copies.append(self.reenvelope(rng, item, item.send_ms + delay))
            else:
                copies.append(
                    Item(
                        send_ms=item.send_ms + delay,
                        seq=self.seq(),
                        role="duplicate",
                        conversation_id=item.conversation_id,
                        doc=item.doc,
                        events=item.events,
                        payload=payload,
                        note={"kind": "resend"},
                    )
                )
            if len(copies) >= 3 or rng.random() >= 0.25:
                return copies

    def reenvelope(self, rng: Random, item: Item, send: int) -> Item:
        """Some of the same details in a new envelope with the same top-level createdTimestamp."""
        payload = item.payload
        assert payload is not None
        details = item.doc["data"]["details"]
        keep = sorted(rng.sample(range(len(details)), rng.randint(1, len(details))))
        fresh = dataclasses.replace(payload, payload_id=new_uuid(rng), correlation_id=new_uuid(rng))
        doc = formats.envelope(
            fresh, self.org_id, details=[copy.deepcopy(details[i]) for i in keep]
        )
        return Item(
            send_ms=send,
            seq=self.seq(),
            role="duplicate",
            conversation_id=item.conversation_id,
            doc=doc,
            events=tuple(item.events[i] for i in keep),
            payload=payload,
            note={"kind": "reenvelope"},
        )

    def malformed(self, rng: Random, item: Item) -> Item | None:
        """A payload that must become one dead letter; `bad-detail` breaks the original itself."""
        self.counters["malformed_serial"] += 1
        marker = f"sim-malformed-{self.counters['malformed_serial']:05d}"
        kinds = list(self.knobs.malformed_kinds)
        for kind in rng.sample(kinds, len(kinds)):
            made = MALFORMERS[kind](rng, item, marker)
            if made is None:
                continue
            if made is item:
                item.note = {"kind": kind, "marker": marker, **item.note}
                return None
            made.send_ms = item.send_ms + rng.randint(0, 5 * SECOND)
            made.seq = self.seq()
            made.note = {"kind": kind, "marker": marker, **made.note}
            return made
        return None


def _delay(rng: Random, originals: list[Item], ended_at: int, knobs: Knobs) -> None:
    """Hold back a payload that does not decide the end until well past end + grace."""
    eligible = [
        item
        for item in originals[1:]
        if not any(e.action.lower() in ENDING_ACTIONS for e in item.events)
    ]
    if not eligible:
        return
    item = rng.choice(eligible)
    grace = seconds_to_ms(knobs.grace_seconds)
    item.send_ms = max(item.send_ms, ended_at + grace + rng.randint(30 * SECOND, 15 * MINUTE))
    item.late = "delayed"


# ----------------------------------------------------------------------------- malformed


def _copy_doc(item: Item, marker: str) -> Json:
    doc: Json = copy.deepcopy(item.doc)
    doc["simMarker"] = marker
    return doc


def _broken(text: str, item: Item, detail: str, *, batchable: bool = False) -> Item:
    return Item(
        send_ms=0,
        seq=0,
        role="malformed",
        conversation_id=item.conversation_id,
        text=text,
        batchable=batchable,
        note={"detail": detail},
    )


def _wrong(doc: Any, item: Item, detail: str, *, conversation: bool = True) -> Item:
    return Item(
        send_ms=0,
        seq=0,
        role="malformed",
        conversation_id=item.conversation_id if conversation else None,
        doc=doc,
        note={"detail": detail},
    )


def _invalid_json(rng: Random, item: Item, marker: str) -> Item | None:
    text = formats.dumps(item.doc).decode()
    how = rng.choice(("python-repr", "trailing-comma", "unquoted-key", "garbage-after"))
    if how == "python-repr":
        broken = str(item.doc)
    elif how == "trailing-comma":
        broken = text[:-1] + ",}"
    elif how == "unquoted-key":
        broken = text.replace('"', "", 2)
    else:
        broken = text + "} trailing"
    if _parses(broken):
        broken = "{" + broken
    return _broken(broken, item, f"invalid JSON ({how})")


def _truncated(rng: Random, item: Item, marker: str) -> Item | None:
    text = formats.dumps(item.doc).decode()
    cut = rng.randint(len(text) // 4, 3 * len(text) // 4)
    return _broken(text[:cut], item, f"truncated after {cut} of {len(text)} characters")


def _not_object(rng: Random, item: Item, marker: str) -> Item | None:
    serial = int(marker.rsplit("-", 1)[1])
    text = rng.choice(
        (f'"{marker}: not a payload"', str(900_000 + serial), "null", "true", "false")
    )
    made = _broken(text, item, f"top-level JSON {text[:12]!s} instead of an object")
    made.conversation_id = None  # nothing of a conversation in it
    return made


def _unrecognised(rng: Random, item: Item, marker: str) -> Item | None:
    shapes: list[Json] = [
        {"eventType": "routing.queue.member.updated", "userId": new_uuid(rng), "simMarker": marker},
        {"topic": "v2.users.presence", "body": {"presence": "AVAILABLE"}, "simMarker": marker},
        {"hello": "world", "simMarker": marker},
        {},
    ]
    doc = rng.choice(shapes)
    made = _wrong(doc, item, f"object of no known shape (keys {sorted(doc)})", conversation=False)
    made.batchable = bool(doc)  # `{}` carries no marker: alone on its line, matched by text
    return made


def _missing_id(rng: Random, item: Item, marker: str) -> Item | None:
    doc = _copy_doc(item, marker)
    holder = doc["data"] if "data" in doc else doc.get("detail", doc)["eventBody"]
    key = "id" if "data" in doc else "conversationId"
    if rng.random() < 0.5:
        del holder[key]
        detail = f"copy of a payload without {key}"
    else:
        holder[key] = None
        detail = f"copy of a payload with {key}: null"
    return _wrong(doc, item, detail)


def _bad_timestamp(rng: Random, item: Item, marker: str) -> Item | None:
    doc = _copy_doc(item, marker)
    if "data" in doc:
        holder, key = doc, "createdTimestamp"
    else:
        holder, key = doc.get("detail", doc)["eventBody"], "eventTime"
    value = rng.choice(("not-a-timestamp", "2026-13-45T25:61:00Z", "yesterday", None, "removed"))
    if value == "removed":
        del holder[key]
    else:
        holder[key] = value
    return _wrong(doc, item, f"copy of a payload with {key} {value!r}")


def _bad_sequence(rng: Random, item: Item, marker: str) -> Item | None:
    if item.payload is None or item.payload.fmt != ENVELOPE:
        return None
    doc = _copy_doc(item, marker)
    value = rng.choice(("one", 1.5, None, "", "removed"))
    for d in doc["data"]["details"]:
        if value == "removed":
            del d["sequence"]
        else:
            d["sequence"] = value
    return _wrong(doc, item, f"copy of an envelope whose every sequence is {value!r}")


def _bad_detail(rng: Random, item: Item, marker: str) -> Item | None:
    """Break one detail of the original envelope: the rest must still be applied."""
    if item.payload is None or item.payload.fmt != ENVELOPE or item.late:
        return None
    candidates = [i for i, e in enumerate(item.events) if e.action.lower() not in ENDING_ACTIONS]
    if len(item.events) < 2 or not candidates:
        return None
    i = rng.choice(candidates)
    value = rng.choice(("seven", 2.5, None))
    item.doc["data"]["details"][i]["sequence"] = value
    item.doc["simMarker"] = marker
    dropped = item.events[i]
    item.events = item.events[:i] + item.events[i + 1 :]
    item.note = {"detail": f"detail {dropped.action!r} has sequence {value!r}; others valid"}
    return item


def _parses(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


MALFORMERS: dict[str, Callable[[Random, Item, str], Item | None]] = {
    "invalid-json": _invalid_json,
    "truncated": _truncated,
    "not-object": _not_object,
    "unrecognised-shape": _unrecognised,
    "missing-conversation-id": _missing_id,
    "bad-timestamp": _bad_timestamp,
    "bad-sequence": _bad_sequence,
    "bad-detail": _bad_detail,
}


# ----------------------------------------------------------------------------- lines


def _lines(
    rng: Random, items: list[Item], array_rate: float, counters: Counter[str]
) -> list[bytes]:
    """Group consecutive items into delivery lines, some as JSON arrays of payloads."""
    lines: list[bytes] = []
    i = 0
    while i < len(items):
        group = [items[i]]
        if items[i].batchable and rng.random() < array_rate:
            size = rng.randint(2, 5)
            broken = items[i].role == "malformed"
            while len(group) < size and i + len(group) < len(items):
                nxt = items[i + len(group)]
                if not nxt.batchable or (broken and nxt.role == "malformed"):
                    break
                broken = broken or nxt.role == "malformed"
                group.append(nxt)
        line = len(lines) + 1
        if len(group) == 1 and not (items[i].batchable and rng.random() < 0.02):
            items[i].line, items[i].element = line, None
            lines.append(group[0].body)
        else:  # an array, sometimes of a single payload
            for n, item in enumerate(group):
                item.line, item.element = line, n
            lines.append(b"[" + b",".join(item.body for item in group) + b"]")
            counters["array_deliveries"] += 1
        i += len(group)
    return lines
