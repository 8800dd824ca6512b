"""Answers of the `$management` and `$cbs` nodes, as plain values (no AMQP here).

`$management` READ of `com.microsoft:eventhub` and `com.microsoft:partition` returns the maps
the SDK reads by key, for a request whose `security_token` (or, without one, the connection's
claims) covers the hub. `$cbs` put-token checks the shared access signature and grants the
claim to the connection. Errors carry the service's status codes and `error-condition`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devstack.eventhubs.auth import (
    SAS_TOKEN_TYPE,
    Claims,
    SharedAccessKey,
    Unauthorized,
    verify_token,
)
from devstack.eventhubs.broker import Broker
from devstack.eventhubs.config import HubConfig

HUB_TYPE = "com.microsoft:eventhub"
PARTITION_TYPE = "com.microsoft:partition"
PUT_TOKEN = "put-token"
UNAUTHORIZED = "amqp:unauthorized-access"
ARGUMENT_OUT_OF_RANGE = "com.microsoft:argument-out-of-range"


class Timestamp(int):
    """Milliseconds since the epoch, to be sent as an AMQP timestamp."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A management or CBS answer: status code, description and body map."""

    status_code: int
    description: str
    body: dict[str, Any] | None = field(default=None)
    condition: str | None = None  # sent as `error-condition`, which the SDKs map to errors


def invalid_partition(hub: HubConfig, partition_id: str) -> str:
    """The service's words for a partition id the hub does not have, and the id given."""
    return (
        "The specified partition is invalid for an EventHub partition sender or receiver."
        f" It should be between 0 and {hub.partition_count - 1}. Parameter name: PartitionId"
        f" (got {partition_id!r} for hub {hub.name!r})"
    )


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return None if value is None else str(value)


def answer_cbs(
    request: dict[str, Any], token: object, key: SharedAccessKey, claims: Claims, now_s: int
) -> Reply:
    """Check a put-token's shared access signature; grant its audience to the connection.

    A refusal is status 401 with the reason in the description, as the service answers (the
    SDKs raise `AuthenticationError` in Python, `UnauthorizedError` in JavaScript).
    """
    operation = _text(request.get("operation"))
    if operation != PUT_TOKEN:
        return Reply(400, f"unsupported $cbs operation {operation!r}; only put-token is served")
    audience = _text(request.get("name")) or ""
    token_type = _text(request.get("type"))
    if token_type != SAS_TOKEN_TYPE:
        msg = (
            f"InvalidIssuer: token type {token_type!r} is not checked here; the emulator takes"
            " shared access signatures (a connection string with SharedAccessKeyName and"
            " SharedAccessKey)"
        )
        return Reply(401, msg)
    try:
        expiry_s = verify_token(_text(token) or "", key, audience, now_s)
    except Unauthorized as e:
        return Reply(401, str(e))
    claims.grant(audience, expiry_s)
    return Reply(202, "Accepted")


def _authorize_read(
    request: dict[str, Any], hub_name: str, key: SharedAccessKey, claims: Claims, now_s: int
) -> None:
    """A READ needs its `security_token` valid for the hub, or, without one, a claim on it."""
    token = _text(request.get("security_token"))
    if token:
        verify_token(token, key, hub_name, now_s)
        return
    hub = hub_name.lower()
    if not (claims.allow((hub,), now_s) or claims.allow((hub, "$management"), now_s)):
        msg = (
            "Unauthorized access. 'Listen' claim(s) are required to perform this operation."
            f" Resource: '{hub_name}'. Send a security_token or put a token for the hub first."
        )
        raise Unauthorized(msg)


def answer_management(
    broker: Broker, request: dict[str, Any], key: SharedAccessKey, claims: Claims, now_s: int
) -> Reply:
    """READ hub or partition properties."""
    operation = _text(request.get("operation"))
    kind = _text(request.get("type"))
    name = _text(request.get("name")) or ""
    if operation != "READ" or kind not in (HUB_TYPE, PARTITION_TYPE):
        msg = f"unsupported management request operation={operation!r} type={kind!r}"
        return Reply(400, msg)
    try:
        _authorize_read(request, name, key, claims, now_s)
    except Unauthorized as e:
        return Reply(401, str(e), condition=UNAUTHORIZED)
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
        return Reply(400, invalid_partition(hub, partition_id), condition=ARGUMENT_OUT_OF_RANGE)
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
