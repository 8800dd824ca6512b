"""A test app for the local host: HTTP round trips, a producer, Event Hub recorders, a timer.

Recorders append one JSON line per received event to `$ECHO_RECORD_DIR/<function>.jsonl`
(one write per batch, so concurrent instances never interleave lines). Settings:
ECHO_HUB (hub of `record_batch`), ECHO_RECORD_DIR, ECHO_PRODUCER_HUB (default for `produce`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any, List

import azure.functions as func
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubProducerClient

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
logger = logging.getLogger("echo")

_producers: dict[str, EventHubProducerClient] = {}
_producer_lock = asyncio.Lock()
EVENTHUB_CONNECTION_SETTING = "EventHubConnection"


async def producer(hub: str) -> EventHubProducerClient:
    """One producer per worker process and hub, created lazily and reused."""
    async with _producer_lock:
        if hub not in _producers:
            _producers[hub] = EventHubProducerClient.from_connection_string(
                os.environ[EVENTHUB_CONNECTION_SETTING], eventhub_name=hub
            )
        return _producers[hub]


def record(function_name: str, rows: list[dict[str, Any]]) -> None:
    folder = Path(os.environ["ECHO_RECORD_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    with (folder / f"{function_name}.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(text)


def event_rows(function_name: str, events: List[func.EventHubEvent], **extra: Any) -> list[dict]:
    metadata = events[0].metadata or {}
    partition = metadata.get("PartitionContext", {}).get("PartitionId")
    rows = []
    for event in events:
        rows.append(
            {
                "function": function_name,
                "pid": os.getpid(),
                "partition": partition,
                "sequence": event.sequence_number,
                "offset": event.offset,
                "partition_key": event.partition_key,
                "enqueued_time": event.enqueued_time.isoformat() if event.enqueued_time else None,
                "body": event.get_body().decode("utf-8"),
                "batch_size": len(events),
                "metadata_keys": sorted(metadata),
                **extra,
            }
        )
    return rows


@app.route(route="echo/{name}", methods=["GET", "POST"])
async def http_echo(req: func.HttpRequest) -> func.HttpResponse:
    payload = {
        "method": req.method,
        "url": req.url,
        "route": dict(req.route_params),
        "params": dict(req.params),
        "header": req.headers.get("x-echo"),
        "body": req.get_body().decode("utf-8"),
    }
    return func.HttpResponse(
        json.dumps(payload), status_code=201, mimetype="application/json", headers={"x-echoed": "1"}
    )


@app.route(route="sync/{number:int}", methods=["GET"])
def http_sync(req: func.HttpRequest) -> func.HttpResponse:
    number = int(req.route_params["number"])
    return func.HttpResponse(str(number * 2), mimetype="text/plain")


@app.route(route="fail", methods=["GET", "POST"])
def http_fail(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("this function always fails")


@app.route(route="produce", methods=["POST"])
async def produce(req: func.HttpRequest) -> func.HttpResponse:
    """POST {"bodies": [...]} ?key=K[&hub=H]: one batch with partition key K, via the SDK."""
    document = req.get_json()
    key = req.params.get("key") or document.get("partition_key")
    hub = req.params.get("hub") or os.environ.get("ECHO_PRODUCER_HUB", "test-events")
    client = await producer(hub)
    batch = await client.create_batch(partition_key=key)
    for body in document["bodies"]:
        batch.add(EventData(body if isinstance(body, str) else json.dumps(body)))
    await client.send_batch(batch)
    return func.HttpResponse(json.dumps({"sent": len(batch)}), mimetype="application/json")


@app.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="%ECHO_HUB%",
    connection="EventHubConnection",
    cardinality="many",
    data_type="binary",
)
async def record_batch(events: List[func.EventHubEvent]) -> None:
    record("record_batch", event_rows("record_batch", events))
    delay = max(float(json.loads(e.get_body()).get("sleep", 0)) for e in events)
    if delay:
        await asyncio.sleep(delay)


@app.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="echo-fail",
    connection="EventHubConnection",
    cardinality="many",
    data_type="binary",
)
def record_failing(events: List[func.EventHubEvent]) -> None:
    """Records, then raises when any event asks for it (the host still checkpoints)."""
    record("record_failing", event_rows("record_failing", events))
    if any(json.loads(e.get_body()).get("fail") for e in events):
        raise ValueError("asked to fail")


@app.function_name("record_retrying")
@app.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="echo-retry",
    connection="EventHubConnection",
    cardinality="many",
    data_type="binary",
)
@app.retry(strategy="fixed_delay", max_retry_count="3", delay_interval="00:00:01")
async def record_retrying(events: List[func.EventHubEvent], context: func.Context) -> None:
    """Fails until retry number `fail_times` (from the bodies), recording each attempt."""
    retry = context.retry_context.retry_count
    record("record_retrying", event_rows("record_retrying", events, retry=retry))
    fail_times = max(int(json.loads(e.get_body()).get("fail_times", 0)) for e in events)
    if retry < fail_times:
        raise RuntimeError(f"failing attempt {retry}")


@app.event_hub_message_trigger(
    arg_name="event",
    event_hub_name="echo-single",
    connection="EventHubConnection",
    data_type="string",
)
def record_single(event: func.EventHubEvent) -> None:
    record("record_single", event_rows("record_single", [event]))


@app.timer_trigger(arg_name="timer", schedule="*/2 * * * * *", run_on_startup=True)
def timer_tick(timer: func.TimerRequest) -> None:
    record("timer_tick", [{"pid": os.getpid(), "past_due": timer.past_due}])


@app.timer_trigger(arg_name="timer", schedule="0 0 * * * *", use_monitor=True)
def timer_hourly(timer: func.TimerRequest) -> None:
    """Hourly with a monitor: after a missed occurrence the host fires it once, past due."""
    record(
        "timer_hourly",
        [{"pid": os.getpid(), "past_due": timer.past_due, "status": timer.schedule_status}],
    )
