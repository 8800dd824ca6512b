"""The host.json settings the local host honours, with the Functions runtime defaults."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devstack.errors import SettingError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InitialOffset:
    """Where a partition without a checkpoint starts (`initialOffsetOptions`)."""

    kind: str = "fromstart"  # fromstart | fromend | fromenqueuedtime
    enqueued_time: datetime | None = None

    def starting_position(self) -> str | datetime:
        """The SDK starting position for this option."""
        if self.kind == "fromend":
            return "@latest"
        if self.kind == "fromenqueuedtime" and self.enqueued_time is not None:
            return self.enqueued_time
        return "-1"


@dataclass(frozen=True)
class EventHubsOptions:
    """`extensions.eventHubs` (extension v5+ names and defaults)."""

    max_event_batch_size: int = 100
    min_event_batch_size: int = 1
    max_wait_time: timedelta = timedelta(minutes=1)
    batch_checkpoint_frequency: int = 1
    prefetch_count: int = 300
    initial_offset: InitialOffset = field(default_factory=InitialOffset)


@dataclass(frozen=True)
class HostConfig:
    """What the local host takes from host.json."""

    route_prefix: str = "api"
    function_timeout: timedelta | None = None
    event_hubs: EventHubsOptions = field(default_factory=EventHubsOptions)
    version: str = "2.0"


def parse_timespan(value: str) -> timedelta:
    """Parse a .NET TimeSpan such as `00:05:00`, `1.02:00:00` or `00:00:00.500`."""
    text = value.strip()
    days = 0
    if "." in text.split(":", 1)[0]:
        day_text, text = text.split(".", 1)
        days = int(day_text)
    pieces = text.split(":")
    if len(pieces) != 3:
        msg = f"cannot parse time span {value!r}: expected [d.]hh:mm:ss[.fff]"
        raise SettingError(msg)
    hours, minutes = int(pieces[0]), int(pieces[1])
    seconds = float(pieces[2])
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _lower_keys(section: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in section.items()} if isinstance(section, dict) else {}


def _event_hubs_options(section: dict[str, Any]) -> EventHubsOptions:
    defaults = EventHubsOptions()
    # Extension v4 kept batch settings under eventProcessorOptions / batchCheckpointFrequency.
    legacy = _lower_keys(section.get("eventprocessoroptions"))
    max_batch = section.get("maxeventbatchsize", legacy.get("maxbatchsize"))
    prefetch = section.get("prefetchcount", legacy.get("prefetchcount"))
    offset_section = _lower_keys(section.get("initialoffsetoptions"))
    offset = InitialOffset()
    if offset_section:
        kind = str(offset_section.get("type", "fromStart")).lower()
        when = offset_section.get("enqueuedtimeutc")
        enqueued = None
        if kind == "fromenqueuedtime":
            if not when:
                msg = "initialOffsetOptions type fromEnqueuedTime needs enqueuedTimeUtc"
                raise SettingError(msg)
            enqueued = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
            if enqueued.tzinfo is None:
                enqueued = enqueued.replace(tzinfo=UTC)
        if kind not in {"fromstart", "fromend", "fromenqueuedtime"}:
            msg = (
                f"initialOffsetOptions type {kind!r} is not fromStart, fromEnd or fromEnqueuedTime"
            )
            raise SettingError(msg)
        offset = InitialOffset(kind=kind, enqueued_time=enqueued)
    wait = section.get("maxwaittime")
    return EventHubsOptions(
        max_event_batch_size=int(max_batch or defaults.max_event_batch_size),
        min_event_batch_size=int(section.get("mineventbatchsize") or 1),
        max_wait_time=parse_timespan(str(wait)) if wait else defaults.max_wait_time,
        batch_checkpoint_frequency=int(section.get("batchcheckpointfrequency") or 1),
        prefetch_count=int(prefetch if prefetch is not None else defaults.prefetch_count),
        initial_offset=offset,
    )


def parse_host_config(document: dict[str, Any]) -> HostConfig:
    """Build a HostConfig from a parsed host.json."""
    extensions = _lower_keys(document.get("extensions"))
    http = _lower_keys(extensions.get("http"))
    prefix = http.get("routeprefix", "api")
    timeout_text = document.get("functionTimeout")
    timeout = None
    if timeout_text and str(timeout_text).strip() not in {"-1", "-00:00:01"}:
        timeout = parse_timespan(str(timeout_text))
    return HostConfig(
        route_prefix=str(prefix).strip("/"),
        function_timeout=timeout,
        event_hubs=_event_hubs_options(_lower_keys(extensions.get("eventhubs"))),
        version=str(document.get("version", "2.0")),
    )


def load_host_config(app_dir: Path) -> HostConfig:
    """Read `<app_dir>/host.json`; the runtime refuses to start without it, so do we."""
    path = app_dir / "host.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        msg = f"{path} is missing; every Functions app needs a host.json with version 2.0"
        raise SettingError(msg) from e
    except ValueError as e:
        msg = f"{path} is not valid JSON: {e}"
        raise SettingError(msg) from e
    if not isinstance(document, dict):
        msg = f"{path} must hold a JSON object"
        raise SettingError(msg)
    return parse_host_config(document)
