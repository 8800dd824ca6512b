"""Genesys Cloud's Integrations API through the official Python SDK (`PureCloudPlatformClientV2`).

Implements `ops.genesys.service.IntegrationsPort`; its values (`Existing`) and refusals
(`GenesysError`) are declared here, since the adapter layer sits under the ops shell. The SDK
is a development dependency, not deployed, and importing it takes seconds (thousands of
generated models): it is imported when `GenesysCloudIntegrations.login` runs, never by the
function app.

Two SDK defaults are changed, on this client's transport only. The SDK's urllib3 pool retries
a 429 itself, sleeping whatever `Retry-After` says with no bound and no word to the user, and
has no timeout: here a 429 comes back as an answer, is retried by `_call` honouring
`Retry-After` up to a bound (telling the caller how long it waits), and requests time out.
The SDK's configuration singleton also watches `~/.genesyscloudpython` (the nearest existing
parent, i.e. the whole home directory, when it does not exist) for live reloads; a one-shot
command does not need that, so the watch is dropped.

Every refusal is mapped to a `GenesysError`, naming the permission the endpoint needs
(from the SDK's documentation of each operation).
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from adapters.errors import Unreachable
from adapters.genesys_settings import BASE_URL, CLIENT_ID, CLIENT_SECRET, REGION, GenesysSettings
from adapters.settings import SettingsError

log = logging.getLogger(__name__)

INTEGRATION_TYPE = "amazon-eventbridge-source"

T = TypeVar("T")

PAGE_SIZE = 100
MAX_ATTEMPTS = 5
MAX_WAIT_SECONDS = 60.0
"""A longer Retry-After is reported instead of slept through."""
TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Existing:
    """An integration as Genesys reports it, with its current configuration."""

    id: str
    name: str
    intended_state: str | None
    reported_state: str | None
    """`IntegrationStatusInfo.code`: ACTIVE, ACTIVATING, INACTIVE, DEACTIVATING, ERROR."""
    reported_detail: str | None
    config_version: int | None
    config_name: str | None
    notes: str | None
    properties: Mapping[str, object]
    advanced: Mapping[str, object] = field(default_factory=dict)
    """Kept as Genesys has it: a configuration is replaced whole."""
    credentials: Mapping[str, str] = field(default_factory=dict)
    """Credential type -> credential id; kept as Genesys has it."""


class GenesysError(Exception):
    """Genesys Cloud refused a request (`ops.genesys.cli` says how the command ends on each).

    GenesysError
     ├── GenesysApiError  any other refusal, with Genesys's status and message
     ├── AmbiguousName    several EventBridge integrations carry the name
     ├── RateLimited      still 429 after honouring Retry-After, or asked to wait too long
     ├── Denied           credentials refused (401) or a permission missing (403)
     └── VersionConflict  the configuration changed between reading and writing (409)
    """


class AmbiguousName(GenesysError):
    """More than one integration of the type has the name: the command cannot pick one."""


class RateLimited(GenesysError):
    """Genesys Cloud kept answering 429."""


class Denied(GenesysError):
    """The OAuth client's credentials or its roles' permissions were refused."""


class VersionConflict(GenesysError):
    """The configuration changed between reading and writing it; the service retries."""


class GenesysApiError(GenesysError):
    """Any other refusal; the message carries Genesys's status and its own words."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One API call, as a user reads it in an error."""

    what: str
    endpoint: str
    permission: str | None
    scope: str | None
    """The OAuth scope a user-grant token needs (client-credentials tokens use roles only)."""


