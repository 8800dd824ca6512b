"""`ops erase` on the in-memory twins, filled by the real batch service: what it finds for a
conversation or a phone number in any form it was stored in, that it deletes exactly that, and
that every other conversation stays byte for byte. The same against Azurite and the local host:
tests/ops/test_erase_stack.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

import adapters.state_plan
from adapters.blob_deadletters import blob_body, blob_metadata, blob_name
from adapters.blob_records import record_blob_name
from adapters.containers import InMemoryContainer
from adapters.deadletter_store import DeadLetterStore
from adapters.memory import InMemoryStateStore, ManualClock
from adapters.record_reader import RecordReader
from adapters.state_reader import ShardedStateReader
from ops import erase
from ops.cli import app
from ops.errors import UsageError
from schemas.record import DeadLetter
from schemas.timestamps import ms_to_datetime
from tests.unit.builders import Step, envelope, eventbridge, line, notification
from transform.pii import PiiPolicy, RecordPii, pseudonym
from transform.service import Delivery, TransformService
from transform.state import Timing

KEY = b"ops-erase-test-key-0123456789abcdef"
NUMBER = "+1 (317) 555-0100"
OTHER = "+4930123456"


@dataclass
class Twins:
    """The pipeline's storage as in-memory twins, and the readers `ops erase` uses."""

    store: InMemoryStateStore = field(default_factory=InMemoryStateStore)
    records_blobs: InMemoryContainer = field(default_factory=lambda: InMemoryContainer("records"))
    letters_blobs: InMemoryContainer = field(default_factory=lambda: InMemoryContainer("letters"))
    lines: int = 0

    def write(self, record: dict[str, Any]) -> None:  # RecordSink
        name = record_blob_name(record["conversation_id"])
        self.records_blobs.put(name, orjson.dumps(record), {"revision": str(record["revision"])})

    def write_letter(self, letter: DeadLetter) -> None:  # DeadLetterSink
        self.letters_blobs.put(blob_name(letter), blob_body(letter), blob_metadata(letter))

    def run(self, payloads: list[object], pii: PiiPolicy | None = None) -> None:
        """Apply each payload as one delivery, then let every grace period run out."""
        clock = ManualClock(ms_to_datetime(1_900_000_000_000))
        letters = _LetterSink(self)
        service = TransformService(self.store, self, letters, clock, Timing(), pii=pii)
        deliveries = []
        for payload in payloads:  # each its own source: dead-letter ids derive from it
            self.lines += 1
            body = payload if isinstance(payload, bytes) else line(payload)
            deliveries.append(Delivery(body, source={"line": self.lines}))
        service.process(deliveries)
        clock.set(ms_to_datetime(1_900_000_000_000 + 5 * 3600 * 1000))
        while service.tick().due:
            pass

    def readers(self) -> tuple[RecordReader, ShardedStateReader, DeadLetterStore]:
        states = ShardedStateReader(self.store.another_process(cache_size=0), "memory")
        return RecordReader(self.records_blobs), states, DeadLetterStore(self.letters_blobs)

    def snapshot(self, conversation_id: str) -> tuple[Any, ...]:
        """Everything stored of one conversation, to show it untouched."""
        from transform.keys import safe_key

        key = safe_key(conversation_id)
        rows = sorted((k, sorted(v.items())) for k, v in self.store.rows().items() if key in k[1])
        record = self.records_blobs.read(record_blob_name(conversation_id))
        return record, rows


@dataclass
class _LetterSink:
    twins: Twins

    def write(self, letter: DeadLetter) -> None:
        self.twins.write_letter(letter)


def _call(conversation_id: str, caller: str, callee: str = "+18005550199") -> dict[str, Any]:
    return envelope(
        conversation_id,
        0,
        [
            Step("voice:call:connected", 1, {"callerNumber": caller, "calleeNumber": callee}),
            Step("conversation:state", 60, {"status": "disconnected"}),
        ],
    )


def _genesys(conversation_id: str, ani: str) -> list[dict[str, Any]]:
    start = notification(conversation_id, "customer.start", 1, ani=ani, mediaType="VOICE")
    end = notification(conversation_id, "customer.end", 60, mediaType="VOICE")
    return [eventbridge(start), end]


def _pipeline(pii: PiiPolicy | None = None) -> Twins:
    twins = Twins()
    partly_bad = _call("named-by-a-letter", OTHER)
    partly_bad["data"]["details"].append(
        {"name": "agent:wrapup", "type": "event", "data": {}, "sequence": "one", "timestamp": 0}
    )
    twins.run(
        [
            _call("env-with-number", NUMBER),
            *_genesys("genesys-with-number", "tel:+13175550100"),
            _call("callee-is-number", OTHER, callee="tel:+13175550100"),
            _call("someone-else", OTHER),
            _call("similar-number", "+131755501001"),
            partly_bad,  # applied, and kept whole as a dead letter naming it
            # Not JSON, holding the number: a dead letter only the number finds.
            b'{"data": {"id": "broken", "details": [{"callerNumber": "+1-317-555-0100"',
            # A letter holding the number that names a conversation stored without it.
            {
                "topicName": "v2.detail.events.conversation.letter-only.customer.start",
                "eventBody": {"ani": "tel:+13175550100"},
            },
        ],
        pii,
    )
    twins.run([_call("letter-only", OTHER)], pii)
    return twins


