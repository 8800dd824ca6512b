"""dump_json: the same bytes as orjson where orjson writes, and any depth orjson reads."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transform.jsontext import dump_json

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False,
    allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)  # fmt: skip


@given(VALUES)
def test_shallow_values_are_what_orjson_writes(value: object) -> None:
    assert dump_json(value) == orjson.dumps(value)


def test_nesting_orjson_reads_but_cannot_write_round_trips() -> None:
    text = b'{"a":' * 600 + b'[1,"\xc3\xa9\\u0000",{"k":null,"t":true},2.5]' + b"}" * 600
    value = orjson.loads(text)
    with pytest.raises(orjson.JSONEncodeError):  # else the fallback has lost its test
        orjson.dumps(value)
    assert orjson.loads(dump_json(value)) == value
    assert json.loads(dump_json(value)) == value
    deepest = b"[" * 1023 + b"]" * 1023  # as deep as orjson reads
    assert dump_json(orjson.loads(deepest)) == deepest
