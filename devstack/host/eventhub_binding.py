"""Turn received EventData into azure.functions.EventHubEvent objects exactly as the worker does.

The Functions host sends the worker the event bodies plus binding data (extension v5/v6
`EventHubTriggerBindingStrategy`): PartitionContext, and per event PartitionKey, Offset,
OffsetString, SequenceNumber, EnqueuedTimeUtc, Properties, SystemProperties (each with an `Array`
suffix for cardinality many). The worker wraps them in `Datum`s and decodes them with the
library's `EventHubTriggerConverter`; so do we, so the quirks match the real thing:
- `enqueued_time` is a naive datetime holding UTC (the host serialises `EnqueuedTime.DateTime`);
- with cardinality many `offset` is an int, with cardinality one a str.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
from azure.eventhub import EventData
from azure.eventhub.amqp import AmqpMessageBodyType
from azure.functions import meta
from azure.functions.eventhub import EventHubTriggerConverter


@dataclass(frozen=True)
class PartitionInfo:
    """Where a batch came from (the trigger's PartitionContext)."""

    fully_qualified_namespace: str
    eventhub_name: str
    consumer_group: str
    partition_id: str

    def as_binding_data(self) -> dict[str, Any]:
        return {
            "FullyQualifiedNamespace": self.fully_qualified_namespace,
            "EventHubName": self.eventhub_name,
            "ConsumerGroup": self.consumer_group,
            "PartitionId": self.partition_id,
        }


@dataclass(frozen=True)
class _Collection:
    """Stands in for the protobuf collection the worker reads `.bytes` / `.string` from."""

    bytes: list[bytes] = field(default_factory=list)
    string: list[str] = field(default_factory=list)


def dotnet_datetime(value: datetime | None) -> str | None:
    """Serialise like Json.NET does a `DateTime` of unspecified kind: UTC digits, no offset."""
    if value is None:
        return None
    utc = value.astimezone(UTC) if value.tzinfo else value
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{utc.microsecond:06d}".rstrip("0")
    return f"{text}.{fraction}" if fraction else text


def event_body(event: EventData) -> bytes:
    """The raw body bytes of a received event (data sections concatenated)."""
    message = event.raw_amqp_message
    if message.body_type == AmqpMessageBodyType.DATA:
        return b"".join(message.body)
    return json.dumps(event.body, default=str).encode("utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(_jsonable(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _offset_as_long(offset: str | None) -> int:
    # The extension falls back to -1 ("start of stream") when an offset is not a long.
    try:
        return int(offset) if offset is not None else -1
    except ValueError:
        return -1


@dataclass(frozen=True)
class EventFields:
    """The per-event binding data of one event."""

    partition_key: str | None
    offset: int
    offset_string: str | None
    sequence_number: int
    enqueued_time_utc: str | None
    properties: dict[str, Any]
    system_properties: dict[str, Any]


def partition_key_of(event: EventData) -> str | None:
    """The partition key as text (the SDK hands it over as bytes)."""
    key = event.partition_key
    if isinstance(key, bytes):
        return key.decode("utf-8", errors="replace")
    return None if key is None else str(key)


def event_fields(event: EventData) -> EventFields:
    """Binding data of one event, as the extension computes it."""
    offset = event.offset
    partition_key = partition_key_of(event)
    system: dict[str, Any] = {}
    for key, value in event.system_properties.items():
        name = key.decode("utf-8") if isinstance(key, bytes) else str(key)
        system[name] = _jsonable(value)
    if event.enqueued_time is not None:
        system["x-opt-enqueued-time"] = event.enqueued_time.isoformat()
    enqueued = dotnet_datetime(event.enqueued_time)
    system.update(
        {
            "SequenceNumber": event.sequence_number,
            "Offset": _offset_as_long(offset),
            "OffsetString": offset,
            "PartitionKey": partition_key,
            "EnqueuedTimeUtc": enqueued,
        }
    )
    return EventFields(
        partition_key=partition_key,
        offset=_offset_as_long(offset),
        offset_string=offset,
        sequence_number=int(event.sequence_number or 0),
        enqueued_time_utc=enqueued,
        properties=_jsonable(dict(event.properties or {})),
        system_properties=system,
    )


def _json(value: Any) -> meta.Datum:
    return meta.Datum(json.dumps(value), "json")


def _sys_metadata(function_name: str) -> meta.Datum:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return _json({"MethodName": function_name, "UtcNow": now, "RandGuid": str(uuid.uuid4())})


def _body_text(body: bytes) -> str:
    # The host decodes string-typed bodies as UTF-8, replacing invalid bytes.
    return body.decode("utf-8", errors="replace")


def build_batch_input(
    events: Sequence[EventData],
    partition: PartitionInfo,
    *,
    data_type: str,
    function_name: str,
) -> list[func.EventHubEvent]:
    """The `list[EventHubEvent]` a cardinality-many function receives."""
    fields = [event_fields(e) for e in events]
    bodies = [event_body(e) for e in events]
    if data_type == "binary":
        data = meta.Datum(_Collection(bytes=bodies), "collection_bytes")
    else:
        data = meta.Datum(_Collection(string=[_body_text(b) for b in bodies]), "collection_string")
    context = partition.as_binding_data()
    metadata = {
        "TriggerPartitionContext": _json(context),
        "PartitionContext": _json(context),
        "PartitionKeyArray": _json([f.partition_key for f in fields]),
        "OffsetArray": _json([str(f.offset) for f in fields]),
        "OffsetStringArray": _json([f.offset_string for f in fields]),
        "SequenceNumberArray": _json([f.sequence_number for f in fields]),
        "EnqueuedTimeUtcArray": _json([f.enqueued_time_utc for f in fields]),
        "PropertiesArray": _json([f.properties for f in fields]),
        "SystemPropertiesArray": _json([f.system_properties for f in fields]),
        "sys": _sys_metadata(function_name),
    }
    decoded = EventHubTriggerConverter.decode(data, trigger_metadata=metadata)
    return list(decoded) if isinstance(decoded, list) else [decoded]


def build_single_input(
    event: EventData,
    partition: PartitionInfo,
    *,
    data_type: str,
    function_name: str,
) -> func.EventHubEvent:
    """The `EventHubEvent` a cardinality-one function receives."""
    fields = event_fields(event)
    body = event_body(event)
    data = (
        meta.Datum(body, "bytes")
        if data_type == "binary"
        else meta.Datum(_body_text(body), "string")
    )
    context = partition.as_binding_data()
    metadata: dict[str, meta.Datum] = {
        "TriggerPartitionContext": _json(context),
        "PartitionContext": _json(context),
        "Offset": meta.Datum(str(fields.offset), "string"),
        "SequenceNumber": meta.Datum(fields.sequence_number, "int"),
        "Properties": _json(fields.properties),
        "SystemProperties": _json(fields.system_properties),
        "sys": _sys_metadata(function_name),
    }
    if fields.partition_key is not None:
        metadata["PartitionKey"] = meta.Datum(fields.partition_key, "string")
    if fields.offset_string is not None:
        metadata["OffsetString"] = meta.Datum(fields.offset_string, "string")
    if fields.enqueued_time_utc is not None:
        metadata["EnqueuedTimeUtc"] = _json(fields.enqueued_time_utc)
    decoded = EventHubTriggerConverter.decode(data, trigger_metadata=metadata)
    if isinstance(decoded, list):
        return decoded[0]
    return decoded
