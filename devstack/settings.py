"""App settings the way Core Tools reads them, and the well-known local connection strings.

`func start` turns `local.settings.json` `Values` into environment variables of the host, but a
variable already set in the shell wins over the file. The local host does the same.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from adapters.settings import (
    DEV_STORAGE_ACCOUNT,
    DEV_STORAGE_KEY,
    LocalSettings,
    SettingsError,
    dev_storage_connection_string,
    expand_development_storage,
    parse_connection_string,
    read_local_settings,
)
from devstack.errors import SettingError
from devstack.eventhubs.auth import DEFAULT_KEY, DEFAULT_KEY_NAME

__all__ = [
    "DEFAULT_AMQP_PORT",
    "DEFAULT_BLOB_PORT",
    "DEFAULT_EVENTHUBS_HEALTH_PORT",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_QUEUE_PORT",
    "DEFAULT_TABLE_PORT",
    "DEV_STORAGE_ACCOUNT",
    "DEV_STORAGE_KEY",
    "LOCAL_SETTINGS_EXAMPLE_FILE",
    "LOCAL_SETTINGS_FILE",
    "LOOPBACK",
    "LocalSettings",
    "apply_to_environment",
    "dev_storage_connection_string",
    "ensure_local_settings",
    "eventhubs_emulator_connection_string",
    "expand_development_storage",
    "load_local_settings",
    "parse_connection_string",
]

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

# The connection-string helpers and the Azurite development account are the adapters' (one
# reading of settings for the app, its tools and this stack); the ports are the stack's.
DEFAULT_BLOB_PORT = 10000
DEFAULT_QUEUE_PORT = 10001
DEFAULT_TABLE_PORT = 10002
DEFAULT_AMQP_PORT = 5672
DEFAULT_EVENTHUBS_HEALTH_PORT = 5300
DEFAULT_HTTP_PORT = 7071

LOCAL_SETTINGS_FILE = "local.settings.json"
LOCAL_SETTINGS_EXAMPLE_FILE = "local.settings.example.json"


def eventhubs_emulator_connection_string(port: int = DEFAULT_AMQP_PORT) -> str:
    """The official emulator connection string (the key the emulator checks by default), with
    the port only when it is not 5672."""
    endpoint = "sb://localhost" if port == DEFAULT_AMQP_PORT else f"sb://localhost:{port}"
    return (
        f"Endpoint={endpoint};SharedAccessKeyName={DEFAULT_KEY_NAME};"
        f"SharedAccessKey={DEFAULT_KEY};UseDevelopmentEmulator=true;"
    )


def load_local_settings(path: Path) -> LocalSettings:
    """Read local.settings.json; a missing file gives empty settings, a broken one an error."""
    try:
        return read_local_settings(path)
    except SettingsError as e:
        raise SettingError(str(e)) from e


def apply_to_environment(
    values: Mapping[str, str], environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """Copy settings into the environment unless already set there; return the skipped names."""
    target = os.environ if environ is None else environ
    skipped: list[str] = []
    for name, value in values.items():
        if not name:
            continue
        if name in target:
            skipped.append(name)
            continue
        target[name] = value
    return skipped


def ensure_local_settings(project_root: Path) -> tuple[Path, bool]:
    """Create local.settings.json from the example when missing; return (path, created)."""
    target = project_root / LOCAL_SETTINGS_FILE
    if target.exists():
        return target, False
    example = project_root / LOCAL_SETTINGS_EXAMPLE_FILE
    if not example.exists():
        msg = f"neither {target} nor {example} exists; restore {example.name} from git"
        raise SettingError(msg)
    target.write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    logger.info("created local settings path=%s from=%s", target, example.name)
    return target, True
