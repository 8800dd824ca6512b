"""`generate`: conversations → deliveries, ground truth and a manifest of what was injected.

Every random choice comes from a `random.Random` seeded with a string derived from the seed
and what it is for (`"<seed>:conversation:<i>"`, …): conversation *i* is the same whatever
the number of conversations, and the output bytes depend on nothing but the arguments.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any, Final, Protocol

import orjson

from simulator.errors import OutputError, UsageError
from simulator.generate import chaos, drift, scenarios, segment, truth
from simulator.generate.formats import dumps
from simulator.generate.genesys_scripts import GENESYS_MEDIA
from simulator.generate.model import (
    ENVELOPE,
    GENESYS_FORMATS,
    Conversation,
    Family,
    MicroEvent,
    Org,
    new_uuid,
)
from simulator.generate.org import build_org
from simulator.generate.profiles import MODEL_DRIFT, Knobs
from simulator.generate.steps import decide
from simulator.timeutil import iso
from transform.state import seconds_to_ms

Json = dict[str, Any]

MANIFEST_FORMAT: Final = "simulator-manifest/1"
TRUTH_FILE: Final = "truth.jsonl"
DELIVERIES_FILE: Final = "deliveries.jsonl"
MANIFEST_FILE: Final = "manifest.json"

# Conversation ids with the characters SPEC 3 warns about (`/ \ # ? %`, control, non-ASCII).
WEIRD_IDS: Final = (
    "{u}/with/slashes",
    "{u}\\back\\slash",
    "{u}#frag?query=1&x=%41",
    "{u} spaced ünïcödé ☎",
    "{u}\u0001ctl\u001f",
    "../{u}",
    "{u}.dots.in.id",
    "{u}%2F%25",
)


class Progress(Protocol):
    """Where `generate` reports how far it got (the CLI shows rich progress bars)."""

    def start(self, phase: str, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class NoProgress:
    def start(self, phase: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Dataset:
    """Everything `generate` writes, in memory."""

    truth: list[Json]
    lines: list[bytes]
    manifest: Json

    def truth_bytes(self) -> bytes:
        return b"".join(dumps(record) + b"\n" for record in self.truth)

    def deliveries_bytes(self) -> bytes:
        return b"".join(line + b"\n" for line in self.lines)


def _weighted(rng: Random, mix: dict[str, float] | Any) -> str:
    names = sorted(name for name, weight in mix.items() if weight > 0)
    return rng.choices(names, weights=[mix[n] for n in names])[0]


def conversation_id(rng: Random, weird_rate: float) -> str:
    """A UUID, or now and then one that tests safe encoding of storage keys."""
    base = new_uuid(rng)
    if rng.random() < weird_rate:
        return rng.choice(WEIRD_IDS).format(u=base)
    return base


def make_conversation(index: int, t0: int, org: Org, knobs: Knobs, seed: int) -> Conversation:
    """Model conversation `index` starting at `t0`: script, never-ending cut, drift, payloads."""
    rng = Random(f"{seed}:conversation:{index}")
    fmt = _weighted(rng, knobs.format_mix)
    family = "envelope" if fmt == ENVELOPE else "genesys"
    media = _weighted(rng, knobs.media_mix)
    model_drift: list[str] = []
    allowed = [k for k in MODEL_DRIFT if k in knobs.drift_kinds]
    if allowed and rng.random() < knobs.drift_rate:
        model_drift = sorted(rng.sample(allowed, rng.randint(1, min(2, len(allowed)))))
    label = media if family == "envelope" else GENESYS_MEDIA.get(media, media.upper())
    if "new-media-type" in model_drift:
        label = drift.new_media(rng, family)
        media = label.lower()
    cid = conversation_id(rng, knobs.weird_id_rate)
    intent = decide(
        rng,
        media,
        hold_rate=knobs.hold_rate,
        transfer_rate=knobs.transfer_rate,
        late_wrapup_rate=knobs.late_wrapup_rate,
        timeout_rate=knobs.wrapup_timeout_rate,
    )
    script = scenarios.script(family, rng, org, media=media, t0=t0, intent=intent)
    if rng.random() < knobs.never_end_rate:
        script = scenarios.cut_short(rng, script, family)
    steps = script.steps
    applied = []
    for kind in model_drift:
        if kind == "unknown-event":
            ok = drift.unknown_event(rng, steps, family)
        elif kind == "new-status":
            ok = family == "envelope" and drift.new_status(rng, steps)
        elif kind == "enum-case":
            drift.enum_case(rng, steps, family)
            label = rng.choice((label.upper(), label.title(), label))
            ok = True
        else:
            ok = True
        if ok:
            applied.append(kind)
    if family == "envelope":
        split = rng.random() < knobs.envelope_split
        payloads = segment.envelopes(rng, cid, label, steps, split)
    else:
        formats: Sequence[str] = (fmt,)
        both = all(knobs.format_mix.get(f, 0) > 0 for f in GENESYS_FORMATS)
        if both and rng.random() < 0.1:  # a relay that forwards both shapes
            formats = sorted(GENESYS_FORMATS)
        media_less = frozenset({"attributes"}) if knobs.media_less_attributes else frozenset()
        payloads = segment.genesys_payloads(rng, cid, label, steps, formats, media_less=media_less)
    facts = dataclasses.replace(script.facts, drift=tuple(applied))
    family_name: Family = "envelope" if fmt == ENVELOPE else "genesys"
    return Conversation(cid, index, family_name, media, tuple(payloads), facts)


def arrivals(seed: int, n: int, start_ms: int, per_minute: float) -> list[int]:
    """Conversation start times: a Poisson process from `start_ms`."""
    rng = Random(f"{seed}:arrivals")
    times, t = [], start_ms
    for _ in range(n):
        times.append(t)
        t += max(1, round(rng.expovariate(per_minute / 60_000)))
    return times


def generate(
    *,
    conversations: int,
    seed: int,
    profile: str,
    knobs: Knobs,
    progress: Progress | None = None,
) -> Dataset:
    """Generate a data set in memory; `write` puts it on disk."""
    if conversations < 1:
        msg = f"--conversations must be at least 1, got {conversations}"
        raise UsageError(msg)
    progress = progress or NoProgress()
    org = build_org(seed)
    starts = arrivals(seed, conversations, knobs.start_ms, knobs.arrivals_per_minute)
    progress.start("modelling conversations", conversations)
    convs = []
    for i, t0 in enumerate(starts):
        convs.append(make_conversation(i, t0, org, knobs, seed))
        progress.advance()
    progress.start("scheduling deliveries", conversations)
    the_plan = chaos.plan(convs, knobs, seed=seed, org_id=org.org_id, progress=progress.advance)
    progress.start("deriving ground truth", conversations)
    analysis = _analyse(the_plan, convs, knobs)
    records = []
    for conv in convs:
        events = the_plan.delivered[conv.conversation_id]
        distinct = len({e.identity() for e in events})
        records.append(
            truth.derive(
                conv.conversation_id,
                events,
                duplicates_delivered=len(events) - distinct,
                late_delivered=analysis.late_events[conv.conversation_id],
            )
        )
        progress.advance()
    records.sort(key=lambda r: str(r["conversation_id"]))
    _check_unique(records)
    manifest = _manifest(_Run(profile, seed, knobs, convs, records, the_plan, analysis))
    # The pipeline writes only what its media filter keeps; the rest is in the manifest.
    written = [r for r in records if truth.kept(r["media_type"], knobs.media_types)]
    return Dataset(written, the_plan.lines, manifest)


def _check_unique(records: list[Json]) -> None:
    ids = [r["conversation_id"] for r in records]
    if len(set(ids)) != len(ids):
        msg = "two generated conversations share an id; report this with the seed"
        raise AssertionError(msg)


@dataclass(slots=True)
class _Analysis:
    late_events: Counter[str]
    late: list[Json]
    reordered: int
    duplicates_after_end: int


def _analyse(plan: chaos.Plan, convs: Sequence[Conversation], knobs: Knobs) -> _Analysis:
    """Which deliveries come after their conversation would be finalized, and which overtake."""
    grace = seconds_to_ms(knobs.grace_seconds)
    by_conversation: dict[str, list[chaos.Item]] = defaultdict(list)
    for item in plan.items:
        if item.conversation_id is not None and item.events:
            by_conversation[item.conversation_id].append(item)
    late_events: Counter[str] = Counter()
    late: list[Json] = []
    reordered = duplicates_after_end = 0
    for conv in convs:
        seen: dict[tuple[Any, ...], MicroEvent] = {}
        ended_since: int | None = None
        newest = -1
        for item in by_conversation[conv.conversation_id]:
            new = [e for e in item.events if e.identity() not in seen]
            if item.role == "original" and item.payload is not None:
                if item.payload.created_ms < newest:
                    reordered += 1
                newest = max(newest, item.payload.created_ms)
            if ended_since is not None and item.send_ms - ended_since > grace:
                if new:
                    late_events[conv.conversation_id] += len(new)
                    late.append(
                        {
                            "line": item.line,
                            "element": item.element,
                            "conversation_id": conv.conversation_id,
                            "reason": item.late or "natural",
                            "after_end_ms": item.send_ms - ended_since,
                            "micro_events": len(new),
                        }
                    )
                elif item.role == "duplicate":
                    duplicates_after_end += 1
            for e in new:
                seen[e.identity()] = e
            if any(e.action.lower() in chaos.ENDING_ACTIONS for e in new):
                if truth.end_time(seen.values()) is None:
                    ended_since = None
                elif ended_since is None:
                    ended_since = item.send_ms
    return _Analysis(late_events, late, reordered, duplicates_after_end)


def _where(item: chaos.Item) -> Json:
    return {"line": item.line, "element": item.element, "conversation_id": item.conversation_id}


@dataclass(frozen=True, slots=True)
class _Run:
    profile: str
    seed: int
    knobs: Knobs
    convs: Sequence[Conversation]
    records: list[Json]
    plan: chaos.Plan
    analysis: _Analysis


def _manifest(run: _Run) -> Json:
    profile, seed, knobs, convs = run.profile, run.seed, run.knobs, run.convs
    records, plan, analysis = run.records, run.plan, run.analysis
    n = len(convs)
    items = plan.items
    originals = [i for i in items if i.role == "original"]
    duplicates = [i for i in items if i.role == "duplicate"]
    malformed = [i for i in items if i.note.get("marker")]
    heartbeats = [i for i in items if i.role == "heartbeat"]
    set_aside = [r for r in records if not truth.kept(r["media_type"], knobs.media_types)]
    drifted = [i for i in originals if i.drift]
    generated = sum(len(c.events) for c in convs)
    applied = sum(r["event_count"] for r in records)
    ended = sum(1 for r in records if r["status"] == "final")
    by_kind: Counter[str] = Counter(str(i.note["kind"]) for i in malformed)
    drift_kinds: Counter[str] = Counter(k for i in drifted for k in i.drift)
    drift_kinds.update(k for c in convs for k in c.facts.drift)
    sends = [i.send_ms for i in items]
    times = [e.time_ms for c in convs for e in c.events]
    envelopes = Counter(c.conversation_id for c in convs for p in c.payloads if p.fmt == ENVELOPE)
    return {
        "format": MANIFEST_FORMAT,
        "profile": profile,
        "seed": seed,
        "conversations": n,
        "knobs": knobs.as_json(),
        "files": {},
        "span": {
            "first_event": iso(min(times)),
            "last_event": iso(max(times)),
            "first_send": iso(min(sends)),
            "last_send": iso(max(sends)),
        },
        "counts": {
            "conversations": n,
            "ended": ended,
            "never_ended": n - ended,
            "by_media": dict(sorted(Counter(r["media_type"] or "" for r in records).items())),
            "by_family": dict(sorted(Counter(c.family for c in convs).items())),
            "micro_events": applied,
            "micro_events_generated": generated,
            "dropped_micro_events": generated - applied,
            "payloads": len(originals),
            "envelopes": sum(envelopes.values()),
            "multi_envelope_conversations": sum(1 for v in envelopes.values() if v > 1),
            "deliveries": len(plan.lines),
            "array_deliveries": plan.counters["array_deliveries"],
            "duplicates": {
                "payloads": len(duplicates),
                "micro_events": sum(r["duplicate_count"] for r in records),
                "resend": sum(1 for d in duplicates if d.note["kind"] == "resend"),
                "reenvelope": sum(1 for d in duplicates if d.note["kind"] == "reenvelope"),
                "after_finalization": analysis.duplicates_after_end,
            },
            "reordered": analysis.reordered,
            "shuffled_envelopes": plan.counters["shuffled_envelopes"],
            "late": {
                "payloads": len(analysis.late),
                "micro_events": sum(analysis.late_events.values()),
                "delayed": sum(1 for x in analysis.late if x["reason"] == "delayed"),
                "natural": sum(1 for x in analysis.late if x["reason"] == "natural"),
            },
            "drifted": {
                "payloads": len(drifted),
                "conversations": sum(1 for c in convs if c.facts.drift),
                "by_kind": dict(sorted(drift_kinds.items())),
            },
            "malformed": {"total": len(malformed), "by_kind": dict(sorted(by_kind.items()))},
            "dead_letters_expected": len(malformed),
            "heartbeats": len(heartbeats),
            "filtered": {
                "media_types": list(knobs.media_types),
                "conversations": len(set_aside),
                "micro_events": sum(r["event_count"] for r in set_aside),
                "by_media": dict(sorted(Counter(r["media_type"] or "" for r in set_aside).items())),
            },
        },
        "malformed": sorted(
            (
                {
                    **_where(i),
                    "kind": i.note["kind"],
                    "detail": i.note["detail"],
                    "marker": i.note["marker"],
                }
                for i in malformed
            ),
            key=lambda x: (x["line"], x["element"] or 0),
        ),
        "late": sorted(analysis.late, key=lambda x: (x["line"], x["element"] or 0)),
        "duplicates": sorted(
            (
                {**_where(d), "kind": d.note["kind"], "micro_events": len(d.events)}
                for d in duplicates
            ),
            key=lambda x: (x["line"], x["element"] or 0),
        ),
        "drifted": sorted(
            ({**_where(i), "kinds": i.drift} for i in drifted),
            key=lambda x: (x["line"], x["element"] or 0),
        ),
        "conversation_drift": [
            {"conversation_id": c.conversation_id, "kinds": list(c.facts.drift)}
            for c in convs
            if c.facts.drift
        ],
        "never_ended": [
            {"conversation_id": c.conversation_id, "reason": c.facts.never_end_reason}
            for c in convs
            if c.facts.never_end_reason
        ],
        "heartbeats": [{"line": line} for line in sorted(i.line for i in heartbeats)],
        "filtered": [
            {
                "conversation_id": r["conversation_id"],
                "media_type": r["media_type"],
                "status": r["status"],
                "event_count": r["event_count"],
                "duplicate_count": r["duplicate_count"],
                "late_event_count": r["late_event_count"],
            }
            for r in set_aside
        ],
    }


def write(dataset: Dataset, out: Path) -> dict[str, Path]:
    """Write truth, deliveries and manifest (with the others' sizes and hashes) under `out`."""
    truth_bytes = dataset.truth_bytes()
    deliveries_bytes = dataset.deliveries_bytes()
    manifest = dict(dataset.manifest)
    manifest["files"] = {
        TRUTH_FILE: _describe(truth_bytes, len(dataset.truth)),
        DELIVERIES_FILE: _describe(deliveries_bytes, len(dataset.lines)),
    }
    manifest_bytes = orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    paths = {name: out / name for name in (TRUTH_FILE, DELIVERIES_FILE, MANIFEST_FILE)}
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths[TRUTH_FILE].write_bytes(truth_bytes)
        paths[DELIVERIES_FILE].write_bytes(deliveries_bytes)
        paths[MANIFEST_FILE].write_bytes(manifest_bytes + b"\n")
    except OSError as e:
        msg = f"cannot write the data set under {out}: {e.strerror}; choose another --out"
        raise OutputError(msg) from e
    return paths


def _describe(data: bytes, lines: int) -> Json:
    return {"bytes": len(data), "lines": lines, "sha256": hashlib.sha256(data).hexdigest()}
