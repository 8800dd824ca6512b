"""Link handlers: what happens on each kind of link a client attaches.

    client sends on    handler             does
    $cbs               RequestLink         answers put-token on the session's $cbs reply link
    $management        RequestLink         answers READ on the session's $management reply link
    <hub>[/Partitions/<id>]  ProducerLink  stores transfers, accepts or rejects each
    client receives on
    $cbs, $management  ReplyLink           carries the answers (no reply-to: same session)
    <hub>/ConsumerGroups/<cg>/Partitions/<id>  ConsumerLink  streams the partition under credit

Handlers are driven by `connection.AmqpConnection`, which owns the proton objects.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from typing import Any, Protocol

import cproton  # type: ignore[import-untyped]
from proton import Condition, Delivery, Message, symbol, timestamp

from devstack.eventhubs import messages, positions
from devstack.eventhubs.addresses import Address
from devstack.eventhubs.auth import Claims, SharedAccessKey
from devstack.eventhubs.broker import Broker
from devstack.eventhubs.config import HubConfig
from devstack.eventhubs.errors import AmqpDecodeError, StorageError
from devstack.eventhubs.frames import InboundScanner
from devstack.eventhubs.management import Reply, Timestamp, answer_cbs, answer_management

_LOG = logging.getLogger(__name__)

MAX_MESSAGE_SIZE = 1024 * 1024  # per event or batch, as the Standard tier
MAX_PARTITION_KEY_CHARS = 128  # the documented PartitionKey limit: refuse longer, as Azure would
PRODUCER_CREDIT = 1000
READ_BATCH = 256  # events per disk read while streaming to a consumer
READ_BYTES = 1024 * 1024
EPOCH_PROPERTY = "com.microsoft:epoch"
SELECTOR_FILTER = "apache.org:selector-filter:string"
ARGUMENT_ERROR = "com.microsoft:argument-error"
RUNTIME_METRIC_CAPABILITY = "com.microsoft:enable-receiver-runtime-metric"
_TAG = struct.Struct(">Q")


class LinkContext(Protocol):
    """What handlers need from their connection."""

    broker: Broker
    scanner: InboundScanner
    access_key: SharedAccessKey
    claims: Claims

    def request_flush(self) -> None:
        """Write proton's pending output soon (coalesced)."""

    def reply_link(self, session: Any, node: str) -> ReplyLink | None:
        """The link on `session` that carries answers of `node`."""


def delivery_tag(delivery: Delivery) -> bytes:
    """The raw delivery tag (proton's `Delivery.tag` decodes it as UTF-8, which can fail)."""
    return bytes(cproton.bytes2pybytes(cproton.lib.pn_delivery_tag(delivery._impl)))


def open_link(link: Any) -> None:
    """Attach our end, echoing the client's source and target (the SDK requires both)."""
    link.source.copy(link.remote_source)
    link.target.copy(link.remote_target)
    link.open()


def refuse_link(link: Any, condition: str, description: str) -> None:
    """Attach then detach at once with an error, the way the service refuses a link."""
    _LOG.info("link refused name=%s condition=%s reason=%s", link.name, condition, description)
    open_link(link)
    link.condition = Condition(condition, description)
    link.close()


class LinkHandler:
    """Default reactions; subclasses override what their link needs."""

    def __init__(self, context: LinkContext, link: Any) -> None:
        self.context = context
        self.link = link

    def on_flow(self) -> None:
        """The client changed our credit (sending links)."""

    def on_delivery(self, delivery: Delivery) -> None:
        """A delivery arrived or changed."""

    def on_remote_close(self) -> None:
        """The client detached the link."""


# ---------------------------------------------------------------------------- request/reply


class ReplyLink(LinkHandler):
    """Carries answers to the client; queues them until the client grants credit."""

    def __init__(self, context: LinkContext, link: Any, node: str) -> None:
        super().__init__(context, link)
        self.node = node
        self._pending: deque[bytes] = deque()
        self._tags = 0
        open_link(link)

    def send(self, encoded: bytes) -> None:
        self._pending.append(encoded)
        self.on_flow()

    def on_flow(self) -> None:
        while self._pending and self.link.credit > 0:
            self._tags += 1
            delivery = self.link.delivery(_TAG.pack(self._tags))
            self.link.send(self._pending.popleft())
            self.link.advance()
            delivery.settle()
        self.context.request_flush()


def _amqp_value(value: Any) -> Any:
    if isinstance(value, Timestamp):
        return timestamp(int(value))
    if isinstance(value, list):
        return [_amqp_value(v) for v in value]
    return value


def encode_reply(request: Message, reply: Reply) -> bytes:
    # The SDK looks the description up as `statusDescription` (it passes the service's
    # `status-description` name under a keyword the management link ignores): send both.
    properties: dict[str, Any] = {
        "status-code": reply.status_code,
        "status-description": reply.description,
        "statusDescription": reply.description,
    }
    if reply.condition is not None:
        properties["error-condition"] = symbol(reply.condition)
    message = Message(correlation_id=request.id, properties=properties)
    if reply.body is not None:
        message.body = {k: _amqp_value(v) for k, v in reply.body.items()}
    return bytes(message.encode())


