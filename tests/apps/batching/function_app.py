"""Batch sizing under host.json minEventBatchSize / maxWaitTime: records each invocation."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import List

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="echo-batching",
    connection="EventHubConnection",
    cardinality="many",
    data_type="binary",
)
def record_invocation(events: List[func.EventHubEvent]) -> None:
    first = min(e.enqueued_time for e in events if e.enqueued_time is not None)
    row = {
        "size": len(events),
        "invoked_at": time.time(),
        "first_enqueued": first.isoformat(),
        "sequences": [e.sequence_number for e in events],
    }
    folder = Path(os.environ["ECHO_RECORD_DIR"])
    with (folder / "invocations.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
