"""Fixtures for the Genesys connection tests: the fake Genesys API and the real SDK on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from adapters.genesys_cloud import GenesysCloudIntegrations
from adapters.genesys_settings import GenesysSettings
from tests.genesys.fake_genesys import FakeGenesys

CLIENT_ID = "ops-connect"
CLIENT_SECRET = "not-a-real-secret"


@pytest.fixture
def fake() -> Iterator[FakeGenesys]:
    server = FakeGenesys().start()
    server.add_client(CLIENT_ID, CLIENT_SECRET)
    yield server
    server.stop()


@pytest.fixture
def settings(fake: FakeGenesys) -> GenesysSettings:
    return GenesysSettings(CLIENT_ID, CLIENT_SECRET, None, fake.base_url)


class Sleeps:
    """Records the waits instead of sleeping them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def login(settings: GenesysSettings, sleeps: Sleeps) -> Callable[..., GenesysCloudIntegrations]:
    """The SDK adapter, logged in to the fake; keyword arguments override `login`'s."""

    def make(**overrides: object) -> GenesysCloudIntegrations:
        options: dict[str, object] = {"sleep": sleeps, "settings": settings}
        options.update(overrides)
        chosen = options.pop("settings")
        assert isinstance(chosen, GenesysSettings)
        return GenesysCloudIntegrations.login(chosen, **options)  # type: ignore[arg-type]

    return make
