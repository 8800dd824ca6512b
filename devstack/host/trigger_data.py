"""What the Functions host sends the worker for each trigger: HTTP requests, timer ticks and
Event Hubs batches, as `ParameterBinding`s and trigger metadata (the worker runtime decodes them).

For Event Hubs the host sends the event bodies (a collection for cardinality many) plus binding data
(extension v5/v6 `EventHubTriggerBindingStrategy`) as trigger metadata: PartitionContext, and
per event PartitionKey, Offset, OffsetString, SequenceNumber, EnqueuedTimeUtc, Properties,
SystemProperties (each with an `Array` suffix for cardinality many). The worker runtime decodes
them with the library's `EventHubTriggerConverter` into `azure.functions.EventHubEvent`s, with
the quirks of the real thing: `enqueued_time` is a naive datetime holding UTC (the host
serialises `EnqueuedTime.DateTime`); with cardinality many `offset` is an int, with one a str.

Values are typed as the host's `ToRpc` types them: strings as `string`, numbers and objects as
`json`, and, when the worker announces `TypedDataCollection` (the runtime does), arrays of
strings, longs and byte arrays as collections; empty and null strings are left out of a string
collection unless the worker announces `IncludeEmptyEntriesInMessagePayload` (it does not).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.eventhub import EventData
from azure.eventhub.amqp import AmqpMessageBodyType

from devstack.host.rpc import protos


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


TYPED_DATA_COLLECTION = "TypedDataCollection"
INCLUDE_EMPTY_ENTRIES = "IncludeEmptyEntriesInMessagePayload"


@dataclass(frozen=True)
class WorkerCapabilities:
    """What the worker announced at init that changes how the host encodes trigger data."""

    typed_collections: bool = True
    empty_entries: bool = False

    @classmethod
    def announced(cls, capabilities: Mapping[str, str]) -> WorkerCapabilities:
        """From the WorkerInitResponse capabilities (a capability is on when it has a value)."""
        return cls(
            typed_collections=bool(capabilities.get(TYPED_DATA_COLLECTION)),
            empty_entries=bool(capabilities.get(INCLUDE_EMPTY_ENTRIES)),
        )


@dataclass(frozen=True)
class TriggerInput:
    """One invocation's input: the trigger's ParameterBinding and the trigger metadata."""

    input_data: list[Any]
    trigger_metadata: dict[str, Any]


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


def _json(value: Any) -> Any:
    return protos.TypedData(json=json.dumps(value))


def _strings(values: Sequence[str | None], capabilities: WorkerCapabilities) -> Any:
    if not capabilities.typed_collections:
        return _json(list(values))
    kept = [v or "" for v in values if v or capabilities.empty_entries]
    return protos.TypedData(collection_string=protos.CollectionString(string=kept))


def _longs(values: Sequence[int], capabilities: WorkerCapabilities) -> Any:
    if not capabilities.typed_collections:
        return _json(list(values))
    return protos.TypedData(collection_sint64=protos.CollectionSInt64(sint64=list(values)))


def http_input(
    argument: str,
    *,
    method: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    route_params: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> Any:
    """An HTTP request as the host sends it (RpcHttp; the body as bytes, as the worker asks)."""
    http = protos.RpcHttp(
        method=method,
        url=url,
        headers=dict(headers or {}),
        params=dict(route_params or {}),
        query=dict(query or {}),
        body=protos.TypedData(bytes=body),
    )
    return protos.ParameterBinding(name=argument, data=protos.TypedData(http=http))


def timer_input(argument: str, past_due: bool, status: Mapping[str, Any] | None) -> Any:
    """A timer tick as the host sends it (the worker decodes it into a TimerRequest)."""
    payload = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": status, "IsPastDue": past_due}
    return protos.ParameterBinding(name=argument, data=_json(payload))


def _sys_metadata(function_name: str) -> Any:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return _json({"MethodName": function_name, "UtcNow": now, "RandGuid": str(uuid.uuid4())})


def _body_text(body: bytes) -> str:
    # The host decodes string-typed bodies as UTF-8, replacing invalid bytes.
    return body.decode("utf-8", errors="replace")


def batch_input(
    events: Sequence[EventData],
    partition: PartitionInfo,
    *,
    argument: str,
    data_type: str,
    function_name: str,
    capabilities: WorkerCapabilities,
) -> TriggerInput:
    """What a cardinality-many function's invocation carries."""
    fields = [event_fields(e) for e in events]
    bodies = [event_body(e) for e in events]
    if data_type == "binary" and capabilities.typed_collections:
        data = protos.TypedData(collection_bytes=protos.CollectionBytes(bytes=bodies))
    elif data_type == "binary":
        data = _json([base64.b64encode(b).decode("ascii") for b in bodies])
    else:
        data = _strings([_body_text(b) for b in bodies], capabilities)
    context = partition.as_binding_data()
    metadata = {
        "TriggerPartitionContext": _json(context),
        "PartitionContext": _json(context),
        "PartitionKeyArray": _strings([f.partition_key for f in fields], capabilities),
        "OffsetArray": _longs([f.offset for f in fields], capabilities),
        "OffsetStringArray": _strings([f.offset_string for f in fields], capabilities),
        "SequenceNumberArray": _longs([f.sequence_number for f in fields], capabilities),
        "EnqueuedTimeUtcArray": _json([f.enqueued_time_utc for f in fields]),
        "PropertiesArray": _json([f.properties for f in fields]),
        "SystemPropertiesArray": _json([f.system_properties for f in fields]),
        "sys": _sys_metadata(function_name),
    }
    return TriggerInput([protos.ParameterBinding(name=argument, data=data)], metadata)


def single_input(
    event: EventData,
    partition: PartitionInfo,
    *,
    argument: str,
    data_type: str,
    function_name: str,
) -> TriggerInput:
    """What a cardinality-one function's invocation carries."""
    fields = event_fields(event)
    body = event_body(event)
    data = (
        protos.TypedData(bytes=body)
        if data_type == "binary"
        else protos.TypedData(string=_body_text(body))
    )
    context = partition.as_binding_data()
    metadata: dict[str, Any] = {
        "TriggerPartitionContext": _json(context),
        "PartitionContext": _json(context),
        "Offset": _json(fields.offset),
        "SequenceNumber": _json(fields.sequence_number),
        "Properties": _json(fields.properties),
        "SystemProperties": _json(fields.system_properties),
        "sys": _sys_metadata(function_name),
    }
    if fields.partition_key is not None:
        metadata["PartitionKey"] = protos.TypedData(string=fields.partition_key)
    if fields.offset_string is not None:
        metadata["OffsetString"] = protos.TypedData(string=fields.offset_string)
    if fields.enqueued_time_utc is not None:
        metadata["EnqueuedTimeUtc"] = _json(fields.enqueued_time_utc)
    return TriggerInput([protos.ParameterBinding(name=argument, data=data)], metadata)
