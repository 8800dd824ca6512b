"""Small parts: time formatting, knobs and profiles, render drift, the delivery seam."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from random import Random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.settings import SettingsError
from adapters.webhook import RetryPolicy
from simulator.errors import InputError, UsageError
from simulator.generate import drift, formats
from simulator.generate.dataset import make_conversation
from simulator.generate.org import build_org
from simulator.generate.profiles import (
    DRIFT_KINDS,
    RENDER_DRIFT,
    parse_kinds,
    parse_mix,
    resolve,
)
from simulator.send.delivery import Delivery, MemoryTarget, read_deliveries
from simulator.timeutil import iso, iso_offset, parse_iso


@given(st.integers(0, 4_102_444_800_000), st.integers(-720, 840))
def test_iso_forms_parse_back_to_the_same_instant(ms: int, offset: int) -> None:
    text = iso(ms)
    assert len(text) == 24 and text.endswith("Z")
    assert parse_iso(text) == ms
    assert parse_iso(iso_offset(ms, offset)) == ms
    assert parse_iso(text.removesuffix("Z")) == ms  # naive means UTC


def test_knobs_are_validated_with_a_message() -> None:
    with pytest.raises(UsageError, match="reorder-rate must be between 0 and 1"):
        resolve("chaos", {"reorder_rate": 1.5})
    with pytest.raises(UsageError, match="unknown profile 'wild'"):
        resolve("wild", {})
    with pytest.raises(UsageError, match="unknown knob"):
        resolve("clean", {"colour": "blue"})
    assert resolve("chaos", {"reorder_rate": None}).reorder_rate == 0.35


def test_mixes_and_kind_lists_parse() -> None:
    assert parse_mix("voice=3, chat", (), "media mix") == {"voice": 3.0, "chat": 1.0}
    with pytest.raises(UsageError, match="positive weight"):
        parse_mix("voice=0", (), "media mix")
    assert parse_kinds("all", DRIFT_KINDS, "drift kind(s)") == DRIFT_KINDS
    assert parse_kinds("none", DRIFT_KINDS, "drift kind(s)") == ()
    assert parse_kinds("enum-case,unknown-field", DRIFT_KINDS, "k") == (
        "unknown-field",
        "enum-case",
    )


def canonical(payload: dict[str, Any]) -> Any:
    """What the record can depend on, in one notation: the test's view of 'same meaning'."""

    def stamp(value: Any) -> int:
        return int(value) if str(value).isdigit() else parse_iso(str(value))

    def number(value: Any) -> Any:
        return float(value) if isinstance(value, str) else value

    if "data" in payload:
        details = []
        for d in sorted(payload["data"]["details"], key=lambda d: int(d["sequence"])):
            data = dict(d["data"])
            if "wrapupCode" in data:
                data["wrapUpCode"] = data.pop("wrapupCode")
            if isinstance(data.get("skillIds"), str):
                data["skillIds"] = [data["skillIds"]]
            for key in ("duration", "holdDuration"):
                if key in data:
                    data[key] = number(data[key])
            data = {k: v for k, v in data.items() if k not in {n for n, _ in drift.UNKNOWN_FIELDS}}
            data.pop("holdDuration", None)
            data.pop("name", None)
            details.append((d["name"], int(d["sequence"]), stamp(d["timestamp"]), data))
        return (
            payload["data"]["id"],
            payload["data"]["type"],
            stamp(payload["createdTimestamp"]),
            details,
        )
    inner = payload.get("detail", payload)
    body = dict(inner["eventBody"])
    if "wrapUpCode" in body:
        body["wrapupCode"] = body.pop("wrapUpCode")
    for key in ("heldDurationMs", "wrapupDurationMs"):
        if key in body:
            body[key] = int(body[key])
    body["eventTime"] = stamp(body["eventTime"])
    for key in [n for n, _ in drift.UNKNOWN_FIELDS] + ["acdOutcome", "flowId", "flowOutcomeValue"]:
        body.pop(key, None)
    return (inner["topicName"], body)


@given(st.integers(0, 200), st.integers(0, 10_000))
@settings(deadline=None)  # the first example builds the org and the profile cold (> 200 ms alone)
def test_render_drift_keeps_what_the_record_depends_on(index: int, seed: int) -> None:
    org = build_org(1)
    knobs = resolve("mixed", {"drift_rate": 0.0})
    conversation = make_conversation(index, 1_795_507_200_000, org, knobs, 1)
    rng = Random(seed)
    for payload in conversation.payloads:
        doc = formats.render(payload, org.org_id)
        drifted = copy.deepcopy(doc)
        applied = drift.render_drift(rng, drifted, payload.fmt, RENDER_DRIFT)
        assert canonical(drifted) == canonical(doc), applied


def test_retry_policy_is_genesys_style() -> None:
    policy = RetryPolicy()
    assert list(policy.delays()) == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert policy.retryable(503) and policy.retryable(None)
    assert not policy.retryable(400) and not policy.retryable(200)
    assert not policy.retryable(429)  # Genesys' webhook: a 4xx is final
    assert policy.wait(2.0, 30.0) == 2.0  # and it does not read Retry-After
    with pytest.raises(SettingsError, match="backoff ≥ 1"):
        RetryPolicy(backoff=0.5)


def test_deliveries_read_back_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.jsonl"
    path.write_bytes(b'{"a":1}\n[1,2]\nnot json\n')
    deliveries = list(read_deliveries(path))
    assert deliveries == [Delivery(1, b'{"a":1}'), Delivery(2, b"[1,2]"), Delivery(3, b"not json")]
    target = MemoryTarget()
    outcomes = [asyncio.run(target.deliver(d)) for d in deliveries]
    assert [o.line for o in outcomes] == [1, 2, 3] and all(o.accepted for o in outcomes)
    assert target.received == deliveries
    with pytest.raises(InputError):
        list(read_deliveries(tmp_path / "missing.jsonl"))
