"""Schema drift, the way Genesys releases it, in two kinds.

Model drift changes what happened as the pipeline must report it: a new micro-event name (it
shows in `unknown_events` and the lifecycle), a new media type, a new state value, enum values
in another case (kept as received where the record keeps strings). It is applied to steps before
they become micro-events, so the truth sees it.

Render drift changes only the bytes: unknown fields, numbers as strings, missing optional
fields, other timestamp notations, a misleading `updatedTimestamp`, a single skill id as a plain
string. It must not change the record, so the truth never sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from random import Random
from typing import Any

from simulator.generate.model import ENVELOPE, EVENTBRIDGE
from simulator.generate.steps import Step
from simulator.timeutil import HOUR, SECOND, iso, iso_offset, parse_iso

Json = dict[str, Any]

NEW_ENVELOPE_NAMES = (
    "conversation:sentiment:updated",
    "voice:call:recording:started",
    "agent:assist:suggestion",
    "conversation:summary:ready",
    "Participant:Attributes:Changed",
    "journey:action:triggered",
)
NEW_GENESYS_KINDS = ("transcription", "sentiment.updated", "summary.ready", "journey.action")
NEW_ENVELOPE_MEDIA = ("cobrowse", "Messaging", "sms", "screenshare")
NEW_GENESYS_MEDIA = ("COBROWSE", "MESSAGE", "CALLBACK", "SCREENSHARE")
NEW_STATUSES = ("alerting", "dialing", "contacting", "Parked")
UNKNOWN_FIELDS: tuple[tuple[str, Any], ...] = (
    ("divisionId", "d6e3b0f4-5c1e-4b7a-9a35-2f0c8e9d1a77"),
    ("externalTag", "crm-7731"),
    ("utilizationLabelId", None),
    ("journeyContext", {"customer": {"id": "c-1", "idType": "cookie"}, "triggeringAction": None}),
    ("featureFlags", ["copilot", "summaries"]),
    ("protocolCallId", "a84b4c76e66710@198.51.100.7"),
    ("conversationExternalReferences", []),
)


def _case_variant(rng: Random) -> Callable[[str], str]:
    return rng.choice((str.upper, str.title, lambda s: s[:1].upper() + s[1:]))


# ----------------------------------------------------------------------------- model drift


def new_media(rng: Random, family: str) -> str:
    """A media type the vocabulary does not know yet."""
    return rng.choice(NEW_ENVELOPE_MEDIA if family == ENVELOPE else NEW_GENESYS_MEDIA)


def _gap_index(rng: Random, steps: Sequence[Step]) -> int | None:
    """An index `i` such that a step fits strictly between steps i-1 and i in time."""
    gaps = [i for i in range(1, len(steps)) if steps[i].time_ms - steps[i - 1].time_ms >= 2]
    return rng.choice(gaps) if gaps else None


def unknown_event(rng: Random, steps: list[Step], family: str) -> bool:
    """Insert a micro-event whose name is not in the vocabulary."""
    i = _gap_index(rng, steps)
    if i is None:
        return False
    at = rng.randint(steps[i - 1].time_ms + 1, steps[i].time_ms - 1)
    if family == ENVELOPE:
        name = rng.choice(NEW_ENVELOPE_NAMES)
        fields: Json = {"score": round(rng.uniform(-1, 1), 2), "engine": "sim-nlu-3"}
    else:
        first = steps[0].fields
        name = rng.choice(NEW_GENESYS_KINDS)
        fields = {
            "participantId": first.get("participantId"),
            "sessionId": first.get("sessionId"),
            "direction": first.get("direction"),
            "transcriptId": f"tr-{rng.getrandbits(32):08x}",
        }
    steps.insert(i, Step(name, at, fields))
    return True


def new_status(rng: Random, steps: list[Step]) -> bool:
    """Insert a state value the vocabulary does not know right after the first state."""
    first = next((i for i, s in enumerate(steps) if s.action == "conversation:state"), None)
    if first is None:
        return False
    status = rng.choice(NEW_STATUSES)
    steps.insert(first + 1, Step("conversation:state", steps[first].time_ms, {"status": status}))
    return True


def enum_case(rng: Random, steps: list[Step], family: str) -> None:
    """Spell enum values (and some envelope names) in another case, as a new release might."""
    variant = _case_variant(rng)
    keys = ("status", "direction", "purpose", "disconnectType")
    for step in steps:
        for key in keys:
            value = step.fields.get(key)
            if isinstance(value, str) and rng.random() < 0.6:
                step.fields = {**step.fields, key: variant(value)}
        if family == ENVELOPE and rng.random() < 0.3:
            step.action = variant(step.action)


# ----------------------------------------------------------------------------- render drift


def _details(payload: Json) -> list[Json]:
    details = payload.get("data", {}).get("details", [])
    return details if isinstance(details, list) else []


def _body(payload: Json) -> Json:
    inner = payload.get("detail", payload)
    body = inner.get("eventBody", {})
    return body if isinstance(body, dict) else {}


def unknown_field(rng: Random, payload: Json, fmt: str) -> bool:
    name, value = rng.choice(UNKNOWN_FIELDS)
    if fmt == ENVELOPE:
        details = _details(payload)
        targets = [payload, payload["data"], payload.get("metadata", {})]
        targets += details + [d["data"] for d in details]
    else:
        inner = payload.get("detail", payload)
        targets = [payload, inner, _body(payload), inner.get("metadata", {})]
    target = rng.choice(targets)
    if name in target:
        return False
    target[name] = value
    return True


def numbers_as_strings(rng: Random, payload: Json, fmt: str) -> bool:
    """Numbers the source suddenly sends as numeric strings."""
    changed = False
    if fmt == ENVELOPE:
        for d in _details(payload):
            for key in ("duration", "holdDuration"):
                value = d["data"].get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    d["data"][key] = str(value)
                    changed = True
        return changed
    body = _body(payload)
    for key in ("eventTime", "heldDurationMs", "wrapupDurationMs"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and rng.random() < 0.8:
            body[key] = str(value)
            changed = True
    return changed


def sequence_as_string(rng: Random, payload: Json, fmt: str) -> bool:
    if fmt != ENVELOPE:
        return False
    for d in _details(payload):
        d["sequence"] = str(d["sequence"])
    return bool(_details(payload))


def missing_optional(rng: Random, payload: Json, fmt: str) -> bool:
    """Drop a field the record does not depend on."""
    if fmt == ENVELOPE:
        candidates: list[tuple[Json, str]] = [
            (payload, "metadata"),
            (payload, "id"),
            (payload["data"], "createdTimestamp"),
            (payload["data"], "updatedTimestamp"),
        ]
        for d in _details(payload):
            candidates += [(d, "type"), (d["data"], "holdDuration"), (d["data"], "name")]
    else:
        inner = payload.get("detail", payload)
        body = _body(payload)
        candidates = [(inner, "metadata"), (inner, "version"), (body, "acdOutcome")]
        candidates += [(body, "flowId"), (body, "flowOutcomeValue")]
        if fmt == EVENTBRIDGE:
            candidates += [(payload, "account"), (payload, "region"), (payload, "resources")]
            candidates += [(inner, "timestamp")]
    present = [(holder, key) for holder, key in candidates if key in holder]
    if not present:
        return False
    holder, key = rng.choice(present)
    del holder[key]
    return True


def _retime(rng: Random, text: Any) -> Any:
    """The same instant in another accepted notation: an offset, or epoch ms (number or text)."""
    if not isinstance(text, str):
        return text
    ms = parse_iso(text)
    choice = rng.randrange(4)
    if choice == 0:
        return iso_offset(ms, rng.choice((120, 60, -300, 330)))
    if choice == 1:
        return ms
    if choice == 2:
        return str(ms)
    return text.removesuffix("Z") if rng.random() < 0.5 else text  # naive means UTC


def timestamp_format(rng: Random, payload: Json, fmt: str) -> bool:
    if fmt != ENVELOPE:
        return False
    if rng.random() < 0.5:
        payload["createdTimestamp"] = _retime(rng, payload["createdTimestamp"])
    for d in _details(payload):
        if rng.random() < 0.5:
            d["timestamp"] = _retime(rng, d["timestamp"])
    return True


def misleading_updated(rng: Random, payload: Json, fmt: str) -> bool:
    """An `updatedTimestamp` (or EventBridge `time`) that disagrees with the real order."""
    shift = rng.choice((-1, 1)) * rng.randint(5 * SECOND, 2 * HOUR)
    if fmt == ENVELOPE and "updatedTimestamp" in payload["data"]:
        payload["data"]["updatedTimestamp"] = iso(parse_iso(payload["createdTimestamp"]) + shift)
        return True
    if fmt == EVENTBRIDGE:
        payload["time"] = iso(parse_iso(payload["time"]) + shift)[:19] + "Z"
        return True
    return False


def skill_scalar(rng: Random, payload: Json, fmt: str) -> bool:
    """A one-element `skillIds` list sent as a plain string."""
    changed = False
    for d in _details(payload) if fmt == ENVELOPE else []:
        skills = d["data"].get("skillIds")
        if isinstance(skills, list) and len(skills) == 1:
            d["data"]["skillIds"] = skills[0]
            changed = True
    return changed


def field_spelling(rng: Random, payload: Json, fmt: str) -> bool:
    """`wrapUpCode` spelled `wrapupCode` (or back): the rules accept both on any micro-event."""
    changed = False
    if fmt == ENVELOPE:
        for d in _details(payload):
            if "wrapUpCode" in d["data"]:
                d["data"]["wrapupCode"] = d["data"].pop("wrapUpCode")
                changed = True
        return changed
    body = _body(payload)
    if "wrapupCode" in body:
        body["wrapUpCode"] = body.pop("wrapupCode")
        changed = True
    return changed


RENDER: dict[str, Callable[[Random, Json, str], bool]] = {
    "field-spelling": field_spelling,
    "unknown-field": unknown_field,
    "numbers-as-strings": numbers_as_strings,
    "sequence-as-string": sequence_as_string,
    "missing-optional": missing_optional,
    "timestamp-format": timestamp_format,
    "misleading-updated": misleading_updated,
    "skill-scalar": skill_scalar,
}


def render_drift(rng: Random, payload: Json, fmt: str, kinds: Sequence[str]) -> list[str]:
    """Apply one to three render drifts from `kinds` in place; return those that applied."""
    available = [k for k in kinds if k in RENDER]
    if not available:
        return []
    chosen = rng.sample(available, min(len(available), rng.randint(1, 3)))
    return [kind for kind in sorted(chosen) if RENDER[kind](rng, payload, fmt)]
