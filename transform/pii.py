"""Personal data in what the transform stores: phone numbers kept, pseudonymized or dropped.

`RECORD_PII` decides what the micro-events' `caller` and `callee` hold: the only fields of a
micro-event, and so of the state and the record, that carry a person's number (envelope
`callerNumber` / `calleeNumber`, Genesys `ani` / `dnis`; for an email conversation Genesys puts
the addresses there, and they are treated the same). It is applied to a parsed batch before
anything of it is applied or stored (`TransformService.apply`), so neither the state nor a
record ever sees the number:

- `keep`: as received (the default: every output is byte-identical to a pipeline without it);
- `hash`: `hmac-sha256:<64 hex digits>`, the keyed HMAC-SHA-256 of the normalized value;
- `drop`: null.

Normalized (`normalize_number`): surrounding whitespace and a `tel:` prefix (any case) removed
and, when what is left is a number (digits with an optional leading `+` and RFC 3966's visual
separators: space, `-`, `.`, `(`, `)`), the separators removed, so `tel:+1 (317) 555-0100` and
`+13175550100` get the same pseudonym. Anything else (a SIP URI, an email address) is hashed as
it is once trimmed. The same value under the same key always gives the same pseudonym, across
conversations, batches and processes, so joins on `caller` / `callee` still work; without the
key nobody can tell which number it stands for, not even by hashing every possible number.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from enum import StrEnum

from schemas.micro_event import MicroEvent

PSEUDONYM_PREFIX = "hmac-sha256:"
_TEL_PREFIX = "tel:"
_SEPARATORS = re.compile(r"[\s\-.()]")
_NUMBER = re.compile(r"\+?[\d\s\-.()]*\d[\d\s\-.()]*")


class RecordPii(StrEnum):
    """What the state and the records hold where a phone number arrived."""

    KEEP = "keep"
    HASH = "hash"
    DROP = "drop"


def normalize_number(value: str) -> str:
    """The form a value is hashed (and matched) in: trimmed, no `tel:`, no separators."""
    text = value.strip()
    if text[: len(_TEL_PREFIX)].lower() == _TEL_PREFIX:
        text = text[len(_TEL_PREFIX) :].strip()
    if _NUMBER.fullmatch(text):
        return _SEPARATORS.sub("", text)
    return text


def is_number(value: str) -> bool:
    """A phone number once normalized: digits with an optional leading `+`."""
    normalized = normalize_number(value)
    digits = normalized.removeprefix("+")
    return digits.isascii() and digits.isdigit()


def pseudonym(key: bytes, value: str) -> str:
    """`hmac-sha256:<hex>` of the normalized value under `key`."""
    message = normalize_number(value).encode("utf-8", "surrogatepass")
    return PSEUDONYM_PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class PiiPolicy:
    """`RECORD_PII` and its key, as plain values (read by `adapters.settings`)."""

    mode: RecordPii = RecordPii.KEEP
    key: bytes = field(default=b"", repr=False)
    """The HMAC key; required by `hash` (never logged: not in the repr)."""

    def __post_init__(self) -> None:
        if self.mode is RecordPii.HASH and not self.key:
            raise ValueError("RECORD_PII=hash needs a key (RECORD_PII_KEY)")

    @property
    def keeps(self) -> bool:
        """Numbers are stored as they arrived: nothing to do."""
        return self.mode is RecordPii.KEEP

    def protect(self, value: str | None) -> str | None:
        """What is stored in place of one `caller` / `callee` value."""
        if value is None or self.mode is RecordPii.KEEP:
            return value
        if self.mode is RecordPii.DROP:
            return None
        return pseudonym(self.key, value)

    def protect_events(self, events: list[MicroEvent]) -> list[MicroEvent]:
        """The micro-events with their numbers replaced as the mode says (the same list: keep)."""
        if self.mode is RecordPii.KEEP:
            return events
        protect = self.protect
        return [
            event
            if event.caller is None and event.callee is None
            else event._replace(caller=protect(event.caller), callee=protect(event.callee))
            for event in events
        ]
