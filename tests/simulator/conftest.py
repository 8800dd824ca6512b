"""Small generated data sets, one per profile, shared by the simulator tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from simulator.generate.dataset import Dataset, generate, write
from simulator.generate.profiles import PROFILES, resolve

SIZE = 80
SEED = 2024


def make(profile: str, *, n: int = SIZE, seed: int = SEED, **knobs: object) -> Dataset:
    return generate(conversations=n, seed=seed, profile=profile, knobs=resolve(profile, knobs))


@pytest.fixture(scope="session")
def datasets() -> dict[str, Dataset]:
    """Every profile at SIZE conversations (chaos a bit larger, so every fault shows up)."""
    return {p: make(p, n=SIZE * 2 if p == "chaos" else SIZE) for p in PROFILES}


@pytest.fixture(scope="session")
def written(
    datasets: dict[str, Dataset], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The data sets on disk, one folder per profile."""
    root = tmp_path_factory.mktemp("datasets")
    out = {}
    for profile, dataset in datasets.items():
        write(dataset, root / profile)
        out[profile] = root / profile
    return out


@pytest.fixture
def dataset_factory() -> Callable[..., Dataset]:
    return make
