"""Every replay output is byte-identical to the digests committed before the redesign.

The digests in `golden.json` were taken from the code as it was before issues #16 (layering)
and #17 (speed): records (every revision), dead letters and counts of the bundled sample and of
`realistic`, `chaos`, `genesys` and `mixed` data sets, with small and large batches.
"""

from __future__ import annotations

import orjson
import pytest

from tests.golden.outputs import BATCH_SIZES, GOLDEN, data_sets, digests, read_input

EXPECTED = orjson.loads(GOLDEN.read_bytes())
CASES = [(name, size) for name in data_sets() for size in BATCH_SIZES]


def test_every_data_set_has_digests() -> None:
    assert sorted(EXPECTED) == sorted(f"{name}/batch-{size}" for name, size in CASES)
    assert {name for name, _ in CASES} == {"sample", "realistic", "chaos", "genesys", "mixed"}


@pytest.mark.parametrize(("name", "batch_size"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_replay_output_is_unchanged(name: str, batch_size: int) -> None:
    expected = EXPECTED[f"{name}/batch-{batch_size}"]
    assert expected["records"] > 0
    assert digests(read_input(data_sets()[name]), batch_size) == expected


@pytest.mark.parametrize(("name", "batch_size"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_replay_split_into_shares_gives_the_same_output(name: str, batch_size: int) -> None:
    """`--workers 3`: three shares of the conversations, each replayed on its own, together
    write exactly what one replay writes (records, every revision, dead letters, counts)."""
    expected = EXPECTED[f"{name}/batch-{batch_size}"]
    assert digests(read_input(data_sets()[name]), batch_size, shards=3) == expected
