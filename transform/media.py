"""The media-type filter (`INGEST_MEDIA_TYPES`): which conversations the pipeline keeps.

The filter decides per conversation, never per micro-event: a conversation's media type is the
one its record states (docs/record-rules.md), the first non-empty media of its micro-events in
order. Micro-events that carry none (Genesys `attributes`, envelope details of an envelope
without `data.type`) say nothing about it and follow their conversation, whenever they arrive.
So the decision is taken where a conversation would be finalized (`ConversationState.settle`),
on everything its state holds then; a conversation whose media is still unknown at that point
is not kept while a filter is set (no orphan `partial` record of media-less events).

Pure: the filter comes in as a value (the app settings parse it once, at the edge).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.micro_event import MicroEvent, SortKey

EVERY_MEDIA_TYPE = "all"
"""`INGEST_MEDIA_TYPES=all` says explicitly what an empty setting says."""


@dataclass(frozen=True, slots=True)
class MediaFilter:
    """The media types whose conversations are kept (lower case); None keeps every one."""

    included: frozenset[str] | None = None

    @classmethod
    def parse(cls, text: str | None) -> MediaFilter:
        """`voice,chat` (any case, spaces allowed); empty, None or `all`: every media type."""
        if text is None or not text.strip() or text.strip().lower() == EVERY_MEDIA_TYPE:
            return cls()
        names = [part.strip().lower() for part in text.split(",")]
        if not all(names):
            msg = (
                f"media types {text!r} hold an empty name: write a comma-separated list such "
                "as voice,chat,email (or leave it empty for every media type)"
            )
            raise ValueError(msg)
        return cls(frozenset(names))

    @property
    def keeps_all(self) -> bool:
        """No filter: every conversation is kept, and nothing is computed for it."""
        return self.included is None

    def admits(self, media: str | None) -> bool:
        """Whether a conversation of this media type is kept (an unknown one: only if all are)."""
        return self.included is None or (media is not None and media.lower() in self.included)

    def admits_conversation(self, events: Iterable[MicroEvent]) -> bool:
        """Whether a conversation holding `events` is kept (its media computed only if filtered)."""
        return self.included is None or self.admits(conversation_media(events))

    def describe(self) -> str:
        """`all`, or the media types kept, sorted and comma-separated (as the setting reads)."""
        return EVERY_MEDIA_TYPE if self.included is None else ",".join(sorted(self.included))


ALL_MEDIA = MediaFilter()
"""The default: every media type kept, outputs exactly as without a filter."""


def conversation_media(events: Iterable[MicroEvent]) -> str | None:
    """The media type a record of these events states: the first non-empty one in order."""
    first: str | None = None
    first_key: SortKey | None = None
    for event in events:
        if event.media is None:
            continue
        key = event.sort_key
        if first_key is None or key < first_key:
            first, first_key = event.media, key
    return first
