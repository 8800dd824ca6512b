"""RECORD_PII: no phone number reaches the state or a record with `hash` or `drop`.

Replays of every golden data set run with each mode on the in-memory twins; the stored state
rows (decompressed), spill blobs (forced by a small inline limit), index rows and records are
searched for every number of the input. `hash` must change nothing but `caller` / `callee`,
map the same number to the same pseudonym in every conversation and batch size, and `keep`
must stay the pipeline as it was (tests/golden holds that to the byte).
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import adapters.state_plan
from adapters.entity import INDEX_PREFIX, LAYOUT_PARTITION, state_blob
from adapters.memory import (
    InMemoryDeadLetterSink,
    InMemoryRecordSink,
    InMemoryStateStore,
    ManualClock,
)
from ingest.accept import Request, lower_headers
from schemas.timestamps import ms_to_datetime
from tests.golden.outputs import data_sets, read_input
from tests.ingest.helpers import Rig
from tests.unit.builders import Step, envelope, line, notification
from transform.__main__ import app as transform_app
from transform.derive import PROCESSING_FIELDS
from transform.pii import (
    PSEUDONYM_PREFIX,
    PiiPolicy,
    RecordPii,
    is_number,
    normalize_number,
    pseudonym,
)
from transform.replay import ReplayPorts, replay
from transform.state import state_json

KEY = b"unit-test-pseudonymization-key-0123456789"
HASH = PiiPolicy(RecordPii.HASH, KEY)
DROP = PiiPolicy(RecordPii.DROP)
NUMBER_FIELDS = ("callerNumber", "calleeNumber", "ani", "dnis")
PSEUDONYM = re.compile(re.escape(PSEUDONYM_PREFIX) + "[0-9a-f]{64}")
SPILL_ABOVE_BYTES = 400
"""Inline state limit for these replays, so that many conversations spill to blobs."""


# ---------------------------------------------------------------------- the pure step
@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("+13175550100", "+13175550100"),
        ("tel:+13175550100", "+13175550100"),
        (" TEL: +1 (317) 555-0100 ", "+13175550100"),
        ("+1.317.555.0100", "+13175550100"),
        ("0317 555 0100", "03175550100"),
        ("sip:+13175550100@pbx.example.com", "sip:+13175550100@pbx.example.com"),
        (" Someone@Example.com ", "Someone@Example.com"),
        ("1-800-FLOWERS", "1-800-FLOWERS"),
        ("+", "+"),
    ],
)
def test_numbers_normalize_to_digits_and_anything_else_is_only_trimmed(
    value: str, normalized: str
) -> None:
    assert normalize_number(value) == normalized
    assert is_number(value) == normalized.removeprefix("+").isdigit()


def test_a_pseudonym_is_a_keyed_hmac_of_the_normalized_number() -> None:
    one = pseudonym(KEY, "tel:+1 (317) 555-0100")
    assert PSEUDONYM.fullmatch(one)
    assert one == pseudonym(KEY, "+13175550100") == HASH.protect("+1-317-555-0100")
    assert one != pseudonym(b"another-key-another-key-another-key", "+13175550100")
    assert one != pseudonym(KEY, "+13175550101")
    assert "3175550100" not in one


def test_each_mode_protects_values_and_keep_touches_nothing() -> None:
    events = _parsed(
        envelope("c1", 0, [Step("voice:call:connected", 1, {"callerNumber": "+4930123456"})])
    )
    assert PiiPolicy().protect_events(events) is events, "keep: the same list, no copy"
    (hashed,) = HASH.protect_events(events)
    (dropped,) = DROP.protect_events(events)
    assert hashed.caller == pseudonym(KEY, "+4930123456") and hashed.callee is None
    assert dropped.caller is None
    assert hashed._replace(caller=events[0].caller) == events[0], "nothing else changes"
    assert DROP.protect(None) is None and HASH.protect(None) is None
    with pytest.raises(ValueError, match="RECORD_PII_KEY"):
        PiiPolicy(RecordPii.HASH)
    assert "unit-test" not in repr(HASH), "the key is never in a repr (nor a log line)"


def _parsed(payload: object) -> list[Any]:
    from transform.normalize import parse_delivery

    return parse_delivery(line(payload)).events


# ---------------------------------------------------------------------- whole replays
@dataclass
class Replayed:
    records: InMemoryRecordSink
    dead_letters: InMemoryDeadLetterSink
    store: InMemoryStateStore

    def record_bytes(self) -> list[str]:
        return [orjson.dumps(r).decode() for r in self.records.records.values()]

    def stored_text(self) -> Iterator[tuple[str, str]]:
        """Every stored thing as text: (where, text), state decompressed."""
        for (partition_key, row_key), entity in self.store.rows().items():
            where = f"row {partition_key}/{row_key}"
            for value in entity.values():
                if isinstance(value, str):
                    yield where, value
            is_state = partition_key != LAYOUT_PARTITION and not row_key.startswith(INDEX_PREFIX)
            if is_state and not entity.get("Spill"):
                yield where, state_json(state_blob(entity)).decode()
        for name, blob in self.store.spill_blobs.items():
            yield f"spill {name}", state_json(blob).decode()
        for record in self.record_bytes():
            yield "record", record


def _replay(
    data: bytes,
    pii: PiiPolicy | None,
    monkeypatch: pytest.MonkeyPatch,
    batch_size: int = 100,
) -> Replayed:
    monkeypatch.setattr(adapters.state_plan, "MAX_INLINE_BYTES", SPILL_ABOVE_BYTES)
    records, letters, store = InMemoryRecordSink(), InMemoryDeadLetterSink(), InMemoryStateStore()
    ports = ReplayPorts(store, records, letters, ManualClock(ms_to_datetime(0)))
    replay(io.BytesIO(data), ports, batch_size=batch_size, pii=pii)
    return Replayed(records, letters, store)


def _numbers_in(data: bytes) -> set[str]:
    """Every value the input holds where a phone number (or an email address) arrives."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in NUMBER_FIELDS and isinstance(item, str | int) and str(item).strip():
                    found.add(str(item))
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for raw in data.splitlines():
        try:
            walk(orjson.loads(raw))
        except orjson.JSONDecodeError:
            continue
    return found


