"""Generation knobs and the named profiles that preset them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from simulator.errors import UsageError
from simulator.generate.model import FORMATS, MEDIA_TYPES
from simulator.timeutil import DEFAULT_START, parse_iso
from transform.media import MediaFilter
from transform.state import DEFAULT_GRACE_SECONDS

# Drift that the record must not show (rendering) and drift that it must (model).
RENDER_DRIFT: Final = (
    "unknown-field",
    "field-spelling",
    "numbers-as-strings",
    "sequence-as-string",
    "missing-optional",
    "timestamp-format",
    "misleading-updated",
    "skill-scalar",
)
MODEL_DRIFT: Final = ("unknown-event", "enum-case", "new-media-type", "new-status")
DRIFT_KINDS: Final = RENDER_DRIFT + MODEL_DRIFT

MALFORMED_KINDS: Final = (
    "invalid-json",
    "truncated",
    "not-object",
    "unrecognised-shape",
    "missing-conversation-id",
    "bad-timestamp",
    "bad-sequence",
    "bad-detail",
)

RATE_FIELDS: Final = (
    "foreign_topic_rate",
    "heartbeat_rate",
    "duplicate_rate",
    "reorder_rate",
    "shuffle_rate",
    "late_rate",
    "drift_rate",
    "malformed_rate",
    "array_rate",
    "envelope_split",
    "never_end_rate",
    "weird_id_rate",
    "hold_rate",
    "transfer_rate",
    "late_wrapup_rate",
    "wrapup_timeout_rate",
)

DEFAULT_MEDIA_MIX: Final = {"voice": 55.0, "chat": 20.0, "email": 12.0, "video": 5.0, "task": 8.0}


@dataclass(frozen=True, slots=True)
class Knobs:
    """Every setting that shapes a generated data set; all of them go into the manifest."""

    start: str = DEFAULT_START
    arrivals_per_minute: float = 30.0
    media_mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MEDIA_MIX))
    format_mix: Mapping[str, float] = field(default_factory=lambda: {"envelope": 1.0})
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    reorder_window_seconds: float = 30.0
    shuffle_rate: float = 0.0
    late_rate: float = 0.0
    drift_rate: float = 0.0
    drift_kinds: tuple[str, ...] = DRIFT_KINDS
    malformed_rate: float = 0.0
    malformed_kinds: tuple[str, ...] = MALFORMED_KINDS
    array_rate: float = 0.0
    envelope_split: float = 0.0
    never_end_rate: float = 0.0
    weird_id_rate: float = 0.0
    hold_rate: float = 0.35
    transfer_rate: float = 0.2
    late_wrapup_rate: float = 0.0
    wrapup_timeout_rate: float = 0.03
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    # The route's knobs, all off by default (existing profiles generate the same bytes):
    media_types: tuple[str, ...] = ()
    """The pipeline's INGEST_MEDIA_TYPES the truth assumes (lower case; empty: every type)."""
    media_less_attributes: bool = False
    """Genesys `attributes` events without `mediaType`, as Genesys sends them."""
    foreign_topic_rate: float = 0.0
    """Conversations with one Genesys-shaped event of a non-detail topic (a dead letter)."""
    heartbeat_rate: float = 0.0
    """Conversations near which a relay forwards a Notifications API heartbeat."""

    @property
    def start_ms(self) -> int:
        return parse_iso(self.start)

    def as_json(self) -> dict[str, Any]:
        """The knobs as plain JSON values, for the manifest."""
        out = dataclasses.asdict(self)
        out["media_mix"] = dict(self.media_mix)
        out["format_mix"] = dict(self.format_mix)
        out["drift_kinds"] = list(self.drift_kinds)
        out["malformed_kinds"] = list(self.malformed_kinds)
        out["media_types"] = list(self.media_types)
        return out


_REALISTIC = Knobs(
    duplicate_rate=0.03,
    reorder_rate=0.05,
    shuffle_rate=0.02,
    late_rate=0.05,
    array_rate=0.1,
    envelope_split=0.8,
    never_end_rate=0.02,
    late_wrapup_rate=0.05,
    wrapup_timeout_rate=0.05,
)

PROFILES: Final[Mapping[str, Knobs]] = {
    "clean": Knobs(),
    "realistic": _REALISTIC,
    "chaos": dataclasses.replace(
        _REALISTIC,
        format_mix={"envelope": 0.6, "eventbridge": 0.2, "notification": 0.2},
        duplicate_rate=0.25,
        reorder_rate=0.35,
        shuffle_rate=0.3,
        late_rate=0.15,
        drift_rate=0.2,
        malformed_rate=0.03,
        array_rate=0.3,
        envelope_split=0.95,
        never_end_rate=0.05,
        weird_id_rate=0.05,
    ),
    "genesys": dataclasses.replace(
        _REALISTIC, format_mix={"eventbridge": 0.5, "notification": 0.5}, shuffle_rate=0.0
    ),
    # What reaches the webhook on the EventBridge route and beside it from a Notifications API
    # relay, with a media filter: every format, media-less `attributes`, topics that are not
    # detail topics, heartbeats, and only voice and chat kept.
    "relay": dataclasses.replace(
        _REALISTIC,
        format_mix={"envelope": 0.2, "eventbridge": 0.5, "notification": 0.3},
        media_mix={"voice": 40.0, "chat": 25.0, "email": 15.0, "video": 5.0, "task": 15.0},
        duplicate_rate=0.05,
        array_rate=0.1,
        media_types=("chat", "voice"),
        media_less_attributes=True,
        foreign_topic_rate=0.1,
        heartbeat_rate=0.1,
    ),
    "mixed": dataclasses.replace(
        _REALISTIC,
        format_mix={"envelope": 0.5, "eventbridge": 0.25, "notification": 0.25},
        duplicate_rate=0.05,
        reorder_rate=0.08,
        shuffle_rate=0.05,
        drift_rate=0.03,
        malformed_rate=0.005,
        array_rate=0.15,
        weird_id_rate=0.01,
    ),
}


