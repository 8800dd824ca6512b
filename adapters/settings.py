"""App settings (SPEC 8), read once at the edge into typed objects; the core gets plain values.

Every shell reads its settings here: the function app from its app settings, `ops` and the
simulator from the environment over `local.settings.json` `Values` (`app_environment`), so a
setting the app accepts, the tools accept. Names are fixed so that templates, tools and docs
agree. Every connection accepts either a connection string (`<NAME>`) or the Functions
runtime's identity-based form (`<NAME>__fullyQualifiedNamespace` for Event Hubs;
`<NAME>__serviceUri`, `<NAME>__blobServiceUri`, `<NAME>__tableServiceUri` for storage), with an
optional `<NAME>__clientId` naming the user-assigned managed identity to authenticate as.

One error: `SettingsError`, whose message names the setting and says what to do.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from adapters.entity import STATE_SHARDS
from ingest.accept import AcceptanceLimits
from ingest.service import IngestConfig
from transform.media import ALL_MEDIA, MediaFilter
from transform.pii import PiiPolicy, RecordPii
from transform.state import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_IDLE_SECONDS,
    DEFAULT_RETENTION_DAYS,
    Timing,
)

log = logging.getLogger(__name__)

# Defaults, declared once (grace, idle and retention are the core's: `transform.state`; the
# ingest limits and timings too: `ingest.accept.AcceptanceLimits`, `ingest.service.IngestConfig`).
DEFAULT_EVENTHUB_NAME = "genesys-events"
DEFAULT_CONSUMER_GROUP = "$Default"
DEFAULT_STATE_TABLE = "conversationstate"
DEFAULT_RECORDS_CONTAINER = "conversations"
DEFAULT_DEADLETTER_CONTAINER = "deadletter"
HOST_STORAGE = "AzureWebJobsStorage"
"""The Functions host's own storage: Event Hubs checkpoints and ownership, timer locks."""
LOCAL_SETTINGS_FILE = Path("local.settings.json")
DEFAULT_DEADLETTER_RETENTION_DAYS = 30.0
"""DEADLETTER_RETENTION_DAYS: dead letters (raw payloads) are deleted this long after creation."""
MIN_PII_KEY_CHARS = 32
KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("

# The fixed, publicly documented Azurite development account.
DEV_STORAGE_ACCOUNT = "devstoreaccount1"
DEV_STORAGE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEV_STORAGE_HOST = "127.0.0.1"
DEV_BLOB_PORT = 10000
DEV_QUEUE_PORT = 10001
DEV_TABLE_PORT = 10002


class SettingsError(ValueError):
    """A setting that is missing or malformed; the message names it and says what to do."""


# ---------------------------------------------------------------------- connections
@dataclass(frozen=True, slots=True)
class EventHubConnection:
    """How to reach the Event Hubs namespace: a connection string, or a namespace + identity."""

    connection_string: SecretStr | None
    fully_qualified_namespace: str | None
    client_id: str | None = None
    """`<NAME>__clientId`: the user-assigned managed identity to use (None: the default)."""

    def describe(self) -> str:
        """For logs: never the secret."""
        if self.fully_qualified_namespace:
            return f"identity namespace={self.fully_qualified_namespace}"
        return "connection-string"


@dataclass(frozen=True, slots=True)
class StorageConnection:
    """How to reach a storage account: a connection string, or service URIs + identity."""

    connection_string: SecretStr | None
    blob_service_uri: str | None
    table_service_uri: str | None
    client_id: str | None = None
    """`<NAME>__clientId`: the user-assigned managed identity to use (None: the default)."""

    def describe(self) -> str:
        """For logs: never the secret."""
        if self.blob_service_uri or self.table_service_uri:
            return f"identity blob={self.blob_service_uri} table={self.table_service_uri}"
        return "connection-string"


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value and value.strip() else None


def text_setting(env: Mapping[str, str], name: str, default: str) -> str:
    """A text setting: `default` when unset or blank."""
    return _get(env, name) or default


def eventhub_connection(env: Mapping[str, str], name: str) -> EventHubConnection:
    """Read `<name>` or `<name>__fullyQualifiedNamespace`."""
    namespace = _get(env, f"{name}__fullyQualifiedNamespace")
    connection_string = _get(env, name)
    if not namespace and not connection_string:
        raise SettingsError(
            f"set {name} to an Event Hubs connection string, or "
            f"{name}__fullyQualifiedNamespace to <namespace>.servicebus.windows.net"
        )
    return EventHubConnection(
        connection_string=SecretStr(connection_string) if connection_string else None,
        fully_qualified_namespace=namespace,
        client_id=_get(env, f"{name}__clientId"),
    )


def storage_connection(env: Mapping[str, str], name: str) -> StorageConnection:
    """Read `<name>` or its identity-based `__serviceUri` / `__blobServiceUri` / … forms."""
    connection_string = _get(env, name)
    service_uri = _get(env, f"{name}__serviceUri")
    blob_uri = _get(env, f"{name}__blobServiceUri") or service_uri
    table_uri = _get(env, f"{name}__tableServiceUri")
    if table_uri is None and blob_uri is not None and ".blob." in blob_uri:
        table_uri = blob_uri.replace(".blob.", ".table.")
    if not connection_string and not (blob_uri or table_uri):
        raise SettingsError(
            f"set {name} to a storage connection string, or {name}__blobServiceUri and "
            f"{name}__tableServiceUri (or {name}__serviceUri) for an identity-based connection"
        )
    return StorageConnection(
        connection_string=SecretStr(connection_string) if connection_string else None,
        blob_service_uri=blob_uri,
        table_service_uri=table_uri,
        client_id=_get(env, f"{name}__clientId"),
    )


def namespace_of(connection: EventHubConnection) -> str:
    """`<ns>.servicebus.windows.net` (identity), or the `Endpoint=sb://host[:port]` host.

    This is the namespace as the Event Hubs checkpoint store names it in its blob names.
    """
    if connection.fully_qualified_namespace:
        return connection.fully_qualified_namespace
    assert connection.connection_string is not None  # eventhub_connection() guarantees one
    endpoint = parse_connection_string(connection.connection_string.get_secret_value())
    host = urlsplit(endpoint.get("endpoint", "")).netloc
    if host:
        return host
    raise SettingsError(
        "EventHubConnection has no Endpoint=sb://<namespace>/ part: set it to the namespace's "
        "connection string, or set EventHubConnection__fullyQualifiedNamespace"
    )


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


def dev_storage_connection_string(
    *,
    blob_port: int = DEV_BLOB_PORT,
    queue_port: int = DEV_QUEUE_PORT,
    table_port: int = DEV_TABLE_PORT,
    host: str = DEV_STORAGE_HOST,
) -> str:
    """The explicit Azurite connection string (the blob checkpoint store rejects the short form)."""
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={DEV_STORAGE_ACCOUNT};AccountKey={DEV_STORAGE_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{DEV_STORAGE_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue_port}/{DEV_STORAGE_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{DEV_STORAGE_ACCOUNT};"
    )


def expand_development_storage(connection_string: str) -> str:
    """Turn `UseDevelopmentStorage=true` into the explicit Azurite string on the default ports."""
    parts = parse_connection_string(connection_string)
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        return dev_storage_connection_string()
    return connection_string


# ---------------------------------------------------------------------- plain values
def usable_cores() -> int:
    """The CPUs this process may run on: its affinity (`taskset`, a container's cpuset) or
    `PYTHON_CPU_COUNT`, not the machine's count, so workers never take turns on fewer cores."""
    return os.process_cpu_count() or 1


def number_setting(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    """A numeric setting: `default` when unset, else a number >= `minimum` or a clear error."""
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as e:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from e
    if not math.isfinite(value):  # float() takes "nan" and "inf"; no setting means them
        raise SettingsError(f"{name} must be a finite number, got {raw!r}")
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def flag_setting(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A true/false setting (1/0, yes/no, on/off too)."""
    raw = _get(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


# ---------------------------------------------------------------------- personal data
@dataclass(frozen=True, slots=True)
class PiiSettings:
    """`RECORD_PII` and `RECORD_PII_KEY`: what the state and the records hold of phone numbers."""

    mode: RecordPii = RecordPii.KEEP
    key: SecretStr | None = None
    """The HMAC key; required with `hash`, else used only to find hashes made before."""

    @property
    def key_bytes(self) -> bytes | None:
        """The key as HMAC takes it: the UTF-8 bytes of the setting (None: no key)."""
        return self.key.get_secret_value().encode("utf-8") if self.key else None

    @property
    def policy(self) -> PiiPolicy:
        """The core's plain value."""
        return PiiPolicy(self.mode, self.key_bytes or b"")

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        mode: str | None = None,
        key_file: Path | None = None,
    ) -> PiiSettings:
        """Read `RECORD_PII` (or `mode`) and `RECORD_PII_KEY` (or the content of `key_file`)."""
        env = os.environ if env is None else env
        raw_mode = (mode if mode is not None else _get(env, "RECORD_PII")) or RecordPii.KEEP.value
        try:
            chosen = RecordPii(raw_mode.strip().lower())
        except ValueError as e:
            raise SettingsError(f"RECORD_PII must be keep, hash or drop, got {raw_mode!r}") from e
        key = _key_from_file(key_file) if key_file is not None else _get(env, "RECORD_PII_KEY")
        where = f"the key file {key_file}" if key_file is not None else "RECORD_PII_KEY"
        if key is None and chosen is RecordPii.HASH:
            raise SettingsError(
                f"RECORD_PII=hash needs a key: set RECORD_PII_KEY to at least {MIN_PII_KEY_CHARS} "
                "random characters (in Azure the template sets it, a Key Vault reference), or "
                "name a file holding it with --record-pii-key-file"
            )
        if key is not None and key.startswith(KEY_VAULT_REFERENCE):
            # App Service leaves a reference it could not resolve in place, as the value.
            raise SettingsError(
                f"{where} is a Key Vault reference the platform did not resolve: check that the "
                "app identity holds Key Vault Secrets User on the secret record-pii-key and "
                "reaches the vault (the reference's status is on the app's Environment variables "
                "page)"
            )
        if key is not None and len(key) < MIN_PII_KEY_CHARS:
            raise SettingsError(
                f"{where} must hold at least {MIN_PII_KEY_CHARS} characters, it holds {len(key)}: "
                "use a long random value and keep it (another key gives other hashes)"
            )
        return cls(chosen, SecretStr(key) if key is not None else None)


def _key_from_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsError(f"cannot read the key file {path}: {e}") from e
    if not text:
        raise SettingsError(f"the key file {path} is empty: put the RECORD_PII_KEY value in it")
    return text


@dataclass(frozen=True, slots=True)
class DeadLetterRetention:
    """How long dead letters are kept, and whether the timer deletes them (the local stack)."""

    days: float = DEFAULT_DEADLETTER_RETENTION_DAYS
    """DEADLETTER_RETENTION_DAYS, counted from the blob's creation."""
    purge_by_timer: bool = False
    """DEADLETTER_PURGE=timer: the transform timer deletes them (Azurite has no lifecycle rules);
    `off` (the default, Azure): the container's lifecycle rule does."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DeadLetterRetention:
        """`DEADLETTER_RETENTION_DAYS` and `DEADLETTER_PURGE`."""
        purge = (_get(env, "DEADLETTER_PURGE") or "off").lower()
        if purge not in ("off", "timer"):
            raise SettingsError(
                f"DEADLETTER_PURGE must be off (Azure: the lifecycle rule deletes dead letters) "
                f"or timer (the local stack: the transform timer does), got {purge!r}"
            )
        return cls(
            days=number_setting(
                env, "DEADLETTER_RETENTION_DAYS", DEFAULT_DEADLETTER_RETENTION_DAYS
            ),
            purge_by_timer=purge == "timer",
        )


def media_setting(env: Mapping[str, str], name: str) -> MediaFilter:
    """A comma-separated list of media types, any case (unset, empty or `all`: every one)."""
    try:
        return MediaFilter.parse(_get(env, name))
    except ValueError as e:
        raise SettingsError(f"{name}: {e}") from e


# ---------------------------------------------------------------------- the app's settings
@dataclass(frozen=True, slots=True)
class IngestSettings:
    """The webhook's settings (SPEC 6)."""

    eventhub: EventHubConnection
    eventhub_name: str
    dead_letters: StorageConnection
    deadletter_container: str
    webhook_secret: SecretStr | None
    max_body_bytes: int
    send_timeout_seconds: float
    breaker_failure_threshold: int
    breaker_open_seconds: float
    max_payloads: int
    max_micro_events: int
    max_event_bytes: int
    retry_after_seconds: float

    @property
    def secret_bytes(self) -> bytes | None:
        """The webhook secret as the signature check takes it (None: signatures off)."""
        return self.webhook_secret.get_secret_value().encode() if self.webhook_secret else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngestSettings:
        """Read from the environment (app settings / local.settings.json Values)."""
        env = os.environ if env is None else env
        secret = _get(env, "WEBHOOK_SECRET")
        limits, config = AcceptanceLimits(), IngestConfig()  # the core's defaults
        return cls(
            eventhub=eventhub_connection(env, "EventHubConnection"),
            eventhub_name=text_setting(env, "EVENTHUB_NAME", DEFAULT_EVENTHUB_NAME),
            dead_letters=storage_connection(env, "StateStorage"),
            deadletter_container=text_setting(
                env, "DEADLETTER_CONTAINER", DEFAULT_DEADLETTER_CONTAINER
            ),
            webhook_secret=SecretStr(secret) if secret else None,
            max_body_bytes=int(
                number_setting(env, "INGEST_MAX_BODY_BYTES", limits.max_body_bytes, 1)
            ),
            send_timeout_seconds=number_setting(
                env, "INGEST_SEND_TIMEOUT_SECONDS", config.send_timeout_seconds, 0.1
            ),
            breaker_failure_threshold=int(number_setting(env, "BREAKER_FAILURE_THRESHOLD", 5, 1)),
            breaker_open_seconds=number_setting(env, "BREAKER_OPEN_SECONDS", 30.0, 0.1),
            max_payloads=int(number_setting(env, "INGEST_MAX_PAYLOADS", limits.max_payloads, 1)),
            max_micro_events=int(
                number_setting(env, "INGEST_MAX_MICRO_EVENTS", limits.max_micro_events, 1)
            ),
            max_event_bytes=int(
                number_setting(env, "INGEST_MAX_EVENT_BYTES", limits.max_event_bytes, 1024)
            ),
            retry_after_seconds=number_setting(
                env, "INGEST_RETRY_AFTER_SECONDS", config.retry_after_seconds, 0
            ),
        )


@dataclass(frozen=True, slots=True)
class TransformSettings:
    """The consumer's and the timer's settings (SPEC 5, 8)."""

    state: StorageConnection
    state_table: str
    records_container: str
    deadletter_container: str
    grace_seconds: float
    idle_timeout_seconds: float
    retention_days: float
    pii: PiiSettings = field(default_factory=PiiSettings)
    deadletter_retention: DeadLetterRetention = field(default_factory=DeadLetterRetention)
    media: MediaFilter = ALL_MEDIA
    """INGEST_MEDIA_TYPES: the media types whose conversations are kept (empty: all)."""

    @property
    def timing(self) -> Timing:
        """The grace, idle and retention periods in the core's units."""
        return Timing.from_seconds(
            self.grace_seconds, self.idle_timeout_seconds, self.retention_days
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TransformSettings:
        """Read from the environment (app settings / local.settings.json Values)."""
        env = os.environ if env is None else env
        if flag_setting(env, "PARTIAL_SNAPSHOTS", False):
            raise SettingsError(
                "PARTIAL_SNAPSHOTS=true is not supported yet (SPEC 5 makes it optional, off by "
                "default): remove the setting or set it to false"
            )
        return cls(
            state=storage_connection(env, "StateStorage"),
            state_table=text_setting(env, "STATE_TABLE_NAME", DEFAULT_STATE_TABLE),
            records_container=text_setting(env, "RECORDS_CONTAINER", DEFAULT_RECORDS_CONTAINER),
            deadletter_container=text_setting(
                env, "DEADLETTER_CONTAINER", DEFAULT_DEADLETTER_CONTAINER
            ),
            grace_seconds=number_setting(env, "GRACE_PERIOD_SECONDS", DEFAULT_GRACE_SECONDS),
            idle_timeout_seconds=number_setting(env, "IDLE_TIMEOUT_SECONDS", DEFAULT_IDLE_SECONDS),
            retention_days=number_setting(env, "STATE_RETENTION_DAYS", DEFAULT_RETENTION_DAYS),
            pii=PiiSettings.from_env(env),
            deadletter_retention=DeadLetterRetention.from_env(env),
            media=media_setting(env, "INGEST_MEDIA_TYPES"),
        )


@dataclass(frozen=True, slots=True)
class Tuning:
    """The consumer's knobs beyond SPEC 8's settings (all optional app settings)."""

    cache_size: int = 20_000
    """STATE_CACHE_SIZE: conversations whose (state, ETag) a worker keeps in memory."""
    timer_batch: int = 500
    """TIMER_BATCH_SIZE: due conversations the timer takes per round."""
    timer_max_seconds: float = 240.0
    """TIMER_MAX_SECONDS: a timer run stops starting rounds after this long."""
    shards: int = STATE_SHARDS
    """STATE_SHARDS: shards of a new state table (an existing table keeps its own)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Tuning:
        """Read from the environment, defaults for what is not set."""
        env = os.environ if env is None else env
        return cls(
            cache_size=int(number_setting(env, "STATE_CACHE_SIZE", 20_000, 0)),
            timer_batch=int(number_setting(env, "TIMER_BATCH_SIZE", 500, 1)),
            timer_max_seconds=number_setting(env, "TIMER_MAX_SECONDS", 240.0, 1),
            shards=int(number_setting(env, "STATE_SHARDS", STATE_SHARDS, 1)),
        )


@dataclass(frozen=True, slots=True)
class HubSettings:
    """Where the consumer reads (the trigger's hub and group) and keeps its checkpoints."""

    eventhub: EventHubConnection
    eventhub_name: str
    consumer_group: str
    host_storage: StorageConnection

    @property
    def namespace(self) -> str:
        """The namespace as the checkpoint store names it: the host (and port) of the endpoint."""
        return namespace_of(self.eventhub)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HubSettings:
        """EventHubConnection, EVENTHUB_NAME, EVENTHUB_CONSUMER_GROUP and AzureWebJobsStorage."""
        return cls(
            eventhub=eventhub_connection(env, "EventHubConnection"),
            eventhub_name=text_setting(env, "EVENTHUB_NAME", DEFAULT_EVENTHUB_NAME),
            consumer_group=text_setting(env, "EVENTHUB_CONSUMER_GROUP", DEFAULT_CONSUMER_GROUP),
            host_storage=storage_connection(env, HOST_STORAGE),
        )


@dataclass(frozen=True, slots=True)
class PublishSettings:
    """The event hub ingest writes to (for senders that bypass ingest)."""

    eventhub: EventHubConnection
    eventhub_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PublishSettings:
        """`EventHubConnection` and `EVENTHUB_NAME` (SPEC 8)."""
        return cls(
            eventhub_connection(env, "EventHubConnection"),
            text_setting(env, "EVENTHUB_NAME", DEFAULT_EVENTHUB_NAME),
        )


@dataclass(frozen=True, slots=True)
class OutputSettings:
    """Where the pipeline keeps records and dead letters (for readers of its output)."""

    storage: StorageConnection
    records_container: str
    deadletter_container: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OutputSettings:
        """`StateStorage` (`UseDevelopmentStorage=true` spelled out), `RECORDS_CONTAINER` and
        `DEADLETTER_CONTAINER` (SPEC 8)."""
        env = dict(env)
        if env.get("StateStorage"):
            env["StateStorage"] = expand_development_storage(env["StateStorage"])
        return cls(
            storage_connection(env, "StateStorage"),
            text_setting(env, "RECORDS_CONTAINER", DEFAULT_RECORDS_CONTAINER),
            text_setting(env, "DEADLETTER_CONTAINER", DEFAULT_DEADLETTER_CONTAINER),
        )


# ---------------------------------------------------------------------- local.settings.json
LOCAL_HTTP_PORT = "LocalHttpPort"
"""`Host.LocalHttpPort`: the local host's HTTP port when the command line names none."""
MAX_TCP_PORT = 65535


@dataclass(frozen=True)
class LocalSettings:
    """The parts of local.settings.json that tools and the local host use."""

    values: dict[str, str] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def local_http_port(self) -> int | None:
        """`Host.LocalHttpPort` (None: not set); anything but a whole number in 1..65535 is an
        error naming the file and the setting.

        Stricter than Core Tools on purpose: its JSON reader converts what it can ("7072",
        7072.5), reads 0 as unset, and on a value it cannot convert (true, "abc") warns and
        drops the whole file, Values too; a port above 65535 surfaces only as "Port … is
        unavailable". The file's SchemaStore schema says `integer`, which is what we accept.
        """
        if LOCAL_HTTP_PORT not in self.host:
            return None
        port = self.host[LOCAL_HTTP_PORT]
        # bool is an int in Python, and JSON `true` is no port number.
        if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= MAX_TCP_PORT:
            return port
        where = self.path if self.path is not None else "the local settings"
        hint = ""
        if isinstance(port, str) and port.strip().isdecimal() and 1 <= int(port) <= MAX_TCP_PORT:
            hint = ": write the number without quotes"
        elif type(port) is int and port == 0:
            hint = " (Core Tools reads 0 as unset): remove the setting for the default"
        raise SettingsError(
            f"Host.{LOCAL_HTTP_PORT} in {where} must be a whole number from 1 to {MAX_TCP_PORT} "
            f"(the local host's HTTP port), got {json.dumps(port, default=repr)}{hint}"
        )


def read_local_settings(path: Path) -> LocalSettings:
    """Read local.settings.json; a missing file gives empty settings, a broken one an error."""
    if not path.exists():
        log.info("no local settings file path=%s", path)
        return LocalSettings(path=path)
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if text.strip() else {}  # an empty file: no settings
    except (OSError, ValueError) as e:
        msg = f"cannot read {path}: {e}. Fix the JSON or delete the file to recreate it."
        raise SettingsError(msg) from e
    if not isinstance(document, dict):
        raise SettingsError(f"{path} must hold a JSON object with a 'Values' object")
    if document.get("IsEncrypted") is True:
        raise SettingsError(
            f"{path} is encrypted; decrypt it with `func settings decrypt` or recreate it"
        )
    raw_values = document.get("Values") or {}
    if not isinstance(raw_values, dict):
        raise SettingsError(f"'Values' in {path} must be an object of strings")
    values = {str(k): "" if v is None else str(v) for k, v in raw_values.items()}
    host = document.get("Host", {})
    if host is None:  # `"Host": null` reads as no Host section, as `"Values": null` does
        host = {}
    if not isinstance(host, dict):
        msg = f"'Host' in {path} must be an object, like {{\"{LOCAL_HTTP_PORT}\": 7071}}"
        raise SettingsError(msg)
    return LocalSettings(values=values, host=host, path=path)


def app_environment(
    settings_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment over a settings file's `Values`, as `func start` does.

    `settings_file` None means `./local.settings.json` when it exists; a file named explicitly
    must exist.
    """
    path = settings_file or LOCAL_SETTINGS_FILE
    if settings_file is not None and not path.exists():
        raise SettingsError(f"settings file {path} does not exist")
    values = read_local_settings(path).values
    return {**values, **(os.environ if environ is None else environ)}
