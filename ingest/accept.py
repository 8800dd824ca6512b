"""The acceptance core: (raw body, headers) → a plan of Event Hubs events and dead letters.

Pure: no Azure, no clock, no environment. The time a request was received and its message id
come in as values. Parsing and validation are the transform's own (`transform.normalize`:
`decode_delivery`, `normalize_payload`), so a payload accepted here is one the consumer can
apply, one rejected here would have been dead-lettered there too, and for the same reason in
the same words.

A payload with at least one good micro-event is accepted whole, even if some of its envelope
details are bad: the transform applies the good ones and dead-letters the payload once (SPEC 7),
so ingest must not dead-letter it a second time. A payload with nothing usable is dead-lettered
here and never sent. A Notifications API heartbeat (`channel.metadata`, forwarded by a relay)
is neither: it is counted, never sent, never dead-lettered.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ingest.errors import BodyTooLarge, SignatureMismatch, UnsupportedContentType
from schemas.record import DeadLetter
from schemas.timestamps import iso_ms
from schemas.wire import conversation_id_of, detect_format, is_heartbeat
from transform.deadletters import dead_letter_id, make_dead_letter
from transform.jsontext import dump_json
from transform.normalize import Rejection, RejectReason, decode_delivery, normalize_payload

SIGNATURE_HEADER = "x-signature-256"
SIGNATURE_PREFIX = "sha256="
IDEMPOTENCY_HEADER = "x-idempotency-key"
EVENT_TYPE_HEADERS = ("x-event-type", "x-genesys-event-type", "x-genesys-topic", "ce-type")
"""No Genesys product sends a standard event-type header; these are what relays use, first wins
(`ce-type` is the CloudEvents binary-mode header, e.g. from Event Grid or Knative relays)."""

# Application properties of every event sent to Event Hubs (SPEC 6). All values are strings.
PROPERTY_RECEIVED_AT = "received_at"
PROPERTY_IDEMPOTENCY_KEY = "idempotency_key"
PROPERTY_EVENT_TYPE = "event_type"
PROPERTY_FORMAT = "format"
PROPERTY_MESSAGE_ID = "message_id"
PROPERTY_PAYLOAD_COUNT = "payload_count"

MAX_HEADER_VALUE_CHARS = 256  # header values copied into properties and dead letters
MAX_PARTITION_KEY_CHARS = 128
"""Event Hubs partition keys hold at most 128 characters (the documented `PartitionKey` limit)."""
HASHED_KEY_PREFIX = "sha256:"
_DEAD_LETTER_HEADERS = (
    "content-type",
    "content-length",
    "user-agent",
    IDEMPOTENCY_HEADER,
    *EVENT_TYPE_HEADERS,
    "x-request-id",
    "x-correlation-id",
    "traceparent",
)
"""Headers copied into dead letters: an allowlist, so keys and signatures never are."""


@dataclass(frozen=True, slots=True)
class AcceptanceLimits:
    """Bounds on one request, so memory and CPU per request stay bounded.

    `max_event_bytes` is the body of one Event Hubs event: the 1 MiB event limit minus room for
    application properties and AMQP framing. A single payload larger than it cannot be carried.
    """

    max_body_bytes: int = 1024 * 1024
    max_payloads: int = 1000
    """Elements of a top-level JSON array (INGEST_MAX_PAYLOADS)."""
    max_micro_events: int = 10_000
    """Envelope details plus Genesys payloads in one body (INGEST_MAX_MICRO_EVENTS)."""
    max_event_bytes: int = 1024 * 1024 - 16 * 1024
    """One event body (INGEST_MAX_EVENT_BYTES)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One webhook delivery as the core sees it."""

    body: bytes
    headers: Mapping[str, str]
    """Header names in lower case (see `lower_headers`)."""
    received_at_ms: int
    message_id: str


def partition_key_for(conversation_id: str) -> str:
    """The Event Hubs partition key of a conversation: its id, or the id's digest when longer
    than a key may be. Same id, same key, same partition, so per-conversation order holds; the
    transform reads the id from the payload, never from the key."""
    if len(conversation_id) <= MAX_PARTITION_KEY_CHARS:
        return conversation_id
    return HASHED_KEY_PREFIX + hashlib.sha256(conversation_id.encode()).hexdigest()


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names are case-insensitive: key them in lower case once, at the edge."""
    return {name.lower(): value for name, value in headers.items()}


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    """One Event Hubs event: payloads of one conversation, as one payload or a JSON array."""

    partition_key: str
    """The conversation id, or its digest when it is too long for a key (`partition_key_for`)."""
    body: bytes
    properties: Mapping[str, str]
    payload_count: int


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with an acceptable request: send `events`, store `dead_letters` first."""

    message_id: str
    events: tuple[OutboundEvent, ...]
    dead_letters: tuple[DeadLetter, ...]
    payloads: int
    accepted_payloads: int
    partial_payloads: int
    """Accepted payloads with some bad details (the transform dead-letters those)."""
    micro_events: int
    conversations: int
    heartbeats: int = 0
    """Notifications API heartbeats: answered, counted, neither sent nor dead-lettered."""

    @property
    def rejected_payloads(self) -> int:
        """Payloads (or whole bodies) that became dead letters here."""
        return len(self.dead_letters)

    @property
    def nothing_accepted(self) -> bool:
        """Nothing to send and something bad (or no JSON at all): the answer is 400."""
        return not self.events and bool(self.dead_letters)

    @property
    def only_heartbeats(self) -> bool:
        """Nothing to send and nothing wrong: heartbeats only, the answer is 200."""
        return not self.events and not self.dead_letters


def check_request(request: Request, limits: AcceptanceLimits, secret: bytes | None) -> None:
    """Refuse the request as a whole (413, 401, 415) before any parsing; nothing is stored."""
    size = len(request.body)
    if size > limits.max_body_bytes:
        raise BodyTooLarge(
            f"the body is {size} bytes; the limit is {limits.max_body_bytes} "
            "(INGEST_MAX_BODY_BYTES): split the payloads over several requests"
        )
    if secret is not None:
        verify_signature(request.body, request.headers.get(SIGNATURE_HEADER), secret)
    check_content_type(request.headers.get("content-type"))


def verify_signature(body: bytes, header: str | None, secret: bytes) -> None:
    """Check `X-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` in constant time."""
    if header is None or not header.strip():
        raise SignatureMismatch(
            "X-Signature-256 is missing: send 'sha256=<hex HMAC-SHA256 of the raw body>' "
            "computed with the shared WEBHOOK_SECRET"
        )
    value = header.strip()
    if value[: len(SIGNATURE_PREFIX)].lower() != SIGNATURE_PREFIX:
        raise SignatureMismatch(
            f"X-Signature-256 must start with 'sha256=', got {value[:16]!r}…: "
            "send 'sha256=<hex digest>'"
        )
    try:
        given = bytes.fromhex(value[len(SIGNATURE_PREFIX) :])
    except ValueError as e:
        raise SignatureMismatch(
            "X-Signature-256 is not hex after 'sha256=': send the 64 hex digits of the digest"
        ) from e
    expected = hmac.new(secret, body, hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        raise SignatureMismatch(
            "X-Signature-256 does not match the body: sign the exact bytes sent, with the "
            "shared WEBHOOK_SECRET, after any re-encoding by a relay"
        )


def sign(body: bytes, secret: bytes) -> str:
    """The `X-Signature-256` value a sender puts on `body` (for senders and tests)."""
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def check_content_type(header: str | None) -> None:
    """Accept `application/json`, any case, with parameters; a charset must be UTF-8."""
    if header is None or not header.strip():
        raise UnsupportedContentType(
            "Content-Type is missing: send the body as 'application/json' (UTF-8)"
        )
    media_type, *params = header.split(";")
    if media_type.strip().lower() != "application/json":
        raise UnsupportedContentType(
            f"Content-Type {header[:80]!r} is not accepted: send 'application/json' (UTF-8)"
        )
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset":
            continue
        charset = value.strip().strip('"').lower()
        if charset not in ("utf-8", "utf8"):
            raise UnsupportedContentType(
                f"charset {charset[:40]!r} is not accepted: JSON must be sent as UTF-8"
            )


def plan(request: Request, limits: AcceptanceLimits) -> Plan:
    """Recognise, validate and split the body; refuses oversize arrays with `BodyTooLarge`."""
    body = request.body
    digest = hashlib.sha256(body).hexdigest()
    letters = _Letters(request, digest)
    decoded = decode_delivery(body)
    text = decoded.text
    items = decoded.payloads
    if len(items) > limits.max_payloads:
        raise BodyTooLarge(
            f"the body holds {len(items)} payloads; the limit is {limits.max_payloads} "
            "(INGEST_MAX_PAYLOADS): split the array over several requests"
        )
    if decoded.rejection is not None:
        letters.add(decoded.rejection)
        return letters.plan_without_events(payloads=0)

    weight = sum(_micro_event_weight(payload) for _, payload in items)
    if weight > limits.max_micro_events:
        raise BodyTooLarge(
            f"the body holds {weight} micro-events; the limit is {limits.max_micro_events} "
            "(INGEST_MAX_MICRO_EVENTS): split the payloads over several requests"
        )

    groups: dict[str, list[tuple[bytes, str]]] = {}
    accepted = partial = micro_events = heartbeats = 0
    for index, payload in items:
        if is_heartbeat(payload):
            heartbeats += 1
            continue
        events, rejection = normalize_payload(payload, index)
        micro_events += len(events)
        if rejection is not None and not events:
            if index is None:  # the whole body was this payload: keep its exact bytes
                rejection = Rejection(rejection.reason, rejection.error, body, None)
            letters.add(rejection)
            continue
        conversation_id = events[0].conversation_id if events else conversation_id_of(payload)
        if conversation_id is None:  # unreachable for a validated payload, kept as a guard
            error = "the payload names no conversation id"
            reason = RejectReason.MISSING_CONVERSATION_ID
            letters.add(Rejection(reason, error, dump_json(payload), index))
            continue
        accepted += 1
        partial += rejection is not None
        raw = text if index is None else dump_json(payload)
        groups.setdefault(conversation_id, []).append((raw, detect_format(payload) or "unknown"))

    events_out: list[OutboundEvent] = []
    base = _base_properties(request)
    for conversation_id, payloads in groups.items():
        events_out.extend(_pack(conversation_id, payloads, base, limits.max_event_bytes))
    return Plan(
        message_id=request.message_id,
        events=tuple(events_out),
        dead_letters=tuple(letters.letters),
        payloads=len(items),
        accepted_payloads=accepted,
        partial_payloads=partial,
        micro_events=micro_events,
        conversations=len(groups),
        heartbeats=heartbeats,
    )


def _micro_event_weight(payload: object) -> int:
    """A cheap upper bound of the micro-events a payload yields, counted before validating."""
    if isinstance(payload, dict):
        data = payload.get("data")
        if isinstance(data, dict) and isinstance(data.get("details"), list):
            return max(1, len(data["details"]))
    return 1


def _base_properties(request: Request) -> dict[str, str]:
    properties = {
        PROPERTY_RECEIVED_AT: iso_ms(request.received_at_ms),
        PROPERTY_MESSAGE_ID: request.message_id,
    }
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key:
        properties[PROPERTY_IDEMPOTENCY_KEY] = key[:MAX_HEADER_VALUE_CHARS]
    event_type = event_type_of(request.headers)
    if event_type:
        properties[PROPERTY_EVENT_TYPE] = event_type
    return properties


def event_type_of(headers: Mapping[str, str]) -> str | None:
    """The first event-type header a relay set, truncated."""
    for name in EVENT_TYPE_HEADERS:
        value = headers.get(name)
        if value and value.strip():
            return value.strip()[:MAX_HEADER_VALUE_CHARS]
    return None


def _pack(
    conversation_id: str,
    payloads: list[tuple[bytes, str]],
    base: Mapping[str, str],
    max_event_bytes: int,
) -> Iterator[OutboundEvent]:
    """One event per conversation, or several when its payloads pass the event size."""
    for raw, _ in payloads:
        if len(raw) > max_event_bytes:
            raise BodyTooLarge(
                f"a payload of conversation {conversation_id[:80]!r} is {len(raw)} bytes; one "
                f"Event Hubs event carries at most {max_event_bytes} (INGEST_MAX_EVENT_BYTES): "
                "send smaller payloads"
            )
    chunk: list[tuple[bytes, str]] = []
    size = 2  # the array brackets
    for raw, fmt in payloads:
        if chunk and size + len(raw) + 1 > max_event_bytes:
            yield _event(conversation_id, chunk, base)
            chunk, size = [], 2
        chunk.append((raw, fmt))
        size += len(raw) + 1
    if chunk:
        yield _event(conversation_id, chunk, base)


def _event(
    conversation_id: str, chunk: list[tuple[bytes, str]], base: Mapping[str, str]
) -> OutboundEvent:
    body = chunk[0][0] if len(chunk) == 1 else b"[" + b",".join(raw for raw, _ in chunk) + b"]"
    properties = dict(base)
    properties[PROPERTY_FORMAT] = ",".join(sorted({fmt for _, fmt in chunk}))
    properties[PROPERTY_PAYLOAD_COUNT] = str(len(chunk))
    return OutboundEvent(partition_key_for(conversation_id), body, properties, len(chunk))


class _Letters:
    """Dead letters of one request; ids derive from the body, so a retried request rewrites."""

    def __init__(self, request: Request, digest: str) -> None:
        self._request = request
        self._digest = digest
        self.letters: list[DeadLetter] = []
        headers = {
            name: request.headers[name][:MAX_HEADER_VALUE_CHARS]
            for name in _DEAD_LETTER_HEADERS
            if name in request.headers
        }
        self._source: dict[str, Any] = {
            "headers": headers,
            "body_sha256": digest,
            "message_id": request.message_id,
        }

    def add(self, rejection: Rejection) -> None:
        letter_id = dead_letter_id("ingest", {"body_sha256": self._digest}, rejection.payload_index)
        self.letters.append(
            make_dead_letter(
                rejection,
                stage="ingest",
                source=self._source,
                received_at_ms=self._request.received_at_ms,
                letter_id=letter_id,
            )
        )

    def plan_without_events(self, payloads: int) -> Plan:
        return Plan(
            message_id=self._request.message_id,
            events=(),
            dead_letters=tuple(self.letters),
            payloads=payloads,
            accepted_payloads=0,
            partial_payloads=0,
            micro_events=0,
            conversations=0,
        )
