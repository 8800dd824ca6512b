"""The desired Amazon EventBridge integration, what differs from the one Genesys has, and why not.

Pure: values in, a `Plan` out. The integration is Genesys Cloud's `amazon-eventbridge-source`
type with the configuration properties CX as Code's `genesyscloud_integration` sets for it
(`awsAccountId`, `awsAccountRegion`, `eventSourceSuffix`, `eventFilter`); Genesys creates the
partner event source `aws.partner/genesys.com/cloud/{orgId}/{suffix}` in that AWS account and
region. The topic filters are every detail topic the transform understands, derived from
`transform.vocabulary.GENESYS_KINDS`: one list, so a kind the transform learns is subscribed
by the next run and nothing is subscribed that the transform would count as unknown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adapters.genesys_cloud import INTEGRATION_TYPE, Existing
from adapters.genesys_settings import REGION_FORM
from ops.errors import UsageError
from ops.genesys.errors import WrongState
from schemas.wire import TOPIC_PREFIX
from transform.vocabulary import GENESYS_KINDS

DEFAULT_NAME = "Conversation events to Azure"
DEFAULT_SUFFIX = "conversation-events"
MANAGED_NOTE = (
    "Managed by `python -m ops genesys connect` (genesys-azure-pipeline): the topic filters are "
    "the detail topics the transform understands. Edits here are overwritten on the next run."
)
PARTNER_SOURCE_PREFIX = "aws.partner/genesys.com/cloud/"

ENABLED = "ENABLED"
# IntegrationStatusInfo.code values
ACTIVE = "ACTIVE"
ACTIVATING = "ACTIVATING"
DEACTIVATING = "DEACTIVATING"
ERROR = "ERROR"
SETTLING = frozenset({ACTIVATING, DEACTIVATING})

ACCOUNT = "awsAccountId"
REGION = "awsAccountRegion"
SUFFIX = "eventSourceSuffix"
FILTER = "eventFilter"
SOURCE_FIELDS = (ACCOUNT, REGION, SUFFIX)
"""Changing any of these makes Genesys create another partner event source."""

_ACCOUNT_FORM = re.compile(r"^\d{12}$")
# Genesys's rule for the suffix: up to 64 letters, digits, '.', '-' or '_'.
_SUFFIX_FORM = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def topic_filters() -> tuple[str, ...]:
    """`v2.detail.events.conversation.{id}.<kind>` for every kind the transform knows, sorted."""
    return tuple(f"{TOPIC_PREFIX}{{id}}.{kind}" for kind in sorted(GENESYS_KINDS))


def partner_event_source_name(org_id: str, suffix: str) -> str:
    """The partner event source (and event bus) name the AWS template needs."""
    return f"{PARTNER_SOURCE_PREFIX}{org_id}/{suffix}"


@dataclass(frozen=True, slots=True)
class Desired:
    """The integration as this project wants it."""

    name: str
    aws_account_id: str
    aws_region: str
    event_source_suffix: str
    topic_filters: tuple[str, ...]
    notes: str = MANAGED_NOTE

    def properties(self) -> dict[str, object]:
        """The configuration properties Genesys stores for the integration."""
        return {
            ACCOUNT: self.aws_account_id,
            REGION: self.aws_region,
            SUFFIX: self.event_source_suffix,
            FILTER: list(self.topic_filters),
        }


def desired(
    *,
    aws_account_id: str,
    aws_region: str,
    name: str = DEFAULT_NAME,
    event_source_suffix: str = DEFAULT_SUFFIX,
    filters: Sequence[str] | None = None,
) -> Desired:
    """Check the arguments and build the desired integration; messages name the bad value."""
    if not _ACCOUNT_FORM.match(aws_account_id):
        raise UsageError(f"AWS account id {aws_account_id!r} is not 12 digits")
    if not REGION_FORM.match(aws_region):
        raise UsageError(f"AWS region {aws_region!r} is not a region code like eu-west-1")
    if not _SUFFIX_FORM.match(event_source_suffix):
        raise UsageError(
            f"event source suffix {event_source_suffix!r}: use 1 to 64 letters, digits, '.', '-' "
            "or '_' (Genesys appends it to the partner event source name)"
        )
    if not name.strip() or name != name.strip():
        raise UsageError(f"integration name {name!r} must be non-empty without edge spaces")
    chosen = topic_filters() if filters is None else tuple(sorted(set(filters)))
    if not chosen:
        raise UsageError("no topic filters: the integration would publish nothing")
    return Desired(name, aws_account_id, aws_region, event_source_suffix, chosen)


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One configuration field, before and after."""

    field: str
    before: object
    after: object

    def describe(self) -> str:
        """One line for a person: topic lists as what is added and removed."""
        if isinstance(self.after, list) and isinstance(self.before, list | type(None)):
            before = {str(t) for t in self.before or ()}
            after = {str(t) for t in self.after}
            parts = [f"+{t}" for t in sorted(after - before)]
            parts += [f"-{t}" for t in sorted(before - after)]
            return f"{self.field}: {', '.join(parts)}"
        if self.before is None:
            return f"{self.field}: {self.after!r}"
        return f"{self.field}: {self.before!r} -> {self.after!r}"


