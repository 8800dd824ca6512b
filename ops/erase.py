"""Erasure (`python -m ops erase`): everything stored of some conversations or phone numbers.

A data-subject request names a person by phone number, or a conversation by its id. What holds
them, and how each is found:

- records (container `conversations`, one blob per conversation: a new revision replaces the
  blob, so there is no older one to find): the conversation's own blob; for a number, every
  record whose `caller` / `callee` is that number as it arrived, normalized
  (`transform.pii.normalize_number`), or pseudonymized under `RECORD_PII_KEY`;
- state (the state table's row and due-index rows, and blobs in `state-spill`): the
  conversation's; for a number, every stored state one of whose micro-events carries it;
- dead letters (container `deadletter`, raw payloads as they arrived): every one that names the
  conversation, and for a number every one that holds it anywhere in its bytes, however its
  digits are spaced or prefixed (`tel:`, spaces, dashes, dots, brackets).

A conversation found through the number is that person's conversation: it is erased whole
(record, state, every dead letter naming it), and so is every conversation a dead letter
holding the number names. Finding is a dry run; `apply` deletes, then looks again at what it
deleted and reports what is left (a consumer may write a conversation again while events for
it still arrive). Dead letters name conversations only inside their bytes, so every search reads
every dead letter; a number search also reads every record and every stored state: its cost
grows with the records kept.

The phone numbers searched for are never printed or logged; conversation ids are.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from adapters.blob_deadletters import read_letter
from adapters.deadletter_store import DeadLetterStore
from adapters.record_reader import RecordReader
from adapters.sharded_state import Footprint
from adapters.state_reader import StateEraser
from ops.errors import UsageError
from schemas.wire import TOPIC_PREFIX
from transform.deadletters import raw_bytes
from transform.errors import ConcurrencyConflict
from transform.pii import is_number, normalize_number, pseudonym
from transform.vocabulary import GENESYS_KINDS_LONGEST_FIRST

MIN_DIGITS = 6
"""Shorter numbers would match too much that is not a phone number."""
_SEPARATORS = r"[\s\-.()]*"


@dataclass(frozen=True, slots=True)
class NumberQuery:
    """One phone number, in every form the pipeline may have stored it."""

    normalized: str
    pseudonym: str | None
    """Its `RECORD_PII=hash` form under the configured key (None: no key configured)."""
    pattern: re.Pattern[str] = field(repr=False)
    """Finds it in raw text, whatever separators or prefix surround its digits."""

    @classmethod
    def of(cls, number: str, key: bytes | None) -> NumberQuery:
        """Check and prepare a number given on the command line."""
        if not is_number(number):
            raise UsageError(
                "--phone takes a phone number: digits, with an optional leading + (spaces, "
                "dashes, dots, brackets and a tel: prefix are ignored)"
            )
        normalized = normalize_number(number)
        digits = normalized.removeprefix("+")
        if len(digits) < MIN_DIGITS:
            raise UsageError(f"--phone takes a whole phone number (at least {MIN_DIGITS} digits)")
        # Not preceded or followed by another digit; with a leading +, the + must be there too.
        lead = r"\+" + _SEPARATORS if normalized.startswith("+") else r"(?<![+\d])"
        pattern = re.compile(lead + _SEPARATORS.join(digits) + r"(?!\d)")
        return cls(normalized, pseudonym(key, number) if key else None, pattern)

    def is_value(self, value: object) -> bool:
        """Whether a stored `caller` / `callee` value is this number (raw or pseudonymized)."""
        if not isinstance(value, str) or not value:
            return False
        return value == self.pseudonym or normalize_number(value) == self.normalized

    def in_text(self, text: str, strings: Sequence[str]) -> bool:
        """Whether raw text (or one of its decoded JSON strings) holds this number."""
        return self.pattern.search(text) is not None or any(
            self.pattern.search(s) is not None for s in strings
        )


@dataclass(frozen=True, slots=True)
class Letter:
    """A dead-letter blob's raw payload, decoded as far as it goes."""

    text: str
    document: Any
    """The payload as JSON, or None when it is not JSON."""
    strings: tuple[str, ...]
    """Every string in the JSON document (keys and values)."""
    names: frozenset[str]
    """The conversation ids the payload names where ids belong."""

    @classmethod
    def of(cls, blob: bytes) -> Letter:
        """From a dead-letter blob (or, for a blob that is not one, its bytes as they are)."""
        try:
            raw = raw_bytes(read_letter(blob))
        except (ValidationError, ValueError):
            raw = blob
        text = raw.decode("utf-8", "replace")
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return cls(text, None, (), frozenset())
        strings = tuple(_strings(document))
        return cls(text, document, strings, frozenset(_named_ids(document)))

    def names_any(self, conversation_ids: Collection[str]) -> bool:
        """Whether the payload names one of these conversations."""
        if self.document is not None:
            return not self.names.isdisjoint(conversation_ids) or any(
                s in conversation_ids for s in self.strings
            )
        # Not JSON: look for the id as a JSON string, or in a topic, in the text.
        return any(
            orjson.dumps(cid).decode() in self.text or f"{TOPIC_PREFIX}{cid}." in self.text
            for cid in conversation_ids
        )


