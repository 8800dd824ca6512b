"""App settings the way Core Tools reads them, and the well-known local connection strings.

`func start` turns `local.settings.json` `Values` into environment variables of the host, but a
variable already set in the shell wins over the file. The local host does the same.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.errors import SettingError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

# The fixed, publicly documented Azurite development account.
DEV_STORAGE_ACCOUNT = "devstoreaccount1"
DEV_STORAGE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEFAULT_BLOB_PORT = 10000
DEFAULT_QUEUE_PORT = 10001
DEFAULT_TABLE_PORT = 10002
DEFAULT_AMQP_PORT = 5672
DEFAULT_EVENTHUBS_HEALTH_PORT = 5300
DEFAULT_HTTP_PORT = 7071

LOCAL_SETTINGS_FILE = "local.settings.json"
LOCAL_SETTINGS_EXAMPLE_FILE = "local.settings.example.json"


def dev_storage_connection_string(
    *,
    blob_port: int = DEFAULT_BLOB_PORT,
    queue_port: int = DEFAULT_QUEUE_PORT,
    table_port: int = DEFAULT_TABLE_PORT,
    host: str = LOOPBACK,
) -> str:
    """The explicit Azurite connection string (the blob checkpoint store rejects the short form)."""
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={DEV_STORAGE_ACCOUNT};AccountKey={DEV_STORAGE_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{DEV_STORAGE_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue_port}/{DEV_STORAGE_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{DEV_STORAGE_ACCOUNT};"
    )


def eventhubs_emulator_connection_string(port: int = DEFAULT_AMQP_PORT) -> str:
    """The official emulator connection string, with the port only when it is not 5672."""
    endpoint = "sb://localhost" if port == DEFAULT_AMQP_PORT else f"sb://localhost:{port}"
    return (
        f"Endpoint={endpoint};SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
    )


def expand_development_storage(connection_string: str) -> str:
    """Turn `UseDevelopmentStorage=true` into the explicit Azurite string on the default ports."""
    parts = parse_connection_string(connection_string)
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        return dev_storage_connection_string()
    return connection_string


def parse_connection_string(connection_string: str) -> dict[str, str]:
    """Split `Key=Value;…` into a dict with lower-cased keys (values keep their `=` padding)."""
    result: dict[str, str] = {}
    for part in connection_string.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if sep:
            result[key.strip().lower()] = value.strip()
    return result


@dataclass(frozen=True)
class LocalSettings:
    """The parts of local.settings.json the local host uses."""

    values: dict[str, str] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def local_http_port(self) -> int | None:
        port = self.host.get("LocalHttpPort")
        return int(port) if port is not None else None


def load_local_settings(path: Path) -> LocalSettings:
    """Read local.settings.json; a missing file gives empty settings, a broken one an error."""
    if not path.exists():
        logger.info("no local settings file path=%s", path)
        return LocalSettings(path=path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        msg = f"cannot read {path}: {e}. Fix the JSON or delete the file to recreate it."
        raise SettingError(msg) from e
    if not isinstance(document, dict):
        msg = f"{path} must hold a JSON object with a 'Values' object"
        raise SettingError(msg)
    if document.get("IsEncrypted") is True:
        msg = f"{path} is encrypted; decrypt it with `func settings decrypt` or recreate it"
        raise SettingError(msg)
    raw_values = document.get("Values") or {}
    if not isinstance(raw_values, dict):
        msg = f"'Values' in {path} must be an object of strings"
        raise SettingError(msg)
    values = {str(k): "" if v is None else str(v) for k, v in raw_values.items()}
    host = document.get("Host") or {}
    return LocalSettings(values=values, host=host if isinstance(host, dict) else {}, path=path)


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
