"""What a replay produces, reduced to digests that a redesign or a speed-up must keep.

`python -m tests.golden.outputs` rewrites `golden.json`: run it only when a change of output
is intended, and say why in the commit. The data sets are committed (xz) so that a change of
the simulator cannot move them.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import sys
from pathlib import Path
from typing import Any

import orjson

from adapters.memory import InMemoryRecordSink
from tests.replaying import replay_in_memory

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden.json"
SAMPLE = HERE.parent / "data" / "sample_deliveries.jsonl"
BATCH_SIZES = (7, 500)


def data_sets() -> dict[str, Path]:
    """Every input the digests cover, by name."""
    sets = {"sample": SAMPLE}
    sets |= {path.name.split("-")[0]: path for path in sorted((HERE / "data").glob("*.xz"))}
    return sets


def read_input(path: Path) -> bytes:
    """The deliveries of a data set, decompressed."""
    return lzma.decompress(path.read_bytes()) if path.suffix == ".xz" else path.read_bytes()


class _EveryRevision(InMemoryRecordSink):
    """The replay's record sink, also keeping every revision it was given."""

    __slots__ = ("written",)

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def write(self, record: dict[str, Any]) -> None:
        self.written.append(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
        InMemoryRecordSink.write(self, record)


def _sha(parts: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def digests(data: bytes, batch_size: int, *, shards: int = 1) -> dict[str, Any]:
    """Digests of every revision, the latest records, the dead letters and the counts."""
    sink = _EveryRevision()  # the replay's record port: it sees every revision written
    records, dead_letters, counts = replay_in_memory(
        io.BytesIO(data), batch_size=batch_size, records=sink, shards=shards
    )
    revisions = sorted(sink.written)
    latest = [
        orjson.dumps(records.records[key], option=orjson.OPT_INDENT_2)
        for key in sorted(records.records)
    ]
    letters = [
        dead_letters.letters[key].model_dump_json().encode() for key in sorted(dead_letters.letters)
    ]
    return {
        "revisions": len(revisions),
        "revisions_sha256": _sha(revisions),
        "records": len(latest),
        "records_sha256": _sha(latest),
        "dead_letters": len(letters),
        "dead_letters_sha256": _sha(letters),
        "counts": counts.as_dict(),
    }


def compute_all() -> dict[str, dict[str, Any]]:
    """The digests of every data set at every batch size."""
    return {
        f"{name}/batch-{size}": digests(read_input(path), size)
        for name, path in data_sets().items()
        for size in BATCH_SIZES
    }


if __name__ == "__main__":
    table = compute_all()
    GOLDEN.write_bytes(
        orjson.dumps(table, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
    sys.stdout.write(f"wrote {len(table)} entries to {GOLDEN}\n")