def _strings(document: Any) -> Iterator[str]:
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for key, item in value.items():
                yield key
                stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)


def _named_ids(document: Any) -> Iterator[str]:
    """Conversation ids where the accepted formats put them: `conversationId` anywhere, an
    envelope's `data.id`, a detail topic."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
            continue
        if not isinstance(value, dict):
            continue
        stack.extend(value.values())
        conversation_id = value.get("conversationId")
        if isinstance(conversation_id, str) and conversation_id:
            yield conversation_id
        data = value.get("data")
        if isinstance(data, dict) and isinstance(data.get("id"), str) and data["id"]:
            yield data["id"]
        topic = value.get("topicName")
        if isinstance(topic, str) and topic.startswith(TOPIC_PREFIX):
            yield _topic_id(topic[len(TOPIC_PREFIX) :])


def _topic_id(rest: str) -> str:
    lowered = rest.lower()
    for kind in GENESYS_KINDS_LONGEST_FIRST:
        if lowered.endswith("." + kind):
            return rest[: -len(kind) - 1]
    return rest.rsplit(".", 1)[0]


# ---------------------------------------------------------------------- finding
@dataclass(slots=True)
class Found:
    """What is stored of the conversations and numbers asked for."""

    conversations: list[str] = field(default_factory=list)
    """Every conversation to erase: named, or found through a number."""
    records: list[str] = field(default_factory=list)
    """Conversations with a stored record."""
    states: dict[str, Footprint] = field(default_factory=dict)
    """Conversations with anything in the state store."""
    dead_letters: list[str] = field(default_factory=list)
    """Dead-letter blob names."""
    unreadable: list[str] = field(default_factory=list)
    """What could not be read, so could not be searched (say why; look by hand)."""

    def counts(self) -> dict[str, int]:
        """Records, state rows, index rows, spill blobs, dead letters."""
        return tally(self.records, self.states.values(), self.dead_letters)


def tally(
    records: Collection[str], states: Collection[Footprint], letters: Collection[str]
) -> dict[str, int]:
    """The counts an erasure reports."""
    return {
        "records": len(records),
        "state_rows": sum(fp.state_rows for fp in states),
        "index_rows": sum(len(fp.index_rows) for fp in states),
        "spill_blobs": sum(len(fp.spill_blobs) for fp in states),
        "dead_letters": len(letters),
    }


def find(
    records: RecordReader,
    states: StateEraser,
    letters: DeadLetterStore,
    conversation_ids: Sequence[str],
    numbers: Sequence[NumberQuery],
) -> Found:
    """Everything stored of these conversations and numbers (reads only)."""
    if not conversation_ids and not numbers:
        raise UsageError("name what to erase: --conversation ID and/or --phone NUMBER")
    found = Found()
    targets = {cid for cid in conversation_ids if cid}
    if len(targets) != len(conversation_ids):
        raise UsageError("--conversation takes a conversation id, exactly; got an empty one")
    if numbers:
        targets |= _records_with(records, numbers, found.unreadable)
        targets |= _states_with(states, numbers, found.unreadable)
    found.dead_letters = _letters_of(letters, targets, numbers, found.unreadable)
    found.conversations = sorted(targets)
    found.records = [cid for cid in found.conversations if records.stored(cid)]
    footprints = states.footprints(found.conversations)
    found.states = {cid: fp for cid, fp in sorted(footprints.items()) if not fp.empty}
    return found


def _records_with(
    records: RecordReader, numbers: Sequence[NumberQuery], unreadable: list[str]
) -> set[str]:
    ids: set[str] = set()
    for name, data in records.contents():
        if isinstance(data, str):
            unreadable.append(f"record {name}: {data}")
            continue
        try:
            record = orjson.loads(data)
        except orjson.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("conversation_id"), str):
            unreadable.append(f"record {name}: not a record")
            continue
        conversation_id = record["conversation_id"]
        if any(
            q.is_value(record.get("caller")) or q.is_value(record.get("callee")) for q in numbers
        ):
            ids.add(conversation_id)
    return ids


def _states_with(
    states: StateEraser, numbers: Sequence[NumberQuery], unreadable: list[str]
) -> set[str]:
    ids: set[str] = set()
    for conversation_id, state in states.scan():
        if isinstance(state, str):
            unreadable.append(f"state {conversation_id}: {state}")
            continue
        if any(
            q.is_value(event.caller) or q.is_value(event.callee)
            for event in state.events.values()
            for q in numbers
        ):
            ids.add(conversation_id)
    return ids


def _letters_of(
    letters: DeadLetterStore,
    targets: set[str],
    numbers: Sequence[NumberQuery],
    unreadable: list[str],
) -> list[str]:
    """Dead letters holding a number or naming a target; conversations named by a letter that
    holds a number join `targets` (and the container is read again for their letters)."""
    matched: set[str] = set()
    first = True
    while True:
        joined: set[str] = set()
        for name, blob in letters.every_blob():
            if name in matched:
                continue
            if isinstance(blob, str):
                if first:
                    unreadable.append(f"dead letter {name}: {blob}")
                continue
            letter = Letter.of(blob)
            if numbers and any(q.in_text(letter.text, letter.strings) for q in numbers):
                matched.add(name)
                joined |= letter.names - targets
            elif targets and letter.names_any(targets):
                matched.add(name)
        first = False
        if not joined:
            return sorted(matched)
        targets |= joined


# ---------------------------------------------------------------------- deleting
@dataclass(frozen=True, slots=True)
class Erased:
    """What `apply` deleted, and what is still there when it looked again."""

    deleted: dict[str, int]
    remaining: dict[str, int]


def apply(
    found: Found, records: RecordReader, states: StateEraser, letters: DeadLetterStore
) -> Erased:
    """Delete everything `find` found, then look again at each of them."""
    deleted_records = [cid for cid in found.records if records.delete(cid)]
    erased: list[Footprint] = []
    for footprint in found.states.values():
        try:
            erased.append(states.erase(footprint))
        except ConcurrencyConflict:
            continue  # still being written to: it shows below as remaining
    deleted_letters = [name for name in found.dead_letters if letters.delete(name)]
    deleted = tally(deleted_records, erased, deleted_letters)
    # Whatever a consumer wrote meanwhile (new events of the conversation) shows here.
    left_records = [cid for cid in found.conversations if records.stored(cid)]
    left_states = [fp for fp in states.footprints(found.conversations).values() if not fp.empty]
    left_letters = [name for name in found.dead_letters if letters.exists(name)]
    return Erased(deleted, tally(left_records, left_states, left_letters))
