"""HTTP ingest blueprint: `POST /api/v1/genesys/events` and `GET /api/health` (SPEC 6).

It only translates: `HttpRequest` → `ingest.accept.Request` → `IngestService` → `HttpResponse`.
The service, the Event Hubs producer and the dead-letter writer are wired once per worker
process from the app settings (`adapters.wiring.ingest_runtime`), on the first request, and the
producer is closed at exit.
"""

from __future__ import annotations

import atexit
import logging
import threading
import uuid
from datetime import UTC, datetime

import azure.functions as func
import orjson

from adapters.settings import IngestSettings, SettingsError
from adapters.wiring import IngestRuntime, ingest_runtime
from functions import telemetry
from ingest.accept import Request, lower_headers
from ingest.errors import NotConfigured, Unavailable
from ingest.service import Answer, unavailable_answer
from schemas.timestamps import datetime_to_ms

log = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves __init__ untyped

NOT_CONFIGURED_RETRY_AFTER_SECONDS = 30.0


_runtime: IngestRuntime | None = None
_runtime_lock = threading.Lock()


def runtime() -> IngestRuntime:
    """The process's runtime, built from the environment on first use."""
    global _runtime  # noqa: PLW0603 - one per worker process, by design
    if _runtime is None:
        with _runtime_lock:
            if _runtime is None:
                built = ingest_runtime(IngestSettings.from_env())
                atexit.register(built.publisher.close_at_exit)
                log.info(
                    "ingest ready eventhub=%s connection=%s deadletters=%s signature=%s",
                    built.settings.eventhub_name,
                    built.settings.eventhub.describe(),
                    built.settings.dead_letters.describe(),
                    "required" if built.settings.webhook_secret else "off",
                )
                telemetry.setup()
                _runtime = built
    return _runtime


def install_runtime(replacement: IngestRuntime | None) -> IngestRuntime | None:
    """Swap the process's runtime (tests, or a host that wires its own); returns the old one."""
    global _runtime
    with _runtime_lock:
        previous, _runtime = _runtime, replacement
    return previous


async def close_runtime() -> None:
    """Close the runtime's clients (for hosts and tests that shut down in-loop)."""
    current = install_runtime(None)
    if current is not None:
        await current.close()


def _response(answer: Answer) -> func.HttpResponse:
    return func.HttpResponse(
        body=orjson.dumps(answer.body),
        status_code=answer.status,
        headers=answer.headers,
        mimetype="application/json",
        charset="utf-8",
    )


def _not_configured(error: SettingsError, message_id: str) -> Answer:
    log.error("ingest is not configured message_id=%s error=%s", message_id, error)
    failure = NotConfigured(
        f"ingest is not configured: {error}", NOT_CONFIGURED_RETRY_AFTER_SECONDS
    )
    return unavailable_answer(failure, message_id)


@bp.function_name("ingest_events")
@bp.route(route="v1/genesys/events", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def ingest_events(req: func.HttpRequest) -> func.HttpResponse:
    """Accept Genesys conversation events and write them durably to Event Hubs."""
    message_id = uuid.uuid4().hex
    try:
        service = runtime().service
    except SettingsError as e:
        return _response(_not_configured(e, message_id))
    request = Request(
        body=req.get_body(),
        headers=lower_headers(req.headers),
        received_at_ms=datetime_to_ms(datetime.now(UTC)),
        message_id=message_id,
    )
    try:
        answer = await service.handle(request)
    except Exception:  # the last guard of "never 500": a bug answers 503 and is logged
        log.exception("ingest failed unexpectedly message_id=%s", message_id)
        answer = unavailable_answer(Unavailable("internal error: retry later"), message_id)
    return _response(answer)


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    """Breaker state of this worker, as JSON."""
    try:
        service = runtime().service
    except SettingsError as e:
        return _response(_not_configured(e, uuid.uuid4().hex))
    return _response(service.health())
