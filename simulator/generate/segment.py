"""How a source packs a conversation's steps into payloads, which fixes identity and order.

Envelopes: consecutive steps go into one envelope, whose top-level `createdTimestamp` is
distinct per envelope of a conversation and whose sequence numbers restart at 1. Genesys
formats: one payload per step, its `eventTime` being the step time.
"""

from __future__ import annotations

from collections.abc import Sequence
from random import Random

from simulator.generate.model import ENVELOPE, MicroEvent, Payload, new_uuid
from simulator.generate.steps import Step
from simulator.timeutil import SECOND

# A source flushes an envelope when activity pauses this long (or the envelope is full).
BURST_GAP_MS = 3 * SECOND


def envelope_groups(rng: Random, steps: Sequence[Step], split: bool) -> list[list[Step]]:
    """Split steps into envelopes: bursts of up to a few steps, or one envelope for all."""
    if not split:
        return [list(steps)]
    groups: list[list[Step]] = []
    limit = 0
    for step in steps:
        current = groups[-1] if groups else None
        if (
            current is None
            or len(current) >= limit
            or step.time_ms - current[-1].time_ms > BURST_GAP_MS
        ):
            groups.append([step])
            limit = rng.randint(1, 6)
        else:
            current.append(step)
    return groups


def envelopes(
    rng: Random, conversation_id: str, media: str, steps: Sequence[Step], split: bool
) -> list[Payload]:
    """The envelopes of one conversation, each created shortly after its last step."""
    payloads: list[Payload] = []
    started = steps[0].time_ms
    previous = -1
    for group in envelope_groups(rng, steps, split):
        created = max(group[-1].time_ms + rng.randint(20, 900), previous + 1)
        previous = created
        events = tuple(
            MicroEvent(
                conversation_id, ENVELOPE, s.action, s.time_ms, created, seq, media, s.fields
            )
            for seq, s in enumerate(group, start=1)
        )
        payloads.append(
            Payload(
                conversation_id=conversation_id,
                fmt=ENVELOPE,
                created_ms=created,
                events=events,
                payload_id=new_uuid(rng),
                correlation_id=new_uuid(rng),
                media=media,
                conversation_started_ms=started,
            )
        )
    return payloads


def genesys_payloads(
    rng: Random,
    conversation_id: str,
    media: str,
    steps: Sequence[Step],
    formats: Sequence[str],
    *,
    media_less: frozenset[str] = frozenset(),
) -> list[Payload]:
    """One Genesys payload per step, in one of `formats` (several: the relay mixes them);
    steps whose kind is in `media_less` name no media (Genesys's `attributes`)."""
    started = steps[0].time_ms
    payloads = []
    for step in steps:
        fmt = formats[0] if len(formats) == 1 else rng.choice(formats)
        named = None if step.action in media_less else media
        event = MicroEvent(
            conversation_id, fmt, step.action, step.time_ms, step.time_ms, None, named, step.fields
        )
        payloads.append(
            Payload(
                conversation_id=conversation_id,
                fmt=fmt,
                created_ms=step.time_ms,
                events=(event,),
                payload_id=new_uuid(rng),
                correlation_id=new_uuid(rng),
                media=media,
                conversation_started_ms=started,
            )
        )
    return payloads
