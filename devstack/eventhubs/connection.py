"""One client connection: an asyncio protocol driving a proton engine by hand.

Bytes from the socket go through the `InboundScanner` into the proton transport; proton's
events are dispatched to link handlers; proton's output goes through the
`OutboundFramePadder` to the socket. Driving the engine directly (rather than proton's
reactor) is what lets the emulator touch the frames on both sides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from proton import Collector, Condition, Connection, Endpoint, Event, Transport

from devstack.eventhubs.addresses import Address, parse_address
from devstack.eventhubs.auth import Claims, SharedAccessKey
from devstack.eventhubs.broker import Broker
from devstack.eventhubs.frames import (
    AMQP_HEADER,
    InboundScanner,
    OutboundFramePadder,
    ProtocolViolation,
)
from devstack.eventhubs.links import (
    ConsumerLink,
    LinkHandler,
    ProducerLink,
    ReplyLink,
    RequestLink,
    refuse_link,
)
from devstack.eventhubs.management import ARGUMENT_OUT_OF_RANGE, UNAUTHORIZED, invalid_partition

_LOG = logging.getLogger(__name__)

CONTAINER_ID = "devstack-eventhubs"
SERVER_MAX_FRAME_SIZE = 1024 * 1024
FRAMING_ERROR = "amqp:connection:framing-error"
_LOCAL_ACTIVE = Endpoint.LOCAL_ACTIVE


class AmqpConnection(asyncio.Protocol):
    """Serves one AMQP connection; see the module docstring."""

    def __init__(
        self,
        broker: Broker,
        on_closed: Callable[[AmqpConnection], None],
        access_key: SharedAccessKey,
    ) -> None:
        self.broker = broker
        self.access_key = access_key
        self.claims = Claims()  # what this connection's put-tokens granted
        self.scanner = InboundScanner(max_frame_size=SERVER_MAX_FRAME_SIZE)
        self._on_closed = on_closed
        self._padder = OutboundFramePadder()
        self._socket: asyncio.Transport | None = None
        self._peer = "?"
        self._connection = Connection()
        self._connection.container = CONTAINER_ID
        self._transport = Transport(Transport.SERVER)
        self._transport.max_frame_size = SERVER_MAX_FRAME_SIZE
        self._transport.sasl().allowed_mechs("ANONYMOUS")
        self._transport.bind(self._connection)
        self._collector = Collector()
        self._connection.collect(self._collector)
        self._handlers: dict[Any, LinkHandler] = {}
        self._reply_links: dict[tuple[Any, str], ReplyLink] = {}
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline = 0.0
        self._closed = False
        self._close_after_flush = False  # a protocol violation: drop the peer once answered
        self._dispatch_table: dict[Any, Callable[[Event], None]] = {
            Event.CONNECTION_REMOTE_OPEN: self._on_connection_remote_open,
            Event.CONNECTION_REMOTE_CLOSE: self._on_connection_remote_close,
            Event.SESSION_REMOTE_OPEN: self._on_session_remote_open,
            Event.SESSION_REMOTE_CLOSE: self._on_session_remote_close,
            Event.LINK_REMOTE_OPEN: self._on_link_remote_open,
            Event.LINK_REMOTE_CLOSE: self._on_link_remote_close,
            Event.LINK_REMOTE_DETACH: self._on_link_remote_close,
            Event.LINK_FLOW: self._on_link_flow,
            Event.DELIVERY: self._on_delivery,
            Event.TRANSPORT_ERROR: self._on_transport_error,
        }

    # ------------------------------------------------------------------ asyncio side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._socket = transport
        self._peer = str(transport.get_extra_info("peername"))
        _LOG.debug("connection opened peer=%s", self._peer)

    def data_received(self, data: bytes) -> None:
        if self._close_after_flush:
            return
        data = self.scanner.feed(data)
        self._push(data)
        if self.scanner.violation is not None:
            self._refuse(self.scanner.violation)
        self._flush()

    def _push(self, data: bytes) -> None:
        while data:
            capacity = self._transport.capacity()
            if capacity <= 0:
                break  # the transport stopped reading (closing); drop the rest
            chunk, data = (
                (data, b"") if capacity >= len(data) else (data[:capacity], data[capacity:])
            )
            self._transport.push(chunk)
            self._process()

    def _refuse(self, violation: ProtocolViolation) -> None:
        """Answer a peer that broke the protocol at once, then drop it."""
        self._close_after_flush = True
        if violation.kind == "not-amqp":
            # AMQP 1.0 2.2: answer with a supported protocol header, then close the socket.
            _LOG.warning(
                "not an AMQP client peer=%s reason=%s hint=%s",
                self._peer,
                violation.description,
                "the emulator speaks plain AMQP: add UseDevelopmentEmulator=true to the"
                " connection string (without it the SDK opens TLS)",
            )
            self._closed = True
            if self._socket is not None:
                self._socket.write(AMQP_HEADER)
                self._socket.close()
            return
        _LOG.warning("framing error peer=%s reason=%s", self._peer, violation.description)
        if self._connection.state & Endpoint.REMOTE_ACTIVE:
            self._fail(FRAMING_ERROR, violation.description)
            return
        # Not open yet: proton answers a transport error with open + close carrying it (a client
        # still in SASL only sees the socket close: SASL has no way to say it).
        self._transport.condition = Condition(FRAMING_ERROR, violation.description)
        self._transport.close_tail()
        self._process()

    def eof_received(self) -> bool | None:
        if self._close_after_flush:
            return None
        self._transport.close_tail()
        self._process()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        _LOG.debug("connection lost peer=%s error=%s", self._peer, exc)
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for handler in list(self._handlers.values()):
            handler.on_remote_close()
        self._handlers.clear()
        self._reply_links.clear()
        self._transport.unbind()
        self._on_closed(self)

    # ------------------------------------------------------------------ engine plumbing

    def request_flush(self) -> None:
        """Write proton's output after the current callback (many calls, one write)."""
        if not self._flush_scheduled and not self._closed:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def close(self) -> None:
        """Close the AMQP connection (server shutdown); clients treat this as retryable."""
        if not self._closed:
            self._fail("amqp:connection:forced", "The Event Hubs emulator is shutting down.")
            self._flush()

    def _process(self) -> None:
        while (event := self._collector.peek()) is not None:
            action = self._dispatch_table.get(event.type)
            if action is not None:
                try:
                    action(event)
                except Exception:
                    _LOG.exception("event handling failed peer=%s event=%s", self._peer, event.type)
                    self._fail("amqp:internal-error", f"emulator error handling {event.type}")
            self._collector.pop()

    def _fail(self, condition: str, description: str) -> None:
        self._connection.condition = Condition(condition, description)
        self._connection.close()

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._closed or self._socket is None:
            return
        self._process()
        self._schedule_tick()
        # proton hands out its output one buffer at a time: drain until it has nothing left.
        chunks = []
        while (pending := self._transport.pending()) > 0:
            chunks.append(self._transport.peek(pending) or b"")
            self._transport.pop(pending)
        if chunks:
            self._socket.write(self._padder.feed(b"".join(chunks)))
        if pending < 0 or self._transport.closed or self._close_after_flush:
            self._socket.close()

    def _schedule_tick(self) -> None:
        """Let proton send heartbeats and detect idle peers; wake up at its next deadline."""
        loop = asyncio.get_running_loop()
        deadline = self._transport.tick(loop.time())
        if deadline == self._timer_deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline > 0:
            self._timer = loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = 0.0
        self._flush()

    # ------------------------------------------------------------------ endpoint events

    # proton's event accessors are Optional-typed; each event type guarantees its context.

    def _on_connection_remote_open(self, event: Event) -> None:
        self._connection.open()

    def _on_connection_remote_close(self, event: Event) -> None:
        self._connection.close()

    def _on_session_remote_open(self, event: Event) -> None:
        session: Any = event.session
        session.open()

    def _on_session_remote_close(self, event: Event) -> None:
        session: Any = event.session
        session.close()

    def _on_link_remote_open(self, event: Event) -> None:
        link: Any = event.link
        if link.state & _LOCAL_ACTIVE:
            return
        handler = self._create_handler(link)
        if handler is not None:
            self._handlers[link] = handler

    def _on_link_remote_close(self, event: Event) -> None:
        link: Any = event.link
        handler = self._handlers.pop(link, None)
        if handler is not None:
            handler.on_remote_close()
        if isinstance(handler, ReplyLink):
            self._reply_links.pop((link.session, handler.node), None)
        if link.state & _LOCAL_ACTIVE:
            link.close()
        link.free()  # long-lived connections attach and detach links many times

    def _on_link_flow(self, event: Event) -> None:
        handler = self._handlers.get(event.link)
        if handler is not None:
            handler.on_flow()

    def _on_delivery(self, event: Event) -> None:
        handler = self._handlers.get(event.link)
        delivery: Any = event.delivery
        if handler is not None:
            handler.on_delivery(delivery)

    def _on_transport_error(self, event: Event) -> None:
        condition = self._transport.condition
        description = str(getattr(condition, "description", ""))
        # The SDK's management client detaches its links after ending their session, on
        # every call: proton objects, the client is closing anyway. Not worth a warning.
        level = logging.DEBUG if description.startswith("no such channel") else logging.WARNING
        _LOG.log(
            level,
            "protocol error peer=%s condition=%s description=%s",
            self._peer,
            getattr(condition, "name", None),
            description,
        )

    # ------------------------------------------------------------------ routing

    def reply_link(self, session: Any, node: str) -> ReplyLink | None:
        return self._reply_links.get((session, node))

    def _create_handler(self, link: Any) -> LinkHandler | None:
        client_sends = link.is_receiver
        raw = (link.remote_target if client_sends else link.remote_source).address
        address = parse_address(raw)
        if address is None:
            refuse_link(link, "amqp:not-found", f"The messaging entity '{raw}' could not be found.")
            return None
        if address.kind in ("cbs", "management"):
            if client_sends:
                return RequestLink(self, link, address.kind)
            reply = ReplyLink(self, link, address.kind)
            self._reply_links[(link.session, address.kind)] = reply
            return reply
        if not self.claims.allow(_claim_path(address), self.broker.now_ms() // 1000):
            claim = "Send" if client_sends else "Listen"
            refuse_link(
                link,
                UNAUTHORIZED,
                f"Unauthorized access. '{claim}' claim(s) are required to perform this operation."
                f" Resource: '{raw}'. Put a token for it on $cbs first (the SDKs do).",
            )
            return None
        hub = self.broker.hub(address.hub or "")
        if hub is None:
            refuse_link(link, "amqp:not-found", f"The messaging entity '{raw}' could not be found.")
            return None
        if address.partition is not None and address.partition not in hub.partition_ids:
            refuse_link(link, ARGUMENT_OUT_OF_RANGE, invalid_partition(hub, address.partition))
            return None
        if client_sends:
            if address.kind == "consumer":
                refuse_link(link, "amqp:not-allowed", f"cannot send to a consumer group: '{raw}'")
                return None
            partition = None if address.partition is None else int(address.partition)
            return ProducerLink(self, link, hub, partition)
        if address.kind != "consumer":
            refuse_link(
                link,
                "amqp:not-found",
                f"receive from '<hub>/ConsumerGroups/<group>/Partitions/<id>', not '{raw}'",
            )
            return None
        group = hub.consumer_group(address.consumer_group or "")
        if group is None:
            refuse_link(
                link,
                "amqp:not-found",
                f"The messaging entity '{hub.name}/ConsumerGroups/{address.consumer_group}'"
                " could not be found.",
            )
            return None
        return ConsumerLink(self, link, hub, address)


def _claim_path(address: Address) -> tuple[str, ...]:
    """The entity path a link needs a claim on (case-folded, like claims)."""
    parts: list[str | None] = [address.hub]
    if address.kind == "consumer":
        parts += ["consumergroups", address.consumer_group]
    if address.partition is not None:
        parts += ["partitions", address.partition]
    return tuple((part or "").lower() for part in parts)
