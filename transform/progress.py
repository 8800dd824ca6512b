"""Whether a conversation has ended, maintained incrementally and independent of arrival order.

Only maxima and set unions live here, so adding the same events in any order, any number of
times, gives the same answer; the record derivation uses the very same class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.micro_event import MicroEvent, SortKey
from transform.vocabulary import STATE_DISCONNECTED

Session = tuple[str | None, str | None]


@dataclass(slots=True)
class Progress:
    """The facts that decide `ended` and `ended_at`."""

    last_state_key: SortKey | None = None
    last_state_status: str | None = None
    last_state_ms: int | None = None
    last_customer_end_key: SortKey | None = None
    last_customer_end_ms: int | None = None
    user_started: set[Session] = field(default_factory=set)
    user_ended: set[Session] = field(default_factory=set)

    def clone(self) -> Progress:
        """An independent copy."""
        return Progress(
            self.last_state_key,
            self.last_state_status,
            self.last_state_ms,
            self.last_customer_end_key,
            self.last_customer_end_ms,
            set(self.user_started),
            set(self.user_ended),
        )

    def add(self, event: MicroEvent) -> None:
        """Fold one distinct micro-event in."""
        if event.status is not None and event.action.lower() == "conversation:state":
            key = event.sort_key
            if self.last_state_key is None or key > self.last_state_key:
                self.last_state_key = key
                self.last_state_status = event.status.lower()
                self.last_state_ms = event.timestamp_ms
            return
        if event.kind is None:  # an envelope event other than a state change
            return
        kind = event.kind.lower()
        if kind == "customer.end":
            key = event.sort_key
            if self.last_customer_end_key is None or key > self.last_customer_end_key:
                self.last_customer_end_key = key
                self.last_customer_end_ms = event.timestamp_ms
        elif kind == "user.start":
            self.user_started.add((event.participant_id, event.session_id))
        elif kind == "user.end":
            self.user_ended.add((event.participant_id, event.session_id))

    @property
    def envelope_ended(self) -> bool:
        """The last `conversation:state` in order is `disconnected`."""
        return self.last_state_status == STATE_DISCONNECTED

    @property
    def genesys_ended(self) -> bool:
        """`customer.end` arrived and every `user.start` session has its `user.end`."""
        return self.last_customer_end_key is not None and self.user_started <= self.user_ended

    @property
    def ended(self) -> bool:
        """Ended by either format's rule."""
        return self.envelope_ended or self.genesys_ended

    @property
    def ended_at_ms(self) -> int | None:
        """When it ended (envelope rule first), or None while it has not."""
        if self.envelope_ended:
            return self.last_state_ms
        if self.genesys_ended:
            return self.last_customer_end_ms
        return None
