"""`generate`: determinism, valid output for every profile, and a manifest that tells the truth."""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulator.errors import UsageError
from simulator.generate import truth
from simulator.generate.dataset import Dataset, arrivals, make_conversation, write
from simulator.generate.model import GENESYS_FORMATS
from simulator.generate.org import build_org
from simulator.generate.profiles import (
    MALFORMED_KINDS,
    MODEL_DRIFT,
    PROFILES,
    RENDER_DRIFT,
    resolve,
)
from simulator.timeutil import parse_iso
from tests.simulator import wire
from tests.simulator.conftest import SEED, make

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def ms(value: Any) -> int:
    """Any timestamp notation the simulator uses, as epoch ms."""
    if isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def without_processing(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in truth.PROCESSING_FIELDS}


# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_same_seed_gives_the_same_bytes(profile: str, tmp_path: Path) -> None:
    for run in ("a", "b"):
        write(make(profile, n=25, seed=99), tmp_path / run)
    for name in ("truth.jsonl", "deliveries.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_different_seed_gives_different_bytes() -> None:
    one, two = make("chaos", n=20, seed=1), make("chaos", n=20, seed=2)
    assert one.deliveries_bytes() != two.deliveries_bytes()
    assert one.truth_bytes() != two.truth_bytes()


def test_a_conversation_does_not_depend_on_how_many_there_are() -> None:
    small, large = make("realistic", n=12), make("realistic", n=30)
    large_by_id = {r["conversation_id"]: r for r in large.truth}
    assert all(large_by_id[r["conversation_id"]] == r for r in small.truth)


def test_start_moves_the_whole_data_set() -> None:
    later = make("clean", n=5, start="2027-01-01T00:00:00Z")
    assert min(r["started_at"] for r in later.truth) == "2027-01-01T00:00:00.000Z"


def test_zero_conversations_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="at least 1"):
        make("clean", n=0)


# ----------------------------------------------------------------------------- files vs manifest


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_manifest_counts_agree_with_the_files(profile: str, written: dict[str, Path]) -> None:
    folder = written[profile]
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    counts = manifest["counts"]
    lines = (folder / "deliveries.jsonl").read_bytes().splitlines()
    truth_lines = (folder / "truth.jsonl").read_bytes().splitlines()
    for name, data, n in (("deliveries.jsonl", lines, len(lines)), ("truth.jsonl", truth_lines, 0)):
        described = manifest["files"][name]
        raw = (folder / name).read_bytes()
        assert described["sha256"] == hashlib.sha256(raw).hexdigest()
        assert described["lines"] == len(data) and (n == 0 or n == counts["deliveries"])
    assert counts["array_deliveries"] == sum(1 for x in lines if isinstance(wire.parse(x), list))

    valid = payload_events = 0
    seen_malformed = set()
    heartbeat_lines = {h["line"] for h in manifest["heartbeats"]}
    assert len(heartbeat_lines) == counts["heartbeats"]
    for element in wire.elements(folder, manifest):
        if element.line in heartbeat_lines:
            assert element.value == {
                "topicName": "channel.metadata",
                "eventBody": {"message": "WebSocket Heartbeat"},
            }
            continue
        bad = element.malformed
        if bad is not None:
            seen_malformed.add((bad["line"], bad["element"]))
            if bad["kind"] != "bad-detail":
                continue
        valid += 1
        payload_events += wire.micro_events(element.value)
    assert len(seen_malformed) == counts["malformed"]["total"] == counts["dead_letters_expected"]
    assert valid == counts["payloads"] + counts["duplicates"]["payloads"]
    assert payload_events == counts["micro_events"] + counts["duplicates"]["micro_events"]

    records = [orjson.loads(x) for x in truth_lines]
    # The truth holds what the pipeline writes; what its media filter sets aside is listed apart.
    filtered, set_aside = counts["filtered"], manifest["filtered"]
    assert filtered["media_types"] == list(PROFILES[profile].media_types)
    assert len(records) + filtered["conversations"] == counts["conversations"]
    assert counts["conversations"] == manifest["conversations"]
    assert len(set_aside) == filtered["conversations"]
    assert all(truth.kept(r["media_type"], filtered["media_types"]) for r in records)
    assert not any(truth.kept(f["media_type"], filtered["media_types"]) for f in set_aside)
    assert sum(f["event_count"] for f in set_aside) == filtered["micro_events"]
    everything = records + set_aside
    assert [r["conversation_id"] for r in records] == sorted(r["conversation_id"] for r in records)
    assert all(set(r) == set(truth.RECORD_FIELDS) for r in records)
    assert sum(r["event_count"] for r in everything) == counts["micro_events"]
    assert sum(r["status"] == "partial" for r in everything) == counts["never_ended"]
    assert len(manifest["never_ended"]) == counts["never_ended"]
    assert len(manifest["duplicates"]) == counts["duplicates"]["payloads"]
    assert len(manifest["late"]) == counts["late"]["payloads"]
    assert len(manifest["drifted"]) == counts["drifted"]["payloads"]
    assert sum(r["late_event_count"] for r in everything) == counts["late"]["micro_events"]
    assert manifest["profile"] == profile and manifest["seed"] == SEED
    assert manifest["knobs"] == PROFILES[profile].as_json()


