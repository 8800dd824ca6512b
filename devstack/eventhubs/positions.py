"""Where a consumer starts: the selector filter the SDK sends, resolved against a partition log.

The SDK expresses every start position as `amqp.annotation.<field> <op> '<value>'` with
field `x-opt-offset` (offsets, plus `-1` for the start and `@latest` for the end),
`x-opt-sequence-number` or `x-opt-enqueued-time` (epoch ms), and op `>` or `>=`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from devstack.eventhubs.storage import PartitionInfo, PartitionLog

START_OF_STREAM = "-1"
END_OF_STREAM = "@latest"

_SELECTOR = re.compile(
    r"^\s*amqp\.annotation\.(?P<field>x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)"
    r"\s*(?P<op>>=|>)\s*'(?P<value>[^']*)'\s*$",
    re.IGNORECASE,
)
_FIELD_KIND: dict[str, Literal["offset", "sequence", "time"]] = {
    "x-opt-offset": "offset",
    "x-opt-sequence-number": "sequence",
    "x-opt-enqueued-time": "time",
}


@dataclass(frozen=True, slots=True)
class StartPosition:
    """A parsed start position; `value` is the text between the quotes."""

    kind: Literal["offset", "sequence", "time"]
    value: str
    inclusive: bool


LATEST = StartPosition("offset", END_OF_STREAM, inclusive=False)


def parse_selector(expression: str) -> StartPosition:
    """Parse a selector filter expression; ValueError names what is wrong with it."""
    match = _SELECTOR.match(expression)
    if match is None:
        msg = (
            f"unsupported selector filter {expression!r}: expected amqp.annotation.<field>"
            " > or >= '<value>' with field x-opt-offset, x-opt-sequence-number or"
            " x-opt-enqueued-time"
        )
        raise ValueError(msg)
    kind = _FIELD_KIND[match["field"].lower()]
    value = match["value"]
    if not (kind == "offset" and value in (START_OF_STREAM, END_OF_STREAM)):
        try:
            int(value)
        except ValueError:
            raise ValueError(f"{match['field']} value {value!r} is not an integer") from None
    return StartPosition(kind, value, inclusive=match["op"] == ">=")


def beyond_end(position: StartPosition, info: PartitionInfo) -> str | None:
    """Why a start position past the partition's last event is refused, as the service says.

    The service refuses a sequence number or offset greater than the last one enqueued (the
    SDKs raise `ArgumentError`); a time in the future is accepted and waits for new events.
    """
    if position.kind == "sequence" and int(position.value) > info.last_sequence_number:
        return (
            f"The supplied sequence number '{position.value}' is invalid. The last sequence"
            f" number in the system is '{info.last_sequence_number}'"
        )
    if (
        position.kind == "offset"
        and position.value not in (START_OF_STREAM, END_OF_STREAM)
        and int(position.value) > int(info.last_offset)
    ):
        return (
            f"The supplied offset '{position.value}' is invalid. The last offset in the"
            f" system is '{info.last_offset}'"
        )
    return None


def resolve(position: StartPosition, log: PartitionLog) -> int:
    """The sequence number of the first event to deliver for `position`."""
    if position.kind == "offset":
        if position.value == START_OF_STREAM:
            return log.begin_sequence_number
        if position.value == END_OF_STREAM:
            return log.next_sequence_number
        return log.clamp(log.seek_offset(int(position.value), inclusive=position.inclusive))
    if position.kind == "sequence":
        number = int(position.value)
        return log.clamp(number if position.inclusive else number + 1)
    return log.clamp(log.seek_time(int(position.value), inclusive=position.inclusive))
