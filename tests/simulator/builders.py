"""Hand-built micro-events for the truth tests: times in seconds after T0, ids spelled out."""

from __future__ import annotations

from typing import Any

from simulator.generate.model import ENVELOPE, NOTIFICATION, MicroEvent
from simulator.timeutil import iso

T0 = 1_795_507_200_000  # 2026-11-24T08:00:00.000Z


def at(seconds: float) -> int:
    return T0 + round(seconds * 1000)


def when(seconds: float) -> str:
    return iso(at(seconds))


def envelope(
    cid: str, created: float, *details: tuple[str, float, dict[str, Any]], media: str = "voice"
) -> list[MicroEvent]:
    """The micro-events of one envelope: (name, time, data) with sequences 1, 2, …"""
    return [
        MicroEvent(cid, ENVELOPE, name, at(t), at(created), seq, media, data)
        for seq, (name, t, data) in enumerate(details, start=1)
    ]


def genesys(
    cid: str,
    kind: str,
    t: float,
    who: tuple[str, str],
    *,
    media: str = "VOICE",
    fmt: str = NOTIFICATION,
    **body: Any,
) -> MicroEvent:
    """One Genesys micro-event of participant/session `who`."""
    fields = {"participantId": who[0], "sessionId": who[1], **body}
    return MicroEvent(cid, fmt, kind, at(t), at(t), None, media, fields)
