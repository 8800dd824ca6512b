"""Commit planning: the request-size bound the planner packs with is never below the size."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.entity import payload_bytes
from adapters.state_plan import KnownRow, plan_change
from tests.contract.states import make_state
from transform.ports import Put

IDS = st.text(min_size=1, max_size=400)


@settings(max_examples=300, deadline=None)
@given(
    conversation_id=IDS,
    noise=st.integers(0, 60_000),
    old_slot=st.one_of(st.none(), st.integers(0, 10**12)),
    deadline=st.integers(0, 10**12),
)
def test_the_size_bound_covers_every_operation(
    conversation_id: str, noise: int, old_slot: int | None, deadline: int
) -> None:
    state = make_state(conversation_id, noise_bytes=noise)
    known = None if old_slot is None else KnownRow('W/"1"', old_slot, None)
    plan = plan_change(Put(state, None if known is None else known.etag, deadline), known, 0, 4)
    assert plan.size >= sum(payload_bytes(op.entity) for op in plan.ops)