class RequestLink(LinkHandler):
    """Receives `$cbs` or `$management` requests and answers on the same session's reply link."""

    def __init__(self, context: LinkContext, link: Any, node: str) -> None:
        super().__init__(context, link)
        self.node = node
        open_link(link)
        link.flow(100)

    def on_delivery(self, delivery: Delivery) -> None:
        if delivery.partial:
            return
        data = self.link.recv(delivery.pending)
        self.link.advance()
        request = Message()
        try:
            request.decode(data)
        except Exception as e:  # proton raises its own error types for bad bytes
            _LOG.warning("undecodable request node=%s error=%s", self.node, e)
            self._settle(delivery, Delivery.REJECTED)
            return
        properties: dict[str, Any] = dict(request.properties or {})
        context = self.context
        now_s = context.broker.now_ms() // 1000
        if self.node == "cbs":
            reply = answer_cbs(properties, request.body, context.access_key, context.claims, now_s)
        else:
            reply = answer_management(
                context.broker, properties, context.access_key, context.claims, now_s
            )
        if reply.status_code >= 300:
            _LOG.info(
                "request failed node=%s status=%d reason=%s",
                self.node,
                reply.status_code,
                reply.description,
            )
        self._settle(delivery, Delivery.ACCEPTED)
        reply_link = self.context.reply_link(self.link.session, self.node)
        if reply_link is None:
            _LOG.warning("no reply link node=%s: answer dropped", self.node)
            return
        reply_link.send(encode_reply(request, reply))
        if self.link.credit < 50:
            self.link.flow(100 - self.link.credit)

    def _settle(self, delivery: Delivery, outcome: Any) -> None:
        delivery.update(outcome)
        delivery.settle()


# ---------------------------------------------------------------------------- producers


class ProducerLink(LinkHandler):
    """Stores what a client sends to a hub or to one of its partitions."""

    def __init__(
        self, context: LinkContext, link: Any, hub: HubConfig, partition: int | None
    ) -> None:
        super().__init__(context, link)
        self.hub = hub
        self.partition = partition
        self._oversized: dict[bytes, int] = {}  # tag -> bytes discarded so far
        link.max_message_size = MAX_MESSAGE_SIZE
        open_link(link)
        link.flow(PRODUCER_CREDIT)

    def on_delivery(self, delivery: Delivery) -> None:
        if not delivery.readable:
            return
        tag = delivery_tag(delivery)
        if delivery.aborted:  # the client gave up on a multi-frame transfer
            self._oversized.pop(tag, None)
            self.context.scanner.message_format(self.link.name, tag)
            delivery.settle()
            return
        if delivery.partial:
            # Read nothing until complete, unless it is already too big: then drop the bytes.
            if tag in self._oversized or delivery.pending > MAX_MESSAGE_SIZE:
                self._oversized[tag] = self._oversized.get(tag, 0) + len(
                    self.link.recv(delivery.pending) or b""
                )
            return
        data = bytes(self.link.recv(delivery.pending) or b"")
        self.link.advance()
        size = self._oversized.pop(tag, 0) + len(data)
        message_format = self.context.scanner.message_format(self.link.name, tag)
        if size > MAX_MESSAGE_SIZE:
            self._reject(
                delivery,
                "amqp:link:message-size-exceeded",
                f"The received message (delivery-id:{tag.hex()}, size:{size} bytes) exceeds the"
                f" limit ({MAX_MESSAGE_SIZE} bytes) currently allowed on the link.",
            )
        else:
            self._store(delivery, data, message_format)
        if self.link.credit < PRODUCER_CREDIT // 2:
            self.link.flow(PRODUCER_CREDIT - self.link.credit)

    def _store(self, delivery: Delivery, data: bytes, message_format: int) -> None:
        try:
            transfer = messages.parse_transfer(data, message_format)
        except AmqpDecodeError as e:
            self._reject(delivery, "amqp:decode-error", f"the message is not valid AMQP: {e}")
            return
        if not transfer.events:
            self._reject(delivery, "amqp:invalid-field", "the batch holds no events")
            return
        keys = {transfer.partition_key, *(event.partition_key for event in transfer.events)}
        too_long = [key for key in keys if key is not None and len(key) > MAX_PARTITION_KEY_CHARS]
        if too_long:
            self._reject(
                delivery,
                "amqp:invalid-field",
                f"the partition key is {len(too_long[0])} characters; at most "
                f"{MAX_PARTITION_KEY_CHARS} are allowed",
            )
            return
        try:
            self.context.broker.publish(self.hub, self.partition, transfer)
        except StorageError as e:
            _LOG.error("store failed hub=%s error=%s", self.hub.name, e)
            self._reject(delivery, "amqp:internal-error", str(e))
            return
        delivery.update(Delivery.ACCEPTED)
        delivery.settle()

    def _reject(self, delivery: Delivery, condition: str, description: str) -> None:
        _LOG.info(
            "transfer rejected hub=%s link=%s condition=%s reason=%s",
            self.hub.name,
            self.link.name,
            condition,
            description,
        )
        delivery.local.condition = Condition(condition, description)
        delivery.update(Delivery.REJECTED)
        delivery.settle()


