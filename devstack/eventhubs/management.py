"""Answers of the `$management` and `$cbs` nodes, as plain values (no AMQP here).

`$management` READ of `com.microsoft:eventhub` and `com.microsoft:partition` returns the maps
the SDK reads by key; `$cbs` put-token accepts every token (the emulator does no auth).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devstack.eventhubs.broker import Broker

HUB_TYPE = "com.microsoft:eventhub"
PARTITION_TYPE = "com.microsoft:partition"
PUT_TOKEN = "put-token"


class Timestamp(int):
    """Milliseconds since the epoch, to be sent as an AMQP timestamp."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A management or CBS answer: status code, description and body map."""

    status_code: int
    description: str
    body: dict[str, Any] | None = field(default=None)


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return None if value is None else str(value)


def answer_cbs(request: dict[str, Any]) -> Reply:
    """Accept a put-token for any audience; refuse any other operation."""
    operation = _text(request.get("operation"))
    if operation != PUT_TOKEN:
        return Reply(400, f"unsupported $cbs operation {operation!r}; only put-token is served")
    return Reply(202, "Accepted")


def answer_management(broker: Broker, request: dict[str, Any]) -> Reply:
    """READ hub or partition properties."""
    operation = _text(request.get("operation"))
    kind = _text(request.get("type"))
    name = _text(request.get("name")) or ""
    if operation != "READ" or kind not in (HUB_TYPE, PARTITION_TYPE):
        msg = f"unsupported management request operation={operation!r} type={kind!r}"
        return Reply(400, msg)
    hub = broker.hub(name)
    if hub is None:
        namespace = broker.config.namespace
        return Reply(404, f"The messaging entity '{namespace}:eventhub:{name}' could not be found.")
    if kind == HUB_TYPE:
        body: dict[str, Any] = {
            "name": hub.name,
            "type": HUB_TYPE,
            "created_at": Timestamp(broker.created_at_ms(hub)),
            "partition_count": hub.partition_count,
            "partition_ids": hub.partition_ids,
        }
        return Reply(200, "OK", body)
    partition_id = _text(request.get("partition")) or ""
    if partition_id not in hub.partition_ids:
        msg = (
            f"partition {partition_id!r} does not exist in hub {hub.name!r};"
            f" valid ids are {', '.join(hub.partition_ids)}"
        )
        return Reply(404, msg)
    info = broker.partition_info(hub, int(partition_id))
    body = {
        "name": hub.name,
        "type": PARTITION_TYPE,
        "partition": partition_id,
        "begin_sequence_number": info.begin_sequence_number,
        "last_enqueued_sequence_number": info.last_sequence_number,
        "last_enqueued_offset": info.last_offset,
        "last_enqueued_time_utc": Timestamp(info.last_enqueued_ms),
        "is_partition_empty": info.is_empty,
    }
    return Reply(200, "OK", body)