@dataclass(frozen=True, slots=True)
class Plan:
    """What `connect` does; empty when the integration is already as desired."""

    integration_id: str | None
    """None: create it."""
    config_changes: tuple[FieldChange, ...]
    enable: bool

    @property
    def create(self) -> bool:
        return self.integration_id is None

    @property
    def is_noop(self) -> bool:
        return not self.create and not self.config_changes and not self.enable

    def steps(self) -> list[str]:
        """The plan in words, one line a step."""
        lines: list[str] = []
        if self.create:
            lines.append(f"create an {INTEGRATION_TYPE} integration")
        lines += [f"set {change.describe()}" for change in self.config_changes]
        if self.enable:
            lines.append(f"set intendedState {ENABLED}")
        return lines


def _comparable(key: str, value: object) -> object:
    # Genesys keeps the list as given; order carries no meaning for the filter.
    if key == FILTER and isinstance(value, list):
        return sorted(str(t) for t in value)
    return value


def config_changes(want: Desired, have: Existing | None) -> tuple[FieldChange, ...]:
    """The configuration fields that differ (all of them for a new integration)."""
    current: Mapping[str, object] = {} if have is None else have.properties
    changes = [
        FieldChange(key, current.get(key), value)
        for key, value in want.properties().items()
        if _comparable(key, current.get(key)) != _comparable(key, value)
    ]
    if have is None or have.config_name != want.name:
        changes.append(FieldChange("name", None if have is None else have.config_name, want.name))
    if have is None or (have.notes or "") != want.notes:
        changes.append(FieldChange("notes", None if have is None else have.notes, want.notes))
    return tuple(changes)


def plan(want: Desired, have: Existing | None, *, allow_source_change: bool = False) -> Plan:
    """What to change; `WrongState` when the integration must not be touched as it is."""
    changes = config_changes(want, have)
    if have is None:
        return Plan(None, changes, enable=True)
    if have.reported_state in SETTLING:
        raise WrongState(
            f"integration {have.name!r} ({have.id}) is {have.reported_state}: wait until it "
            "settles (Admin > Integrations shows it) and run again"
        )
    moved = [c for c in changes if c.field in SOURCE_FIELDS and c.before is not None]
    if moved and not allow_source_change:
        what = ", ".join(c.describe() for c in moved)
        raise WrongState(
            f"integration {have.name!r} ({have.id}) publishes to another partner event source "
            f"({what}). Changing it makes Genesys create a new source and the AWS stack's bus "
            "stays bound to the old one: pass --allow-source-change, then redeploy the template "
            "with the new PartnerEventSourceName (or choose another --name)"
        )
    enable = have.intended_state != ENABLED
    if have.reported_state == ERROR and not changes and not enable:
        raise WrongState(
            f"integration {have.name!r} ({have.id}) is enabled and as configured here, but "
            f"Genesys reports ERROR: {have.reported_detail or 'no detail given'}. Fix the cause "
            "(AWS account id and region, a suffix already used by another source) and run again"
        )
    return Plan(have.id, changes, enable=enable)


def merged_properties(have: Existing | None, want: Desired) -> dict[str, object]:
    """The properties to write: ours over whatever else Genesys keeps for the integration."""
    merged = dict(have.properties) if have is not None else {}
    merged.update(want.properties())
    return merged
