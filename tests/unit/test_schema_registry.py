"""The registry holds exactly the current models' schemas: change a model, bump its version."""

from __future__ import annotations

import pytest

from schemas.registry import REGISTRY, current_schemas, render


@pytest.mark.parametrize("relative", sorted(current_schemas()))
def test_stored_schema_matches_the_model(relative: str) -> None:
    stored = REGISTRY / relative
    assert stored.exists(), f"{relative} is not exported: run python -m schemas.registry"
    assert stored.read_bytes() == render(current_schemas()[relative]), (
        f"the model behind {relative} changed without a new version: bump its version "
        "constant, run python -m schemas.registry, and note it in COMPATIBILITY.md"
    )


def test_record_schema_lists_every_spec_field() -> None:
    properties = current_schemas()["record/v1.json"]["properties"]
    spec_fields = {
        "schema_version",
        "conversation_id",
        "media_type",
        "direction",
        "status",
        "finalized_reason",
        "revision",
        "final_state",
        "started_at",
        "ended_at",
        "duration_seconds",
        "reported_duration_seconds",
        "hold_seconds",
        "hold_count",
        "transfers",
        "wrap_up_code",
        "wrap_up_seconds",
        "caller",
        "callee",
        "queue_ids",
        "agent_ids",
        "skill_ids",
        "message_count",
        "lifecycle",
        "event_count",
        "duplicate_count",
        "late_event_count",
        "unknown_events",
        "source_formats",
        "first_seen_at",
        "finalized_at",
    }
    assert set(properties) == spec_fields


def test_derived_records_validate_against_the_record_model() -> None:
    from pathlib import Path

    from schemas.record import ConversationRecord
    from tests.unit.conftest import replay_payloads

    sample = Path(__file__).parents[1] / "data" / "sample_deliveries.jsonl"
    records = replay_payloads(sample.read_bytes().splitlines())
    assert len(records) == 4
    for record in records.values():
        assert ConversationRecord.model_validate(record).model_dump(mode="json") == record