def test_profiles_inject_what_they_promise(datasets: dict[str, Dataset]) -> None:
    clean = datasets["clean"].manifest["counts"]
    assert clean["envelopes"] == clean["conversations"] == clean["deliveries"]
    for fault in ("reordered", "shuffled_envelopes", "array_deliveries", "never_ended"):
        assert clean[fault] == 0, fault
    assert (clean["duplicates"]["payloads"], clean["late"]["payloads"]) == (0, 0)
    assert (clean["malformed"]["total"], clean["drifted"]["payloads"]) == (0, 0)

    realistic = datasets["realistic"].manifest["counts"]
    assert realistic["duplicates"]["payloads"] > 0 and realistic["reordered"] > 0
    assert realistic["multi_envelope_conversations"] > realistic["conversations"] / 2
    assert realistic["late"]["payloads"] > 0
    assert (realistic["malformed"]["total"], realistic["drifted"]["payloads"]) == (0, 0)

    chaos = datasets["chaos"].manifest["counts"]
    assert chaos["duplicates"]["reenvelope"] > 0 and chaos["duplicates"]["resend"] > 0
    assert chaos["duplicates"]["after_finalization"] > 0
    assert chaos["shuffled_envelopes"] > 0 and chaos["reordered"] > 0
    assert chaos["late"]["delayed"] > 0 and chaos["never_ended"] > 0
    assert len(chaos["malformed"]["by_kind"]) >= 6
    drifted = set(chaos["drifted"]["by_kind"])
    assert drifted & set(MODEL_DRIFT) and drifted & set(RENDER_DRIFT)

    genesys = datasets["genesys"].truth
    assert {f for r in genesys for f in r["source_formats"]} == GENESYS_FORMATS
    assert any(r["transfers"] and r["hold_count"] for r in genesys)
    mixed = datasets["mixed"].truth
    assert {f for r in mixed for f in r["source_formats"]} == {
        "envelope",
        "eventbridge",
        "notification",
    }


# ----------------------------------------------------------------------------- the wire


def test_wire_timestamps_are_iso_ms_z_and_epoch_ms(written: dict[str, Path]) -> None:
    manifest = orjson.loads((written["mixed"] / "manifest.json").read_bytes())
    drifted = {(d["line"], d["element"]) for d in manifest["drifted"]}
    for element in wire.elements(written["mixed"], manifest):
        if element.malformed or (element.line, element.index) in drifted:
            continue
        payload = element.value
        if "data" in payload:
            assert ISO_MS.match(payload["createdTimestamp"])
            assert all(ISO_MS.match(d["timestamp"]) for d in payload["data"]["details"])
        else:
            body = payload.get("detail", payload)["eventBody"]
            assert isinstance(body["eventTime"], int)
            assert payload.get("detail", payload)["topicName"].endswith(
                "."
                + body["conversationId"]
                + "."
                + payload.get("detail", payload)["topicName"].removeprefix(
                    "v2.detail.events.conversation." + body["conversationId"] + "."
                )
            )


def test_sequences_restart_in_every_envelope(written: dict[str, Path]) -> None:
    manifest = orjson.loads((written["realistic"] / "manifest.json").read_bytes())
    firsts: Counter[str] = Counter()
    for element in wire.elements(written["realistic"], manifest):
        if "data" in element.value and element.value["data"]["details"][0]["sequence"] == 1:
            firsts[element.value["data"]["id"]] += 1
    assert max(firsts.values()) >= 3


