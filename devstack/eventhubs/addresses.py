"""What a link address names: `$cbs`, `$management`, a hub, a partition, or a consumer's source.

The SDK sends full URLs even to the emulator (`amqps://localhost:5672/hub/Partitions/0`);
only the path matters. Path keywords match case-insensitively, as in the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CBS_NODE = "$cbs"
MANAGEMENT_NODE = "$management"

AddressKind = Literal["cbs", "management", "hub", "partition", "consumer"]


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed link address; fields not named by the kind are None."""

    kind: AddressKind
    hub: str | None = None
    partition: str | None = None
    consumer_group: str | None = None


def parse_address(address: str | None) -> Address | None:
    """Parse a link source or target address; None when it names nothing the emulator serves."""
    if not address:
        return None
    path = address.split("://", 1)[1].partition("/")[2] if "://" in address else address
    parts = [part for part in path.strip("/").split("/") if part]
    lowered = [part.lower() for part in parts]
    if lowered == [CBS_NODE]:
        return Address("cbs")
    if lowered == [MANAGEMENT_NODE]:
        return Address("management")
    if len(parts) == 1:
        return Address("hub", hub=parts[0])
    if len(parts) == 3 and lowered[1] == "partitions":
        return Address("partition", hub=parts[0], partition=parts[2])
    if len(parts) == 5 and lowered[1] == "consumergroups" and lowered[3] == "partitions":
        return Address("consumer", hub=parts[0], consumer_group=parts[2], partition=parts[4])
    return None
