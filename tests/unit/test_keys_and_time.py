"""Storage keys are safe and reversible; timestamps parse and format exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.entity import TableRuleViolation, check_key
from schemas.timestamps import TimestampError, iso_ms, to_epoch_ms
from transform.keys import id_from_key, is_digest_key, safe_key


@given(st.text(min_size=1, max_size=300))
def test_keys_round_trip_and_obey_table_rules(conversation_id: str) -> None:
    key = safe_key(conversation_id)
    check_key(key, "PartitionKey")
    assert "/" not in key and "." not in key and ".." not in key
    if not is_digest_key(key):
        assert id_from_key(key) == conversation_id


@given(st.text(min_size=500, max_size=3000))
def test_over_long_ids_get_digest_keys_that_stay_distinct(conversation_id: str) -> None:
    key = safe_key(conversation_id)
    check_key(key, "PartitionKey")
    assert safe_key(conversation_id + "x") != key


@pytest.mark.parametrize("bad", ["a/b", "a\\b", "a#b", "a?b", "a\x00b", "a\x85b"])
def test_forbidden_key_characters_are_refused(bad: str) -> None:
    with pytest.raises(TableRuleViolation):
        check_key(bad, "RowKey")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-02T09:00:00.123Z", 1793610000123),
        ("2026-11-02T10:00:00.123+01:00", 1793610000123),
        ("2026-11-02T09:00:00.123", 1793610000123),
        (1793610000123, 1793610000123),
        ("1793610000123", 1793610000123),
        (1793610000123.9, 1793610000123),
    ],
)
def test_timestamps_parse(value: object, expected: int) -> None:
    assert to_epoch_ms(value) == expected


@pytest.mark.parametrize("bad", ["yesterday", True, None, float("nan"), 10**30, "²", -5, {}])
def test_bad_timestamps_are_refused_clearly(bad: object) -> None:
    with pytest.raises(TimestampError):
        to_epoch_ms(bad)


@given(st.integers(min_value=0, max_value=253_402_300_799_999))
def test_iso_round_trip(epoch_ms: int) -> None:
    text = iso_ms(epoch_ms)
    assert text.endswith("Z") and len(text) == 24
    assert to_epoch_ms(text) == epoch_ms