def identity_groups(folder: Path) -> dict[tuple[Any, ...], list[Any]]:
    """Every delivered micro-event grouped by its SPEC 3 identity."""
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for element in wire.elements(folder, manifest):
        if element.malformed:
            continue
        payload = element.value
        if "data" in payload:
            created = ms(payload["createdTimestamp"])
            for d in payload["data"]["details"]:
                key = (payload["data"]["id"], created, int(d["sequence"]))
                groups[key].append((payload["data"]["type"], d))
        else:
            body = payload.get("detail", payload)["eventBody"]
            kind = payload.get("detail", payload)["topicName"].rsplit(
                body["conversationId"] + ".", 1
            )[1]
            key = (
                kind,
                body["conversationId"],
                body["participantId"],
                body["sessionId"],
                ms(body["eventTime"]),
            )
            groups[key].append(payload)
    return groups


def test_duplicates_are_the_same_micro_events(written: dict[str, Path]) -> None:
    groups = identity_groups(written["chaos"])
    copies = [g for g in groups.values() if len(g) > 1]
    assert copies, "chaos must deliver duplicates"
    for group in copies:
        assert all(copy == group[0] for copy in group), group
    records = {
        r["conversation_id"]: r
        for r in map(orjson.loads, (written["chaos"] / "truth.jsonl").read_bytes().splitlines())
    }
    # the truth bounds each record's duplicate count by the copies actually delivered
    delivered: Counter[str] = Counter()
    for key, group in groups.items():
        cid = key[0] if isinstance(key[1], int) else key[1]
        delivered[cid] += len(group) - 1
    assert {c: r["duplicate_count"] for c, r in records.items() if r["duplicate_count"]} == {
        c: n for c, n in delivered.items() if n
    }


def test_resends_are_byte_identical(written: dict[str, Path]) -> None:
    manifest = orjson.loads((written["chaos"] / "manifest.json").read_bytes())
    seen: list[bytes] = []
    resends = {(d["line"], d["element"]) for d in manifest["duplicates"] if d["kind"] == "resend"}
    for element in wire.elements(written["chaos"], manifest):
        if element.malformed:
            continue
        body = orjson.dumps(element.value, option=orjson.OPT_SORT_KEYS)
        if (element.line, element.index) in resends:
            assert body in seen
        seen.append(body)


def test_envelopes_of_a_conversation_have_distinct_created_timestamps() -> None:
    org = build_org(5)
    knobs = resolve("realistic", {"envelope_split": 1.0})
    for i in range(40):
        conversation = make_conversation(i, 1_795_507_200_000 + i, org, knobs, 5)
        created = [p.created_ms for p in conversation.payloads]
        assert len(created) == len(set(created)) and created == sorted(created)
        for payload in conversation.payloads:
            assert [e.sequence for e in payload.events] == list(range(1, len(payload.events) + 1))


# ----------------------------------------------------------------------------- faults


BROKEN_SHAPE = {"data", "detail", "topicName", "eventBody"}


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_each_malformed_kind_is_broken_as_described(kind: str, tmp_path: Path) -> None:
    dataset = make("chaos", n=30, malformed_rate=0.5, malformed_kinds=(kind,))
    write(dataset, tmp_path)
    manifest = dataset.manifest
    entries = manifest["malformed"]
    assert entries and {e["kind"] for e in entries} == {kind}
    by_place = {(e.line, e.index): e for e in wire.elements(tmp_path, manifest)}
    for entry in entries:
        value = by_place[entry["line"], entry["element"]].value
        if kind in ("invalid-json", "truncated"):
            assert value is orjson.JSONDecodeError
        elif kind == "not-object":
            assert value is not orjson.JSONDecodeError and not isinstance(value, dict | list)
        elif kind == "unrecognised-shape":
            assert isinstance(value, dict) and not set(value) & BROKEN_SHAPE
        elif kind == "missing-conversation-id":
            holder = value["data"] if "data" in value else value.get("detail", value)["eventBody"]
            assert not holder.get("id" if "data" in value else "conversationId")
        elif kind == "bad-timestamp":
            stamp = (
                value.get("createdTimestamp")
                if "data" in value
                else value.get("detail", value)["eventBody"].get("eventTime")
            )
            with pytest.raises((TypeError, ValueError, AttributeError)):
                ms(stamp)
        elif kind == "bad-sequence":
            assert not any(str(d.get("sequence")).isdigit() for d in value["data"]["details"])
        elif kind == "bad-detail":
            sequences = [str(d.get("sequence")).isdigit() for d in value["data"]["details"]]
            assert sequences.count(False) == 1 and len(sequences) > 1
        else:
            pytest.fail(f"a new malformed kind, {kind}, needs its description here")
    if kind == "bad-detail":
        assert manifest["counts"]["dropped_micro_events"] == len(entries)
    else:
        assert manifest["counts"]["dropped_micro_events"] == 0