# ---------------------------------------------------------------------------- consumers


def _selector(terminus: Any) -> str | None:
    """The selector-filter expression of a source, if any."""
    filters: Any = terminus.filter
    if filters is None:
        return None
    filters.rewind()
    if not filters.next():
        return None
    value = filters.get_object()
    if not isinstance(value, dict):
        return None
    for key, described in value.items():
        if str(key) == SELECTOR_FILTER:
            expression = getattr(described, "value", described)
            return expression.decode() if isinstance(expression, bytes) else str(expression)
    return None


class ConsumerLink(LinkHandler):
    """Streams one partition to a client, as far as its credit goes."""

    def __init__(self, context: LinkContext, link: Any, hub: HubConfig, address: Address) -> None:
        super().__init__(context, link)
        self.hub = hub
        self.consumer_group = address.consumer_group or ""
        self.partition = int(address.partition or 0)
        self.owner_level: int | None = None
        self.attached = False
        self._next_sequence = 0
        self._tags = 0
        self._metrics = RUNTIME_METRIC_CAPABILITY in context.scanner.desired_capabilities(link.name)
        # Settled on send: Event Hubs does not redeliver, so client dispositions add nothing.
        link.snd_settle_mode = link.SND_SETTLED
        self._attach()

    def _attach(self) -> None:
        properties: dict[Any, Any] = self.link.remote_properties or {}
        epoch = next((v for k, v in properties.items() if str(k) == EPOCH_PROPERTY), None)
        self.owner_level = None if epoch is None else int(epoch)
        log = self.context.broker.log(self.hub, self.partition)
        try:
            expression = _selector(self.link.remote_source)
            position = positions.parse_selector(expression) if expression else positions.LATEST
        except ValueError as e:
            refuse_link(self.link, "amqp:invalid-field", str(e))
            return
        past_the_end = positions.beyond_end(position, log.info())
        if past_the_end is not None:
            refuse_link(self.link, ARGUMENT_ERROR, past_the_end)
            return
        refusal = self.context.broker.attach_receiver(
            self.hub, self.consumer_group, self.partition, self
        )
        if refusal is not None:
            refuse_link(self.link, refusal.condition, refusal.description)
            return
        self._next_sequence = positions.resolve(position, log)
        self.attached = True
        open_link(self.link)
        _LOG.info(
            "receiver attached hub=%s consumer_group=%s partition=%d owner_level=%s start=%s",
            self.hub.name,
            self.consumer_group,
            self.partition,
            self.owner_level,
            self._next_sequence,
        )

    def on_flow(self) -> None:
        self._pump()

    def on_events_available(self) -> None:
        self._pump()

    def on_remote_close(self) -> None:
        self._detach()

    def disconnect(self, condition: str, description: str) -> None:
        _LOG.info(
            "receiver disconnected hub=%s partition=%d condition=%s",
            self.hub.name,
            self.partition,
            condition,
        )
        self.attached = False
        self.link.condition = Condition(condition, description)
        self.link.close()
        self.context.request_flush()

    def _detach(self) -> None:
        if self.attached:
            self.attached = False
            self.context.broker.detach_receiver(self.hub, self.consumer_group, self.partition, self)

    def _pump(self) -> None:
        if not self.attached:
            return
        log = self.context.broker.log(self.hub, self.partition)
        # proton's Python wrappers cost several microseconds per delivery; this loop runs for
        # every event delivered, so it calls the C functions they wrap directly.
        impl = self.link._impl
        sent = 0
        while (credit := cproton.pn_link_credit(impl)) > 0:
            batch = log.read(self._next_sequence, min(credit, READ_BATCH), READ_BYTES)
            if not batch:
                # Caught up: a client that asked to drain gets its unused credit back.
                if self.link.drain_mode:
                    self.link.drained()
                    self.context.request_flush()
                break
            metrics = self._runtime_metrics() if self._metrics else None
            for event in batch:
                self._tags += 1
                delivery = cproton.pn_delivery(impl, _TAG.pack(self._tags))
                if metrics is None:
                    cproton.pn_link_send(impl, event.payload)
                else:
                    cut = event.header_length
                    payload = event.payload
                    cproton.pn_link_send(impl, b"".join((payload[:cut], metrics, payload[cut:])))
                cproton.pn_link_advance(impl)
                cproton.pn_delivery_settle(delivery)
            sent += len(batch)
            self._next_sequence = batch[-1].sequence_number + 1
        if sent:
            self.context.request_flush()

    def _runtime_metrics(self) -> bytes:
        broker = self.context.broker
        info = broker.partition_info(self.hub, self.partition)
        return messages.runtime_metrics(
            info.last_sequence_number, info.last_offset, info.last_enqueued_ms, broker.now_ms()
        )
