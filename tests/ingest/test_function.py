"""The Blueprint functions themselves, driven with `azure.functions.HttpRequest` (twins behind)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import orjson
import pytest

from adapters.blob_deadletters import AsyncBlobDeadLetterSink, InMemoryAsyncDeadLetterSink
from adapters.eventhub_producer import EventHubPublisher, InMemoryEventPublisher
from adapters.settings import IngestSettings
from adapters.wiring import IngestRuntime
from functions import ingest as blueprint
from tests.conftest import project_functions
from tests.ingest.helpers import Rig, body_of, voice

ROUTE = "/api/v1/genesys/events"
SETTINGS_ENV = {
    "EventHubConnection": "Endpoint=sb://localhost;SharedAccessKeyName=k;SharedAccessKey=v;"
    "UseDevelopmentEmulator=true;",
    "StateStorage": "UseDevelopmentStorage=true",
}


def indexed() -> tuple[func.Function, ...]:
    """The app's functions, indexed once per process (see `project_functions`)."""
    return project_functions()


def functions_by_name() -> dict[str, Callable[..., Any]]:
    return {f.get_function_name(): f.get_user_function() for f in indexed()}


def test_the_app_registers_the_ingest_routes() -> None:
    bindings = {
        f.get_function_name(): orjson.loads(f.get_function_json())["bindings"][0] for f in indexed()
    }
    assert bindings["ingest_events"]["route"] == "v1/genesys/events"
    assert bindings["ingest_events"]["methods"] == ["POST"]
    assert bindings["ingest_events"]["authLevel"] == "FUNCTION"
    assert bindings["health"]["route"] == "health"
    assert bindings["health"]["methods"] == ["GET"]


@pytest.fixture
def twins() -> Iterator[tuple[InMemoryEventPublisher, InMemoryAsyncDeadLetterSink]]:
    """Install a runtime whose service runs on the in-memory twins."""
    rig = Rig(threshold=1)
    settings = IngestSettings.from_env(SETTINGS_ENV)
    runtime = IngestRuntime(
        settings,
        rig.service,
        EventHubPublisher(settings.eventhub, settings.eventhub_name),  # never connected
        AsyncBlobDeadLetterSink(settings.dead_letters),
    )
    previous = blueprint.install_runtime(runtime)
    yield rig.publisher, rig.sink
    blueprint.install_runtime(previous)


def post(body: bytes, headers: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(
        method="POST",
        url=f"http://localhost:7071{ROUTE}",
        headers={"Content-Type": "application/json", **(headers or {})},
        body=body,
    )


def as_json(response: func.HttpResponse) -> dict[str, Any]:
    assert response.mimetype == "application/json"
    result: dict[str, Any] = orjson.loads(response.get_body())
    return result


@pytest.mark.asyncio
async def test_post_accepted(twins: tuple[InMemoryEventPublisher, Any]) -> None:
    publisher, _ = twins
    response = await functions_by_name()["ingest_events"](
        post(body_of([voice("A"), voice("B")]), {"X-Idempotency-Key": "k1"})
    )
    assert response.status_code == 200
    body = as_json(response)
    assert body["status"] == "accepted"
    assert body["events"] == 2
    assert len(body["message_id"]) == 32
    assert [e.properties["idempotency_key"] for e in publisher.sent] == ["k1", "k1"]


@pytest.mark.asyncio
async def test_post_rejected_and_unavailable(
    twins: tuple[InMemoryEventPublisher, InMemoryAsyncDeadLetterSink],
) -> None:
    publisher, sink = twins
    ingest_events = functions_by_name()["ingest_events"]
    rejected = await ingest_events(post(b"<xml/>"))
    assert rejected.status_code == 400
    assert as_json(rejected)["deadletter_id"] in sink.letters

    publisher.fail_with = ConnectionError("down")
    unavailable = await ingest_events(post(body_of(voice("A"))))
    assert unavailable.status_code == 503
    assert unavailable.headers["Retry-After"] == "30"  # threshold 1: open at once
    assert as_json(unavailable)["status"] == "unavailable"

    health = await functions_by_name()["health"](
        func.HttpRequest(method="GET", url="http://localhost:7071/api/health", body=b"")
    )
    assert health.status_code == 200
    assert as_json(health)["breaker"]["state"] == "open"


@pytest.mark.asyncio
async def test_wrong_content_type_is_415_json(twins: Any) -> None:
    response = await functions_by_name()["ingest_events"](
        post(body_of(voice("A")), {"Content-Type": "text/plain"})
    )
    assert response.status_code == 415
    assert as_json(response)["code"] == "unsupported-content-type"


@pytest.mark.asyncio
async def test_missing_settings_answer_503_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("EventHubConnection", "EventHubConnection__fullyQualifiedNamespace"):
        monkeypatch.delenv(name, raising=False)
    previous = blueprint.install_runtime(None)
    try:
        response = await functions_by_name()["ingest_events"](post(body_of(voice("A"))))
    finally:
        blueprint.install_runtime(previous)
    assert response.status_code == 503
    body = as_json(response)
    assert body["code"] == "not-configured"
    assert "EventHubConnection" in body["error"]
    assert response.headers["Retry-After"] == "30"


def test_the_ingest_core_imports_no_azure_and_reads_no_clock_or_environment() -> None:
    root = Path(__file__).resolve().parents[2] / "ingest"
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith("azure"), f"{path.name} imports {name}"
                assert name not in ("os", "time", "datetime", "random", "uuid"), (
                    f"{path.name} imports {name}: the core takes time and ids as values"
                )