TOKEN = Operation("log in", "POST /oauth/token", None, None)
ORGANIZATION = Operation(
    "read the organization", "GET /api/v2/organizations/me", None, "organization:readonly"
)
LIST = Operation(
    "list integrations",
    "GET /api/v2/integrations",
    "integrations:integration:view",
    "integrations:readonly",
)
GET = Operation(
    "read an integration",
    "GET /api/v2/integrations/{id}",
    "integrations:integration:view",
    "integrations:readonly",
)
CONFIG = Operation(
    "read an integration's configuration",
    "GET /api/v2/integrations/{id}/config/current",
    "integrations:integration:view",
    "integrations:readonly",
)
CREATE = Operation(
    "create the integration",
    "POST /api/v2/integrations",
    "integrations:integration:add",
    "integrations",
)
CONFIGURE = Operation(
    "configure the integration",
    "PUT /api/v2/integrations/{id}/config/current",
    "integrations:integration:edit",
    "integrations",
)
ENABLE = Operation(
    "enable the integration",
    "PATCH /api/v2/integrations/{id}",
    "integrations:integration:edit",
    "integrations",
)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds from `now`: delta-seconds or an HTTP date; None when absent."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def server_message(body: object) -> str:
    """Genesys's own words from an error body (`message`, or OAuth's `error_description`)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body.strip():
        return "no message"
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.strip()[:300]
    if not isinstance(parsed, dict):
        return body.strip()[:300]
    text = parsed.get("message") or parsed.get("error_description") or parsed.get("description")
    code = parsed.get("code") or parsed.get("error")
    if text and code:
        return f"{text} ({code})"
    return str(text or code or body.strip()[:300])


class GenesysCloudIntegrations:
    """The port over one authenticated SDK `ApiClient`."""

    def __init__(
        self,
        sdk: Any,
        api_client: Any,
        host: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[str, float], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_attempts: int = MAX_ATTEMPTS,
        max_wait_seconds: float = MAX_WAIT_SECONDS,
    ) -> None:
        self._sdk = sdk
        self._client = api_client
        self._host = host
        self._sleep = sleep
        self._on_wait = on_wait
        self._clock = clock
        self._max_attempts = max_attempts
        self._max_wait = max_wait_seconds
        self._integrations = sdk.IntegrationsApi(api_client)
        self._organizations = sdk.OrganizationApi(api_client)

    @classmethod
    def login(
        cls,
        settings: GenesysSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[str, float], None] | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        max_wait_seconds: float = MAX_WAIT_SECONDS,
        timeout_seconds: float = TIMEOUT_SECONDS,
    ) -> GenesysCloudIntegrations:
        """Import the SDK, point it at the region, and get a Client Credentials token."""
        import PureCloudPlatformClientV2 as sdk

        _drop_config_watch(sdk)
        host = api_host(sdk, settings)
        api_client = sdk.ApiClient(host=host)
        api_client.set_http_client(_http_client(sdk, timeout_seconds))
        port = cls(
            sdk,
            api_client,
            host,
            sleep=sleep,
            on_wait=on_wait,
            max_attempts=max_attempts,
            max_wait_seconds=max_wait_seconds,
        )
        port._call(
            TOKEN,
            lambda: api_client.get_client_credentials_token(
                settings.client_id, settings.client_secret
            ),
        )
        return port

    # ------------------------------------------------------------------ the port
    def organization_id(self) -> str:
        org = self._call(ORGANIZATION, self._organizations.get_organizations_me)
        return str(org.id)

    def find(self, name: str) -> Existing | None:
        matches: list[str] = []
        page = 1
        while True:
            listing = self._call(
                LIST,
                functools.partial(
                    self._integrations.get_integrations,
                    page_size=PAGE_SIZE,
                    page_number=page,
                    integration_type=INTEGRATION_TYPE,
                ),
            )
            for integration in listing.entities or ():
                kind = integration.integration_type.id if integration.integration_type else None
                if kind == INTEGRATION_TYPE and integration.name == name:
                    matches.append(str(integration.id))
            if page >= (listing.page_count or 1) or not listing.entities:
                break
            page += 1
        if len(matches) > 1:
            raise AmbiguousName(
                f"{len(matches)} {INTEGRATION_TYPE} integrations are named {name!r} "
                f"({', '.join(matches)}): rename or delete all but one, or pass another --name"
            )
        return self.get(matches[0]) if matches else None

    def get(self, integration_id: str) -> Existing:
        integration = self._call(GET, lambda: self._integrations.get_integration(integration_id))
        config = self._call(
            CONFIG, lambda: self._integrations.get_integration_config_current(integration_id)
        )
        reported = integration.reported_state
        detail = reported.detail if reported is not None else None
        return Existing(
            id=str(integration.id),
            name=str(integration.name),
            intended_state=integration.intended_state,
            reported_state=reported.code if reported is not None else None,
            reported_detail=(detail.message or detail.localizable_message_code) if detail else None,
            config_version=config.version,
            config_name=config.name,
            notes=config.notes,
            properties=dict(config.properties or {}),
            advanced=dict(config.advanced or {}),
            credentials={
                kind: str(info.id) for kind, info in (config.credentials or {}).items() if info
            },
        )

    def create(self, name: str) -> str:
        integration_type = self._sdk.IntegrationType()
        integration_type.id = INTEGRATION_TYPE
        body = self._sdk.CreateIntegrationRequest()
        body.name = name
        body.integration_type = integration_type
        created = self._call(CREATE, lambda: self._integrations.post_integrations(body=body))
        log.info("integration=%s name=%s action=created", created.id, name)
        return str(created.id)

    def configure(
        self, have: Existing, *, name: str, notes: str, properties: dict[str, object]
    ) -> None:
        body = self._sdk.IntegrationConfiguration()
        body.name = name
        body.notes = notes
        body.version = have.config_version
        body.properties = properties
        body.advanced = dict(have.advanced)
        credentials = {}
        for kind, credential_id in have.credentials.items():
            info = self._sdk.CredentialInfo()
            info.id = credential_id
            credentials[kind] = info
        body.credentials = credentials
        self._call(
            CONFIGURE,
            lambda: self._integrations.put_integration_config_current(have.id, body=body),
        )
        log.info("integration=%s version=%s action=configured", have.id, have.config_version)

    def set_intended_state(self, integration_id: str, state: str) -> None:
        body = self._sdk.Integration()
        body.intended_state = state
        self._call(ENABLE, lambda: self._integrations.patch_integration(integration_id, body=body))
        log.info("integration=%s intended_state=%s action=patched", integration_id, state)

    # ------------------------------------------------------------------ errors
    def _call(self, operation: Operation, request: Callable[[], T]) -> T:
        import urllib3

        api_exception = self._sdk.rest.ApiException
        for attempt in range(1, self._max_attempts + 1):
            try:
                return request()
            except api_exception as e:
                if e.status != 429:
                    raise self._refusal(operation, e) from e
                headers = e.headers or {}
                wait = retry_after_seconds(headers.get("Retry-After"), self._clock())
                if wait is None:
                    wait = float(2 ** (attempt - 1))  # no Retry-After: back off 1, 2, 4 s ...
                if wait > self._max_wait:
                    raise RateLimited(
                        f"Genesys Cloud rate-limited {operation.endpoint} and asks to wait "
                        f"{wait:.0f} s (Retry-After), more than {self._max_wait:.0f} s: "
                        "run again later"
                    ) from e
                if attempt == self._max_attempts:
                    raise RateLimited(
                        f"Genesys Cloud still rate-limits {operation.endpoint} after "
                        f"{attempt} attempts honouring Retry-After: run again later "
                        f"({server_message(e.body)})"
                    ) from e
                log.warning(
                    "endpoint=%s status=429 retry_after_s=%.1f attempt=%d",
                    operation.endpoint,
                    wait,
                    attempt,
                )
                if self._on_wait is not None:
                    self._on_wait(operation.endpoint, wait)
                self._sleep(wait)
            except urllib3.exceptions.HTTPError as e:
                raise Unreachable(
                    f"Genesys Cloud at {self._host} did not answer {operation.endpoint}: {e}"
                ) from e
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _refusal(self, operation: Operation, e: Any) -> Exception:
        status = int(e.status or 0)
        said = server_message(e.body)
        if status == 0:
            return Unreachable(f"Genesys Cloud at {self._host}: {e.reason}")
        if operation is TOKEN and status in (400, 401):
            return Denied(
                f"Genesys Cloud refused the OAuth client credentials ({said}): check "
                f"{CLIENT_ID} and {CLIENT_SECRET}, that the client uses the Client Credentials "
                f"grant, and that the organization is in {self._host} ({REGION} / {BASE_URL}); "
                "a client of another region is unknown there"
            )
        if status == 401:
            return Denied(
                f"Genesys Cloud refused the access token on {operation.endpoint} ({said}): the "
                "OAuth client may have been deleted or its token revoked; run again"
            )
        if status == 403:
            needs = (
                f"the permission {operation.permission}"
                if operation.permission
                else "a permission Genesys named"
            )
            scope = (
                f"; a token from a user grant also needs the OAuth scope {operation.scope}"
                if operation.scope
                else ""
            )
            return Denied(
                f"Genesys Cloud refused to {operation.what} ({operation.endpoint}): it needs "
                f"{needs}, which the OAuth client's roles lack ({said}). Give the client a role "
                f"with it (Admin > Integrations > OAuth > the client > Roles){scope}"
            )
        if status == 409 and operation is CONFIGURE:
            return VersionConflict(
                f"{operation.endpoint}: the configuration changed meanwhile ({said})"
            )
        return GenesysApiError(
            f"Genesys Cloud answered {status} to {operation.endpoint} while trying to "
            f"{operation.what}: {said}"
        )


def api_host(sdk: Any, settings: GenesysSettings) -> str:
    """The API base URL: the settings' own, or the SDK's host for the region."""
    if settings.base_url is not None:
        return settings.base_url
    assert settings.region is not None  # genesys_settings requires one of the two
    try:
        return str(sdk.PureCloudRegionHosts[settings.region.replace("-", "_")].get_api_host())
    except KeyError:
        known = ", ".join(sorted(r.name.replace("_", "-") for r in sdk.PureCloudRegionHosts))
        raise SettingsError(
            f"{REGION}={settings.region!r} is not a Genesys Cloud region this SDK knows: {known} "
            f"(or set {BASE_URL})"
        ) from None


def _drop_config_watch(sdk: Any) -> None:
    config = sdk.configuration
    config.live_reload_config = False
    observer = getattr(config, "_observer", None)
    if observer is not None:
        observer.unschedule_all()


def _http_client(sdk: Any, timeout_seconds: float) -> Any:
    """The SDK's own urllib3 client, with 429s answered to us and a timeout."""
    import urllib3

    client = sdk.default_http_client.DefaultHttpClient()
    pool = client.rest_client.pool_manager
    # Pools are made per host on first use from these keywords.
    pool.connection_pool_kw["retries"] = urllib3.util.Retry(
        total=2, connect=2, read=0, redirect=0, status=0, respect_retry_after_header=False
    )
    pool.connection_pool_kw["timeout"] = urllib3.util.Timeout(
        connect=min(10.0, timeout_seconds), read=timeout_seconds
    )
    return client
