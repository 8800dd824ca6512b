"""What happened: conversations as canonical micro-events, before any wire format.

A `MicroEvent` is one distinct micro-event as the pipeline must see it once parsed: its action
(envelope name or Genesys kind), its times, its order key and its fields with their received
values (enum spellings included). Schema drift that must not change the record (unknown fields,
numbers as strings) is applied later, when payloads are rendered; drift that the record shows
(new names, new media types, enum case) is part of what happened and lives here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from random import Random
from typing import Any, Final, Literal

ENVELOPE: Final = "envelope"
EVENTBRIDGE: Final = "eventbridge"
NOTIFICATION: Final = "notification"
FORMATS: Final = (ENVELOPE, EVENTBRIDGE, NOTIFICATION)
GENESYS_FORMATS: Final = frozenset({EVENTBRIDGE, NOTIFICATION})

Family = Literal["envelope", "genesys"]

MEDIA_TYPES: Final = ("voice", "chat", "email", "video", "task")

WRAPUP_TIMEOUT_CODE: Final = "ININ-WRAP-UP-TIMEOUT"

TOPIC_PREFIX: Final = "v2.detail.events.conversation."
ENVELOPE_TYPE: Final = "v2.detail.events.conversation"


def new_uuid(rng: Random) -> str:
    """A version-4 UUID drawn from `rng`, so that ids are reproducible."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True, slots=True)
class MicroEvent:
    """One distinct micro-event of a conversation, with its identity and order key."""

    conversation_id: str
    fmt: str
    action: str
    time_ms: int
    order_ms: int
    sequence: int | None
    media: str | None
    fields: Mapping[str, Any]
    # derived once: folds and deliveries ask for them over and over
    key: tuple[str | int, ...] = field(init=False, repr=False, compare=False)
    order: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.fmt == ENVELOPE:
            key: tuple[str | int, ...] = (self.conversation_id, self.order_ms, self.sequence or 0)
            kind = ""
        else:
            key = (
                self.action,
                self.conversation_id,
                str(self.fields.get("participantId") or ""),
                str(self.fields.get("sessionId") or ""),
                self.time_ms,
            )
            kind = self.action
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "order", (self.order_ms, self.sequence or 0, kind, key))

    @property
    def is_envelope(self) -> bool:
        return self.fmt == ENVELOPE

    @property
    def kind(self) -> str | None:
        """The Genesys kind (None for envelope micro-events)."""
        return None if self.fmt == ENVELOPE else self.action

    def identity(self) -> tuple[str | int, ...]:
        """The idempotency key of SPEC 3."""
        return self.key

    def sort_key(self) -> tuple[Any, ...]:
        """Total order (docs/record-rules.md): order time, sequence or 0, kind or "", identity."""
        return self.order


@dataclass(frozen=True, slots=True)
class Payload:
    """One payload as the source emits it: an envelope of details, or one Genesys event."""

    conversation_id: str
    fmt: str
    created_ms: int
    events: tuple[MicroEvent, ...]
    payload_id: str
    correlation_id: str
    media: str | None
    conversation_started_ms: int


@dataclass(frozen=True, slots=True)
class Facts:
    """High-level intent of a conversation, kept to cross-check the rule-derived truth."""

    ended: bool
    hold_ms: int = 0
    hold_count: int = 0
    transfers: int = 0
    wrap_up_code: str | None = None
    message_count: int = 0
    agent_ids: frozenset[str] = frozenset()
    never_end_reason: str | None = None
    drift: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Conversation:
    """A generated conversation: its payloads in emission order and what the model meant."""

    conversation_id: str
    index: int
    family: Family
    media: str
    payloads: tuple[Payload, ...]
    facts: Facts

    @property
    def events(self) -> tuple[MicroEvent, ...]:
        return tuple(e for p in self.payloads for e in p.events)


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    name: str
    email: str
    skill_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Queue:
    id: str
    name: str
    skill_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WrapupCode:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Org:
    """The contact center the conversations happen in: people, queues and number pools."""

    org_id: str
    agents: tuple[Agent, ...]
    queues: tuple[Queue, ...]
    skills: Mapping[str, str]
    wrapup_codes: tuple[WrapupCode, ...]
    flow_ids: tuple[str, ...]
    dids: tuple[str, ...]
    customer_numbers: tuple[str, ...]
    customer_names: tuple[str, ...]
    customer_emails: tuple[str, ...]
    subjects: tuple[str, ...]
    mail_domain: str
    acw_timeout_ms: int = 120_000
