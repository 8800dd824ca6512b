"""The micro-event vocabulary of SPEC 2: every name and kind the core knows, in one place."""

from __future__ import annotations

from typing import Final

ENVELOPE_NAMES: Final = frozenset(
    {
        "conversation:state",
        "conversation:state:updated",
        "participant:added",
        "voice:call:connected",
        "chat:message",
        "email:message",
        "agent:wrapup",
    }
)
TRANSFER_SUFFIX: Final = ":transferred"
MESSAGE_NAMES: Final = frozenset({"chat:message", "email:message"})

GENESYS_KINDS: Final = frozenset(
    {
        "customer.start",
        "customer.end",
        "flow.start",
        "flow.end",
        "flow.outcome",
        "acd.start",
        "acd.end",
        "user.start",
        "user.end",
        "acw",
        "wrapup",
        "outbound",
        "voicemail.start",
        "voicemail.end",
        "contact",
        "attributes",
    }
)
# Longest first, so that a topic ending in `voicemail.start` is not read as `start`.
GENESYS_KINDS_LONGEST_FIRST: Final = tuple(sorted(GENESYS_KINDS, key=len, reverse=True))

STATE_DISCONNECTED: Final = "disconnected"
STATE_ONHOLD: Final = "onhold"


def is_known_action(action: str, *, envelope: bool) -> bool:
    """Whether a micro-event name (envelope) or kind (Genesys) is in the vocabulary."""
    lowered = action.lower()
    if envelope:
        return lowered in ENVELOPE_NAMES or lowered.endswith(TRANSFER_SUFFIX)
    return lowered in GENESYS_KINDS
