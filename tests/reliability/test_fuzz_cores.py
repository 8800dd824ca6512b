"""Mutation fuzzing through the pure cores: the acceptance plan and the transform.

Every mutant of a real body (truncated, nested, huge, wrong types, invalid UTF-8, duplicate
keys, NaN, enormous numbers, megabyte strings, byte-order marks, empty) must get an answer
and lose nothing: ingest either refuses the request whole (413/415, nothing stored) or plans
it, with every payload either forwarded or dead-lettered, and forwarding exactly what the
transform would apply; the transform never raises and applies or dead-letters every payload.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from ingest.accept import AcceptanceLimits, Request, check_request, partition_key_for, plan
from ingest.errors import RequestRefused
from schemas.timestamps import ms_to_datetime
from simulator.generate.mutate import MUTATORS, Mutant, mutants, mutate
from tests.ingest.helpers import identities, notification, voice
from tests.reliability.seeds import seed_bodies
from transform.deadletters import raw_bytes
from transform.jsontext import dump_json
from transform.normalize import parse_delivery
from transform.service import Counts, Delivery, TransformService, parse_batch
from transform.state import Timing

LIMITS = AcceptanceLimits()
CORPUS_SIZE = int(os.environ.get("RELIABILITY_MUTANTS", "1500"))  # more outside CI
CORPUS_SEED = int(os.environ.get("RELIABILITY_SEED", "20261124"))


def account_for_ingest(body: bytes) -> str:
    """Run one body through the acceptance core and check nothing is lost; return the outcome."""
    request = Request(body, {"content-type": "application/json"}, 1_795_000_000_000, "m-1")
    try:
        check_request(request, LIMITS, secret=None)
        the_plan = plan(request, LIMITS)
    except RequestRefused as refused:
        assert refused.status in (413, 415)
        return f"refused-{refused.status}"
    forwarded: set[tuple[str, str]] = set()
    for event in the_plan.events:
        found = identities(event.body)
        forwarded |= found
        assert {partition_key_for(cid) for cid, _ in found} <= {event.partition_key}
        assert len(event.body) <= LIMITS.max_event_bytes
    assert forwarded == identities(body), "ingest forwards exactly what the transform applies"
    if the_plan.payloads == 0:  # empty, not JSON, or []: one letter holds the whole body
        (letter,) = the_plan.dead_letters
        assert raw_bytes(letter) == body and not the_plan.events
    else:
        assert the_plan.accepted_payloads + the_plan.rejected_payloads == the_plan.payloads
        assert sum(e.payload_count for e in the_plan.events) == the_plan.accepted_payloads
    return "accepted" if the_plan.events else "rejected"


def account_for_transform(bodies: Sequence[bytes]) -> Counts:
    """Apply bodies as one batch on the twins; every micro-event applied, every reject kept."""
    store, records, letters = InMemoryStateStore(), InMemoryRecordSink(), InMemoryDeadLetterSink()
    clock = ManualClock(ms_to_datetime(1_795_000_000_000))
    service = TransformService(store, records, letters, clock, Timing(1000, 2000))
    parsed = [parse_delivery(body) for body in bodies]
    deliveries = [Delivery(body=body, source={"line": n}) for n, body in enumerate(bodies)]
    counts = service.apply(parse_batch(deliveries))
    clock.set(ms_to_datetime(1_795_000_000_000 + 10_000_000_000))
    counts.add(service.tick(limit=100_000))
    micro_events = sum(len(p.events) for p in parsed)
    rejections = sum(len(p.rejections) for p in parsed)
    assert counts.micro_events == micro_events
    assert counts.applied + counts.duplicates == micro_events
    assert counts.dead_letters == rejections == len(letters.letters)
    conversations = {e.conversation_id for p in parsed for e in p.events}
    assert set(records.records) == conversations, "every conversation ends as a record"
    return counts


def corpus() -> list[Mutant]:
    return list(mutants(seed_bodies(), CORPUS_SIZE, seed=CORPUS_SEED))


def test_the_corpus_uses_every_mutator() -> None:
    used = {name for mutant in corpus() for name in mutant.mutators}
    assert used == set(MUTATORS)


def test_every_mutant_is_answered_by_the_acceptance_core_and_nothing_is_lost() -> None:
    outcomes: dict[str, int] = {}
    for mutant in corpus():
        try:
            outcome = account_for_ingest(mutant.body)
        except Exception as e:  # name the input so a failure is reproducible
            raise AssertionError(
                f"mutant {mutant.index} of seed {mutant.seed_index} {mutant.mutators}: {e!r}"
            ) from e
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    # The corpus exercises every answer, so a fuzzer that only ever hits one path fails here.
    assert {"accepted", "rejected", "refused-413"} <= set(outcomes), outcomes


def test_every_mutant_is_applied_or_dead_lettered_by_the_transform() -> None:
    bodies = [mutant.body for mutant in corpus()]
    total = Counts()
    for start in range(0, len(bodies), 100):
        total.add(account_for_transform(bodies[start : start + 100]))
    assert total.applied > 0 and total.dead_letters > 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed_index=st.integers(min_value=0, max_value=len(seed_bodies()) - 1),
    rng_seed=st.integers(min_value=0, max_value=2**32 - 1),
    stack=st.integers(min_value=1, max_value=3),
)
def test_stacked_mutations_never_escape_the_cores(
    seed_index: int, rng_seed: int, stack: int
) -> None:
    _, body = mutate(seed_bodies()[seed_index], random.Random(rng_seed), max_stack=stack)
    account_for_ingest(body)
    account_for_transform([body])


@pytest.mark.parametrize("name", sorted(MUTATORS))
def test_each_mutator_alone_on_each_format(name: str) -> None:
    rng = random.Random(name)
    bodies = [MUTATORS[name](seed, rng) for seed in seed_bodies()[:12]]
    for body in bodies:
        account_for_ingest(body)
    account_for_transform(bodies)


# ------------------------------------------------------------------ what the fuzzers found


def test_a_payload_nested_deeper_than_orjson_writes_is_forwarded_from_an_array() -> None:
    deep: dict[str, object] = {"id": "x"}
    for _ in range(600):
        deep = {"a": deep}
    payload = voice("deep-1")
    payload["data"]["extra"] = deep
    body = dump_json([voice("deep-0"), payload])
    assert account_for_ingest(body) == "accepted"
    account_for_transform([body])


@pytest.mark.parametrize("sequence", [1e29, "1" * 30, 2**63, "-" + "9" * 30, "9" * 5000])
def test_sequence_numbers_beyond_64_bits_are_rejected_not_stored(sequence: object) -> None:
    payload = voice("big-seq")
    payload["data"]["details"][0]["sequence"] = sequence
    body = dump_json(payload)
    parsed = parse_delivery(body)
    assert len(parsed.events) == 1 and len(parsed.rejections) == 1  # the other detail stands
    assert "64-bit" in parsed.rejections[0].error or "integer" in parsed.rejections[0].error
    assert account_for_ingest(body) == "accepted"
    account_for_transform([body])


def test_durations_beyond_64_bits_are_ignored_like_other_unusable_numbers() -> None:
    payload = notification("big-hold", "user.end", 3, participantId="p", heldDurationMs=1e300)
    body = dump_json(payload)
    assert len(parse_delivery(body).events) == 1
    assert account_for_ingest(body) == "accepted"
    account_for_transform([body])  # the state codec raised on a 301-digit integer before
