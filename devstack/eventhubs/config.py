"""The emulator's entities, read from a file in the official emulator's Config.json shape.

    {"UserConfig": {"NamespaceConfig": [{"Type": "EventHub", "Name": "emulatorNs1",
        "Entities": [{"Name": "genesys-events", "PartitionCount": "4",
                      "ConsumerGroups": [{"Name": "cg1"}]}]}],
     "LoggingConfig": {"Type": "File"}}}

`$Default` always exists. Names match case-insensitively, as in the service.
`LoggingConfig` is accepted and ignored: logging is set on the command line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.eventhubs.errors import ConfigError

DEFAULT_CONSUMER_GROUP = "$Default"
MAX_PARTITIONS = 32


@dataclass(frozen=True, slots=True)
class HubConfig:
    """One event hub: its name, partition count and consumer groups."""

    name: str
    partition_count: int
    consumer_groups: tuple[str, ...]

    @property
    def partition_ids(self) -> list[str]:
        return [str(i) for i in range(self.partition_count)]

    def consumer_group(self, name: str) -> str | None:
        """The configured spelling of consumer group `name`, or None if it does not exist."""
        wanted = name.lower()
        return next((cg for cg in self.consumer_groups if cg.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """The namespace and its hubs."""

    namespace: str
    hubs: tuple[HubConfig, ...]

    def hub(self, name: str) -> HubConfig | None:
        wanted = name.lower()
        return next((hub for hub in self.hubs if hub.name.lower() == wanted), None)


def load_config(path: Path) -> EmulatorConfig:
    """Read and validate a Config.json file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read the config file {path}: {e}") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}") from e
    try:
        return parse_config(document)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def parse_config(document: Any) -> EmulatorConfig:
    """Validate a Config.json document already parsed from JSON."""
    namespaces = _get(document, "UserConfig", dict).get("NamespaceConfig")
    if not isinstance(namespaces, list):
        raise ConfigError("UserConfig.NamespaceConfig must be a list of namespaces")
    event_hub_namespaces = [
        ns for ns in namespaces if isinstance(ns, dict) and ns.get("Type", "EventHub") == "EventHub"
    ]
    if len(event_hub_namespaces) != 1:
        msg = (
            "UserConfig.NamespaceConfig must hold exactly one namespace of Type EventHub,"
            f" found {len(event_hub_namespaces)}"
        )
        raise ConfigError(msg)
    namespace = event_hub_namespaces[0]
    namespace_name = _get(namespace, "Name", str)
    entities = _get(namespace, "Entities", list)
    hubs = tuple(_parse_hub(entity) for entity in entities)
    if not hubs:
        raise ConfigError(f"namespace {namespace_name!r} has no Entities; add at least one hub")
    names = [hub.name.lower() for hub in hubs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"hub names must be unique (case-insensitively): {duplicates}")
    return EmulatorConfig(namespace_name, hubs)


def _parse_hub(entity: Any) -> HubConfig:
    name = _get(entity, "Name", str)
    if not name or "/" in name:
        raise ConfigError(f"hub name {name!r} must be non-empty and contain no '/'")
    raw_count = _get(entity, "PartitionCount", (str, int))
    try:
        count = int(raw_count)
    except ValueError:
        raise ConfigError(f"hub {name!r}: PartitionCount {raw_count!r} is not a number") from None
    if not 1 <= count <= MAX_PARTITIONS:
        msg = f"hub {name!r}: PartitionCount {count} must be between 1 and {MAX_PARTITIONS}"
        raise ConfigError(msg)
    groups = [DEFAULT_CONSUMER_GROUP]
    for group in entity.get("ConsumerGroups") or []:
        group_name = _get(group, "Name", str)
        if not group_name or "/" in group_name:
            raise ConfigError(f"hub {name!r}: consumer group name {group_name!r} is not valid")
        if group_name.lower() not in (g.lower() for g in groups):
            groups.append(group_name)
    return HubConfig(name, count, tuple(groups))


def _get(mapping: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(mapping, dict):
        raise ConfigError(f"expected an object holding {key!r}, found {type(mapping).__name__}")
    value = mapping.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"{key!r} is missing or has the wrong type (found {value!r})")
    return value
