"""The smallest app the CLI test runs: one HTTP route and one Event Hub trigger."""

from __future__ import annotations

import logging
from typing import List

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
logger = logging.getLogger("minimal")


@app.route(route="ping", methods=["GET"])
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")


@app.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="test-events",
    connection="EventHubConnection",
    cardinality="many",
)
def count_events(events: List[func.EventHubEvent]) -> None:
    logger.info("received count=%s", len(events))
