"""What every conversation script shares: steps, intents, a clock, and the script's helpers.

A script is a list of `Step`s (action, time, fields) in time order, plus the `Facts` the script
meant (holds, transfers, wrap-up), which tests hold against the rule-derived truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from random import Random
from typing import Any

from simulator.generate.model import WRAPUP_TIMEOUT_CODE, Agent, Facts, Org, Queue
from simulator.timeutil import MINUTE, SECOND


@dataclass(slots=True)
class Step:
    """One micro-event as the source emits it, before envelopes and order keys."""

    action: str
    time_ms: int
    fields: dict[str, Any]


@dataclass(slots=True)
class Script:
    """A conversation's steps in time order and what the script meant."""

    steps: list[Step]
    facts: Facts
    media: str


@dataclass(slots=True)
class Intent:
    """Per-conversation decisions taken before the script runs."""

    outbound: bool = False
    holds: int = 0
    transfer: str | None = None  # None, "agent" or "queue"
    wrapup: str = "normal"  # "normal", "late", "timeout" or "none"
    anonymous: bool = False


def decide(
    rng: Random,
    media: str,
    *,
    hold_rate: float,
    transfer_rate: float,
    late_wrapup_rate: float,
    timeout_rate: float,
) -> Intent:
    """Draw the shape of a conversation from the knobs."""
    holds = 0
    if media in ("voice", "video") and rng.random() < hold_rate:
        holds = rng.choice((1, 1, 2, 2, 3))
    transfer = rng.choice(("agent", "queue")) if rng.random() < transfer_rate else None
    roll = rng.random()
    if roll < timeout_rate:
        wrapup = "timeout"
    elif roll < timeout_rate + late_wrapup_rate:
        wrapup = "late"
    elif roll > 0.97:
        wrapup = "none"
    else:
        wrapup = "normal"
    return Intent(
        outbound=media in ("voice", "email") and rng.random() < 0.12,
        holds=holds,
        transfer=transfer,
        wrapup=wrapup,
        anonymous=media == "voice" and rng.random() < 0.03,
    )


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


@dataclass(slots=True)
class Timeline:
    """Appends steps at a moving clock; every step gets a distinct, increasing time."""

    rng: Random
    t: int
    steps: list[Step] = field(default_factory=list)
    side: list[Step] = field(default_factory=list)

    def wait(self, lo_ms: int, hi_ms: int) -> int:
        self.t += self.rng.randint(lo_ms, hi_ms)
        return self.t

    def emit(self, action: str, **fields: Any) -> Step:
        if self.steps and self.t <= self.steps[-1].time_ms:
            self.t = self.steps[-1].time_ms + 1
        step = Step(action, self.t, _present(fields))
        self.steps.append(step)
        return step

    def emit_at(self, time_ms: int, action: str, **fields: Any) -> None:
        """A step beside the main thread (an agent's wrap-up while the customer talks on)."""
        self.side.append(Step(action, time_ms, _present(fields)))

    def finish(self) -> list[Step]:
        """All steps in time order; side steps move by a millisecond to stay distinct."""
        used = {s.time_ms for s in self.steps}
        for step in self.side:
            while step.time_ms in used:
                step.time_ms += 1
            used.add(step.time_ms)
        return sorted(self.steps + self.side, key=lambda s: s.time_ms)


def last_code(steps: list[Step]) -> str | None:
    """The wrap-up code of the last step that carries one."""
    codes = [s.fields.get("wrapUpCode") or s.fields.get("wrapupCode") for s in steps]
    present = [c for c in codes if c]
    return present[-1] if present else None


@dataclass(slots=True)
class ScriptBase:
    """What every script needs: randomness, the org, a clock and the conversation's intent."""

    rng: Random
    org: Org
    media: str
    intent: Intent
    tl: Timeline

    def agent_for(self, queue: Queue, exclude: Agent | None = None) -> Agent:
        skills = set(queue.skill_ids)
        skilled = [a for a in self.org.agents if skills & set(a.skill_ids) and a != exclude]
        return self.rng.choice(skilled or [a for a in self.org.agents if a != exclude])

    def other_queue(self, queue: Queue) -> Queue:
        return self.rng.choice([q for q in self.org.queues if q != queue])

    def acw_ms(self, kind: str) -> int:
        """How long after-call work lasts: quick, slow (past the grace), or timed out."""
        if kind == "timeout":
            return self.org.acw_timeout_ms + self.rng.randint(0, 2 * SECOND)
        if kind == "late":
            return self.rng.randint(70 * SECOND, 10 * MINUTE)
        return self.rng.randint(3 * SECOND, 55 * SECOND)

    def code(self, kind: str, *, by_id: bool) -> str:
        if kind == "timeout":
            return WRAPUP_TIMEOUT_CODE
        code = self.rng.choice(self.org.wrapup_codes)
        return code.id if by_id else code.name

    def duration(self, ms: int) -> float | int:
        """A reported duration in seconds: sometimes whole seconds, else with milliseconds."""
        return ms // 1000 if self.rng.random() < 0.5 else ms / 1000