def test_render_drift_does_not_change_the_truth() -> None:
    quiet = make("realistic", n=40, drift_rate=0.0, drift_kinds=RENDER_DRIFT)
    noisy = make("realistic", n=40, drift_rate=1.0, drift_kinds=RENDER_DRIFT)
    assert noisy.manifest["counts"]["drifted"]["payloads"] > 100
    assert [without_processing(r) for r in noisy.truth] == [
        without_processing(r) for r in quiet.truth
    ]


def test_model_drift_shows_in_the_truth() -> None:
    dataset = make("chaos", n=60, drift_rate=1.0, drift_kinds=MODEL_DRIFT, malformed_rate=0.0)
    records = dataset.truth
    vocabulary = {"voice", "chat", "email", "video", "task", "workitem"}
    assert any(r["unknown_events"] for r in records)
    assert any(r["media_type"] not in vocabulary for r in records)
    states = {e["action"] for r in records for e in r["lifecycle"]}
    assert any(s != s.lower() for s in states)  # enum case kept as received
    assert all(r["media_type"] == r["media_type"].lower() for r in records)


def test_late_payloads_come_after_end_plus_grace() -> None:
    manifest = make("realistic", n=60, late_rate=1.0).manifest
    delayed = [x for x in manifest["late"] if x["reason"] == "delayed"]
    assert len(delayed) > 20
    assert all(x["after_end_ms"] > 60_000 for x in manifest["late"])


def test_never_ending_conversations_are_partial() -> None:
    dataset = make("mixed", n=30, never_end_rate=1.0)
    assert {(r["status"], r["finalized_reason"]) for r in dataset.truth} == {
        ("partial", "idle-timeout")
    }
    reasons = {x["reason"] for x in dataset.manifest["never_ended"]}
    assert "stopped-before-disconnect" in reasons and "stopped-before-customer-end" in reasons


def test_weird_conversation_ids_survive_the_trip(written: dict[str, Path]) -> None:
    dataset = make("chaos", n=30, weird_id_rate=1.0, malformed_rate=0.0)
    ids = {r["conversation_id"] for r in dataset.truth}
    assert any(set(i) & set("/\\#?%") for i in ids)
    assert any(not i.isascii() for i in ids) and any("\u0001" in i for i in ids)
    values = [orjson.loads(line) for line in dataset.lines]
    payloads = [p for v in values for p in (v if isinstance(v, list) else [v])]
    delivered = {wire.conversation_id(p) for p in payloads}
    assert delivered == ids


# ----------------------------------------------------------------------------- model vs rules


@pytest.mark.parametrize("fmt", ["envelope", "notification"])
def test_what_the_model_meant_is_what_the_rules_derive(fmt: str) -> None:
    org = build_org(3)
    knobs = resolve(
        "realistic",
        {"format_mix": {fmt: 1.0}, "hold_rate": 0.7, "transfer_rate": 0.5, "never_end_rate": 0.0},
    )
    starts = arrivals(3, 120, knobs.start_ms, knobs.arrivals_per_minute)
    checked: Counter[str] = Counter()
    for i, t0 in enumerate(starts):
        conversation = make_conversation(i, t0, org, knobs, 3)
        facts = conversation.facts
        record = truth.derive(conversation.conversation_id, conversation.events)
        assert record["status"] == "final" and facts.ended
        assert record["hold_count"] == facts.hold_count
        assert record["hold_seconds"] == facts.hold_ms / 1000
        assert record["transfers"] == facts.transfers
        assert record["wrap_up_code"] == facts.wrap_up_code
        assert set(record["agent_ids"]) == facts.agent_ids
        if fmt == "envelope":
            assert record["message_count"] == facts.message_count
        checked.update(k for k in ("hold_count", "transfers", "message_count") if record[k])
    assert min(checked.values()) > 5


def test_grace_knob_places_late_events(dataset_factory: Callable[..., Dataset]) -> None:
    tight = dataset_factory("realistic", n=40, grace_seconds=10.0)
    loose = dataset_factory("realistic", n=40, grace_seconds=3600.0)
    assert (
        tight.manifest["counts"]["late"]["payloads"] > loose.manifest["counts"]["late"]["payloads"]
    )
    assert parse_iso(tight.manifest["span"]["first_event"]) == parse_iso(
        loose.manifest["span"]["first_event"]
    )


# ----------------------------------------------------------------------------- the route