def test_a_conversation_is_found_everywhere_and_erased_leaving_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(adapters.state_plan, "MAX_INLINE_BYTES", 200)  # every state spills
    twins = _pipeline()
    records, states, letters = twins.readers()
    others = {cid: twins.snapshot(cid) for cid in ("someone-else", "env-with-number")}

    found = erase.find(records, states, letters, ["named-by-a-letter"], [])
    assert found.conversations == ["named-by-a-letter"]
    assert found.counts() == {
        "records": 1,
        "state_rows": 1,
        "index_rows": 1,
        "spill_blobs": 1,
        "dead_letters": 1,
    }
    assert twins.snapshot("named-by-a-letter")[0] is not None, "a dry run deletes nothing"

    erased = erase.apply(found, records, states, letters)
    assert erased.deleted == found.counts()
    assert not any(erased.remaining.values())
    record, rows = twins.snapshot("named-by-a-letter")
    assert record is None and rows == []
    assert not [n for n in twins.store.spill_blobs if n.startswith("named-by-a-letter/")]
    assert not [
        n
        for n in twins.letters_blobs.blobs
        if b"named-by-a-letter" in twins.letters_blobs.blobs[n].data
    ]
    assert {cid: twins.snapshot(cid) for cid in others} == others


@pytest.mark.parametrize("pii", [None, PiiPolicy(RecordPii.HASH, KEY)], ids=["keep", "hash"])
def test_a_number_is_found_in_every_form_and_its_conversations_go_whole(
    pii: PiiPolicy | None,
) -> None:
    twins = _pipeline(pii)
    records, states, letters = twins.readers()
    untouched = ("someone-else", "similar-number", "named-by-a-letter")
    before = {cid: twins.snapshot(cid) for cid in untouched}
    query = erase.NumberQuery.of(NUMBER, KEY)

    found = erase.find(records, states, letters, [], [query])
    assert found.conversations == [
        "callee-is-number",
        "env-with-number",
        "genesys-with-number",
        "letter-only",
    ]
    assert len(found.dead_letters) == 2, "the broken body and the letter naming letter-only"
    erased = erase.apply(found, records, states, letters)
    assert erased.deleted["records"] == 4 and erased.deleted["state_rows"] == 4
    assert not any(erased.remaining.values())

    stored = [blob.data for blob in twins.records_blobs.blobs.values()]
    stored += [blob.data for blob in twins.letters_blobs.blobs.values()]
    assert not [b for b in stored if b'3175550100"' in b or b"555-0100" in b]
    assert pseudonym(KEY, NUMBER).encode() not in b"".join(stored)
    assert {cid: twins.snapshot(cid) for cid in untouched} == before
    again = erase.find(*twins.readers(), [], [query])
    assert again.conversations == [] and not any(again.counts().values())


def test_without_the_key_hashed_records_are_not_found_but_raw_letters_are() -> None:
    twins = _pipeline(PiiPolicy(RecordPii.HASH, KEY))
    found = erase.find(*twins.readers(), [], [erase.NumberQuery.of(NUMBER, None)])
    assert found.conversations == ["letter-only"], "only through the raw dead letter"
    assert len(found.dead_letters) == 2


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ('"ani":"tel:+13175550100"', True),
        ("call +1 317 555 0100 now", True),
        ("+1-(317)-555.0100", True),
        ("+131755501001", False),  # a longer number
        ("13175550100", False),  # no +: another number, maybe
        ("+23175550100", False),
    ],
)
def test_a_number_is_found_in_raw_text_with_any_separators(text: str, holds: bool) -> None:
    assert erase.NumberQuery.of(NUMBER, None).in_text(text, ()) is holds


@pytest.mark.parametrize("number", ["not-a-number", "12345", "+", "x@y.org"])
def test_a_phone_number_is_checked(number: str) -> None:
    with pytest.raises(UsageError, match="--phone"):
        erase.NumberQuery.of(number, None)


def test_the_command_needs_something_to_erase(tmp_path: Any) -> None:
    runner = CliRunner()
    settings = tmp_path / "settings.json"
    values = {"StateStorage": "UseDevelopmentStorage=true"}
    settings.write_text(orjson.dumps({"Values": values}).decode(), encoding="utf-8")
    nothing = runner.invoke(app, ["erase", "--settings", str(settings)], env=values)
    assert nothing.exit_code == 2 and "--conversation" in nothing.output
    bad = runner.invoke(app, ["erase", "--phone", "12", "--settings", str(settings)], env=values)
    assert bad.exit_code == 2 and "--phone" in bad.output