def _needles(numbers: set[str]) -> set[str]:
    return {form for n in numbers for form in (n.strip(), normalize_number(n)) if len(form) >= 6}


DATA = {name: read_input(path) for name, path in data_sets().items()}


@pytest.mark.parametrize("name", sorted(DATA))
def test_hash_and_drop_store_no_number_in_records_state_index_or_spill(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = DATA[name]
    needles = _needles(_numbers_in(data))
    assert len(needles) >= 4, "the data set holds numbers to look for"
    kept = _replay(data, None, monkeypatch)
    assert kept.store.spill_blobs, "the small inline limit makes some state spill"
    kept_text = "\n".join(text for _, text in kept.stored_text())
    assert any(n in kept_text for n in needles), "keep: the numbers are there (the search works)"
    for pii in (HASH, DROP):
        replayed = _replay(data, pii, monkeypatch)
        for where, text in replayed.stored_text():
            leaked = [n for n in needles if n in text]
            assert not leaked, f"{pii.mode}: {where} holds {leaked[:3]}"
        assert replayed.dead_letters.letters == kept.dead_letters.letters, (
            "dead letters keep the raw payloads"
        )


@pytest.mark.parametrize("name", sorted(DATA))
def test_hash_changes_only_caller_and_callee_and_drop_only_empties_them(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = _replay(DATA[name], None, monkeypatch).records.records
    hashed = _replay(DATA[name], HASH, monkeypatch).records.records
    dropped = _replay(DATA[name], DROP, monkeypatch).records.records
    assert kept.keys() == hashed.keys() == dropped.keys()
    for conversation_id, record in kept.items():
        expected = {
            **record,
            "caller": HASH.protect(record["caller"]),
            "callee": HASH.protect(record["callee"]),
        }
        assert hashed[conversation_id] == expected
        # Dropping can spare a revision (a late number is no change): compare what happened.
        observable = {k: v for k, v in record.items() if k not in PROCESSING_FIELDS}
        after_drop = {
            k: v for k, v in dropped[conversation_id].items() if k not in PROCESSING_FIELDS
        }
        assert after_drop == {**observable, "caller": None, "callee": None}


def test_one_number_has_one_pseudonym_across_conversations_and_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = DATA["mixed"]
    kept = _replay(data, None, monkeypatch).records.records
    by_batches = [_replay(data, HASH, monkeypatch, size).records.records for size in (7, 500)]
    pseudonyms: dict[str, set[str]] = {}
    conversations: dict[str, int] = {}
    for conversation_id, record in kept.items():
        for field in ("caller", "callee"):
            if record[field] is None:
                continue
            number = normalize_number(record[field])
            conversations[number] = conversations.get(number, 0) + 1
            for hashed in by_batches:
                pseudonyms.setdefault(number, set()).add(hashed[conversation_id][field])
    assert all(len(values) == 1 for values in pseudonyms.values()), "one pseudonym per number"
    distinct = {value for values in pseudonyms.values() for value in values}
    assert len(distinct) == len(pseudonyms), "and one number per pseudonym"
    assert max(conversations.values()) > 1, "some number is in several conversations: joins"


def test_envelope_and_genesys_forms_of_one_number_join(monkeypatch: pytest.MonkeyPatch) -> None:
    payloads = [
        envelope(
            "env-1",
            0,
            [Step("voice:call:connected", 1, {"callerNumber": "+1 317 555 0100"})],
        ),
        notification("gen-1", "customer.start", 2, ani="tel:+13175550100", mediaType="VOICE"),
    ]
    data = b"".join(line(p) + b"\n" for p in payloads)
    records = _replay(data, HASH, monkeypatch).records.records
    assert records["env-1"]["caller"] == records["gen-1"]["caller"]
    assert records["env-1"]["caller"] == pseudonym(KEY, "+13175550100")


CALLERS = st.sampled_from(["+4930123456", "tel:+4930123456", "+1 (317) 555-0100", "", "x@y.org"])


@given(
    callers=st.lists(st.tuples(CALLERS, CALLERS), min_size=1, max_size=6),
    order=st.randoms(use_true_random=False),
    batch_size=st.integers(min_value=1, max_value=4),
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_order_of_numbered_events_hashes_to_the_kept_record_mapped(
    callers: list[tuple[str, str]], order: Any, batch_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = [
        Step("voice:call:connected", n, {"callerNumber": a, "calleeNumber": b})
        for n, (a, b) in enumerate(callers, start=1)
    ]
    steps.append(Step("conversation:state", len(steps) + 1, {"status": "disconnected"}))
    payloads = [envelope("p-1", n, [step]) for n, step in enumerate(steps)]
    order.shuffle(payloads)
    data = b"".join(line(p) + b"\n" for p in payloads)
    kept = _replay(data, None, monkeypatch, batch_size).records.records["p-1"]
    hashed = _replay(data, HASH, monkeypatch, batch_size).records.records["p-1"]
    assert hashed == {
        **kept,
        "caller": HASH.protect(kept["caller"]),
        "callee": HASH.protect(kept["callee"]),
    }


def test_numbers_are_never_logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("chaos", "genesys", "mixed"):
        data = DATA[name]
        _replay(data, None, monkeypatch, batch_size=7)  # keep: the numbers are in the state
        needles = _needles(_numbers_in(data))
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert caplog.records, "the replay logs (dead letters at least)"
        assert not [n for n in needles if n in logged]


def test_ingest_never_logs_a_number(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rig = Rig(threshold=5)
    headers = lower_headers({"Content-Type": "application/json"})

    async def send_all(data: bytes) -> list[int]:
        statuses = []
        for n, body in enumerate(data.splitlines()):
            answer = await rig.service.handle(Request(body, headers, 1_795_510_800_000, f"m-{n}"))
            statuses.append(answer.status)
        return statuses

    for name in ("chaos", "genesys", "mixed"):
        statuses = asyncio.run(send_all(DATA[name]))
        assert 200 in statuses
        assert name != "chaos" or 400 in statuses, "chaos holds malformed bodies"
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert not [n for n in _needles(_numbers_in(DATA[name])) if n in logged]
    assert rig.sink.blobs, "rejected bodies were dead-lettered (and logged)"


# ---------------------------------------------------------------------- the replay's CLI
def test_the_replay_command_hashes_with_a_key_file_and_refuses_hash_without_a_key(
    tmp_path: Path,
) -> None:
    sample = data_sets()["sample"]
    key_file = tmp_path / "key"
    key_file.write_text(KEY.decode() + "\n", encoding="utf-8")
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["replay", str(sample), "--out", str(out), "--record-pii", "hash"]
    done = runner.invoke(transform_app, [*args, "--record-pii-key-file", str(key_file)], env={})
    assert done.exit_code == 0, done.output
    written = "".join(p.read_text() for p in (out / "conversations").iterdir())
    assert pseudonym(KEY, "+15550001") in written
    assert "+15550001" not in written and "5550002" not in written
    refused = runner.invoke(transform_app, args, env={"RECORD_PII_KEY": ""})
    assert refused.exit_code == 2 and "RECORD_PII_KEY" in refused.output
    by_env = runner.invoke(
        transform_app,
        ["replay", str(sample), "--out", str(tmp_path / "env")],
        env={"RECORD_PII": "drop"},
    )
    assert by_env.exit_code == 0, by_env.output
    dropped = "".join(p.read_text() for p in (tmp_path / "env" / "conversations").iterdir())
    assert '"caller":null' in dropped.replace(" ", "") and "+15550001" not in dropped