def test_the_relay_profile_brings_the_route_s_traffic_and_its_filter(
    datasets: dict[str, Dataset], written: dict[str, Path]
) -> None:
    relay = datasets["relay"].manifest
    counts = relay["counts"]
    assert counts["heartbeats"] > 0 and counts["malformed"]["by_kind"] == {
        "unsupported-topic": counts["malformed"]["total"]
    }
    assert counts["malformed"]["total"] > 0
    filtered = counts["filtered"]
    assert filtered["media_types"] == ["chat", "voice"] and filtered["conversations"] > 0
    assert set(filtered["by_media"]) <= {"email", "video", "workitem", "task"}
    assert {r["media_type"] for r in datasets["relay"].truth} == {"chat", "voice"}
    topics, media_less, detail_types = set(), 0, set()
    for element in wire.elements(written["relay"], relay):
        holder = (
            element.value.get("detail", element.value) if isinstance(element.value, dict) else {}
        )
        if "topicName" in holder:
            topics.add(holder["topicName"].split(".")[1])
            if holder["topicName"].endswith(".attributes") and "eventBody" in holder:
                media_less += "mediaType" not in holder["eventBody"]
        if isinstance(element.value, dict) and "detail-type" in element.value:
            detail_types.add(element.value["detail-type"])
    assert {"detail", "conversations"} <= topics
    assert media_less > 0  # attributes as Genesys sends them: no mediaType
    # EventBridge's detail-type is the subscribed topic, `{id}` literal.
    assert detail_types and all("{id}" in t for t in detail_types)
    unsupported = [m for m in relay["malformed"] if m["kind"] == "unsupported-topic"]
    assert all(m["marker"].startswith("sim-topic-") for m in unsupported)


def test_route_knobs_off_leave_every_other_profile_alone(datasets: dict[str, Dataset]) -> None:
    for name, dataset in datasets.items():
        if name == "relay":
            continue
        counts = dataset.manifest["counts"]
        assert counts["heartbeats"] == 0 and counts["filtered"]["conversations"] == 0, name
        assert "unsupported-topic" not in counts["malformed"]["by_kind"], name
        assert len(dataset.truth) == counts["conversations"], name


def test_media_types_filter_the_truth_and_only_the_truth() -> None:
    kept = make("mixed", n=40, media_types=("voice",))
    everything = make("mixed", n=40)
    assert kept.lines == everything.lines  # the pipeline's setting changes no delivery
    assert [r for r in everything.truth if r["media_type"] == "voice"] == kept.truth
    filtered = kept.manifest["counts"]["filtered"]
    assert filtered["conversations"] == len(everything.truth) - len(kept.truth) > 0
    assert filtered["micro_events"] == sum(
        r["event_count"] for r in everything.truth if r["media_type"] != "voice"
    )


@pytest.mark.parametrize(
    ("media", "types", "kept"),
    [
        ("voice", (), True),
        (None, (), True),
        ("voice", ("voice", "chat"), True),
        ("VOICE", ("voice",), True),
        ("email", ("voice",), False),
        (None, ("voice",), False),
    ],
)
def test_the_truth_keeps_what_the_filter_keeps(
    media: str | None, types: tuple[str, ...], kept: bool
) -> None:
    assert truth.kept(media, types) is kept


def test_media_types_are_checked_like_the_app_setting() -> None:
    from simulator.generate.profiles import parse_media_types

    assert parse_media_types(" Voice,CHAT ") == ("chat", "voice")
    assert parse_media_types("all") == parse_media_types("") == ()
    with pytest.raises(UsageError, match="empty name"):
        parse_media_types("voice,,chat")
    with pytest.raises(UsageError, match="lower case"):
        resolve("clean", {"media_types": ("Voice",)})


def test_a_run_host_is_unsigned_when_foreign_topic_faults_make_eventbridge_events() -> None:
    """Foreign-topic faults wrap some events as EventBridge events (which cannot sign) even
    when the format mix has no EventBridge: the run's host must then take unsigned requests."""
    from simulator.generate.dataset import generate
    from simulator.run.runner import host_signed

    plain = resolve("clean", {"format_mix": {"envelope": 1.0}})
    faulty = resolve("clean", {"format_mix": {"envelope": 1.0}, "foreign_topic_rate": 0.5})
    clean = generate(conversations=40, seed=SEED, profile="clean", knobs=plain)
    foreign = generate(conversations=40, seed=SEED, profile="clean", knobs=faulty)
    assert host_signed(clean.lines, eventbridge_route=True)
    assert not host_signed(foreign.lines, eventbridge_route=True)
    assert host_signed(foreign.lines, eventbridge_route=False)  # sent as webhooks, signed
