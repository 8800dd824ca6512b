"""`connect`: find the integration by name, plan, apply through the port, report the source.

The port is what the command needs from Genesys Cloud, in its own terms; the SDK adapter
(`adapters.genesys_cloud`) implements it and maps every HTTP refusal to a `GenesysError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from adapters.genesys_cloud import Existing, VersionConflict
from ops.genesys.errors import WrongState
from ops.genesys.plan import (
    ENABLED,
    ERROR,
    Desired,
    Plan,
    merged_properties,
    partner_event_source_name,
    plan,
)

log = logging.getLogger(__name__)


class IntegrationsPort(Protocol):
    """Genesys Cloud's Integrations API, as far as `connect` uses it."""

    def organization_id(self) -> str:
        """The id of the organization the OAuth client belongs to."""
        ...

    def find(self, name: str) -> Existing | None:
        """The EventBridge integration with this name; `AmbiguousName` when several."""
        ...

    def get(self, integration_id: str) -> Existing:
        """One integration with its current configuration."""
        ...

    def create(self, name: str) -> str:
        """Create an EventBridge integration (disabled, unconfigured); its id."""
        ...

    def configure(
        self, have: Existing, *, name: str, notes: str, properties: dict[str, object]
    ) -> None:
        """Replace the current configuration (`have.config_version`); `VersionConflict` if stale."""
        ...

    def set_intended_state(self, integration_id: str, state: str) -> None:
        """PATCH the integration's intendedState."""
        ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What `connect` found, did (or would do) and what the AWS half needs."""

    plan: Plan
    dry_run: bool
    integration: Existing | None
    """After applying (before, for a dry run); None for a dry run that would create it."""
    partner_event_source: str


def connect(
    port: IntegrationsPort, want: Desired, *, dry_run: bool, allow_source_change: bool = False
) -> Outcome:
    """Create or update the integration so that it is as `want`; idempotent."""
    source = partner_event_source_name(port.organization_id(), want.event_source_suffix)
    have = port.find(want.name)
    steps = plan(want, have, allow_source_change=allow_source_change)
    if dry_run or steps.is_noop:
        return Outcome(steps, dry_run, have, source)
    integration_id = steps.integration_id or port.create(want.name)
    current = port.get(integration_id)
    if steps.config_changes:
        try:
            _configure(port, current, want)
        except VersionConflict:
            # Someone saved the configuration between our read and write: read it again once.
            log.warning("integration=%s reason=version-conflict action=retry", integration_id)
            current = port.get(integration_id)
            _configure(port, current, want)
    if steps.enable:
        port.set_intended_state(integration_id, ENABLED)
    final = port.get(integration_id)
    if final.reported_state == ERROR:
        raise WrongState(
            f"integration {final.name!r} ({final.id}) was configured but Genesys reports ERROR: "
            f"{final.reported_detail or 'no detail given'}. Check the AWS account id and region; "
            "a suffix already used by another partner event source is refused too"
        )
    return Outcome(steps, dry_run, final, source)


def _configure(port: IntegrationsPort, have: Existing, want: Desired) -> None:
    port.configure(have, name=want.name, notes=want.notes, properties=merged_properties(have, want))