def parse_mix(text: str, allowed: tuple[str, ...], what: str) -> dict[str, float]:
    """Parse `voice=5,chat=2` into weights; names outside `allowed` are kept for media only."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            weight = float(value) if sep else 1.0
        except ValueError as e:
            msg = f"{what} weight {value!r} for {name!r} is not a number; write e.g. voice=5,chat=2"
            raise UsageError(msg) from e
        mix[name.strip()] = weight
    _check_mix(mix, allowed, what)
    return mix


def _check_mix(mix: Mapping[str, float], allowed: tuple[str, ...], what: str) -> None:
    if not mix or sum(mix.values()) <= 0 or any(w < 0 for w in mix.values()):
        msg = f"{what} {dict(mix)!r} needs at least one positive weight and no negative ones"
        raise UsageError(msg)
    if what == "format mix":
        unknown = sorted(set(mix) - set(allowed))
        if unknown:
            msg = f"unknown format(s) {unknown} in {what}; choose from {list(allowed)}"
            raise UsageError(msg)


def parse_media_types(text: str) -> tuple[str, ...]:
    """`voice,chat` (any case), parsed by the pipeline's own INGEST_MEDIA_TYPES reader (the
    same text goes to the run's host); empty or `all`: every type."""
    try:
        included = MediaFilter.parse(text).included
    except ValueError as e:
        raise UsageError(str(e)) from e
    return tuple(sorted(included or ()))


def parse_kinds(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    """Parse a comma list of kinds (`all` or empty means every kind)."""
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    if not names or names == ("all",):
        return allowed
    if names == ("none",):
        return ()
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        msg = f"unknown {what} {unknown}; choose from {list(allowed)} (or all / none)"
        raise UsageError(msg)
    return tuple(k for k in allowed if k in names)


def resolve(profile: str, overrides: Mapping[str, Any]) -> Knobs:
    """The knobs of `profile` with every non-None override applied, validated."""
    try:
        base = PROFILES[profile]
    except KeyError as e:
        msg = f"unknown profile {profile!r}; choose from {sorted(PROFILES)}"
        raise UsageError(msg) from e
    changes = {k: v for k, v in overrides.items() if v is not None}
    names = {f.name for f in dataclasses.fields(Knobs)}
    unknown = sorted(set(changes) - names)
    if unknown:
        msg = f"unknown knob(s) {unknown}; known: {sorted(names)}"
        raise UsageError(msg)
    knobs = dataclasses.replace(base, **changes)
    validate(knobs)
    return knobs


def validate(knobs: Knobs) -> None:
    """Raise `UsageError` naming the first knob whose value cannot be used."""
    for name in RATE_FIELDS:
        value = getattr(knobs, name)
        if not 0.0 <= value <= 1.0:
            msg = f"{name.replace('_', '-')} must be between 0 and 1, got {value}"
            raise UsageError(msg)
    if knobs.arrivals_per_minute <= 0:
        msg = f"arrivals-per-minute must be positive, got {knobs.arrivals_per_minute}"
        raise UsageError(msg)
    if knobs.reorder_window_seconds <= 0:
        msg = f"reorder-window must be positive, got {knobs.reorder_window_seconds}"
        raise UsageError(msg)
    if knobs.grace_seconds <= 0:
        msg = f"grace-seconds must be positive, got {knobs.grace_seconds}"
        raise UsageError(msg)
    _check_mix(knobs.media_mix, MEDIA_TYPES, "media mix")
    if any(not m or m != m.lower() for m in knobs.media_types):
        msg = f"media types must be non-empty and lower case, got {list(knobs.media_types)}"
        raise UsageError(msg)
    _check_mix(knobs.format_mix, FORMATS, "format mix")
    for kind in knobs.drift_kinds:
        if kind not in DRIFT_KINDS:
            msg = f"unknown drift kind {kind!r}; choose from {list(DRIFT_KINDS)}"
            raise UsageError(msg)
    for kind in knobs.malformed_kinds:
        if kind not in MALFORMED_KINDS:
            msg = f"unknown malformed kind {kind!r}; choose from {list(MALFORMED_KINDS)}"
            raise UsageError(msg)
    knobs.start_ms  # noqa: B018 - raises UsageError on a bad start
