"""Seed bodies for the mutation fuzzers: every wire format, envelopes and arrays, real sizes."""

from __future__ import annotations

import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "sample_deliveries.jsonl"


@functools.cache
def seed_bodies() -> tuple[bytes, ...]:
    """The bundled sample deliveries plus a small `mixed` data set (all formats, drift)."""
    from simulator.generate.dataset import generate
    from simulator.generate.profiles import resolve

    sample = [line for line in SAMPLE.read_bytes().splitlines() if line.strip()]
    mixed = generate(conversations=12, seed=99, profile="mixed", knobs=resolve("mixed", {}))
    generated = mixed.deliveries_bytes().splitlines()
    return tuple(sample + generated[:60])
