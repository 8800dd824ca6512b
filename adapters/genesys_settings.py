"""The Genesys Cloud OAuth client and where its API is, read once from the environment.

The names are the Genesys Cloud Python SDK's (its README reads `GENESYS_CLOUD_CLIENT_ID` and
`GENESYS_CLOUD_CLIENT_SECRET`). The region is the SDK's `PureCloudRegionHosts` name written
the AWS way (`eu-west-1`, as CX as Code's `GENESYSCLOUD_REGION`); `GENESYS_CLOUD_BASE_URL`
names the API base instead (a private gateway, or a local fake in the tests: plain `http`
only on loopback). The login host is derived from it by the SDK (`api.` → `login.`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from adapters.settings import SettingsError

CLIENT_ID = "GENESYS_CLOUD_CLIENT_ID"
CLIENT_SECRET = "GENESYS_CLOUD_CLIENT_SECRET"
REGION = "GENESYS_CLOUD_REGION"
BASE_URL = "GENESYS_CLOUD_BASE_URL"
REGION_FORM = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-\d$")
"""An AWS region code (`eu-west-1`); Genesys Cloud names its regions the same way."""


@dataclass(frozen=True, slots=True)
class GenesysSettings:
    """An OAuth client (Client Credentials grant) and the API it talks to."""

    client_id: str
    client_secret: str = field(repr=False)
    region: str | None
    """`eu-west-1` style; the adapter maps it to the SDK's host table."""
    base_url: str | None
    """Overrides the region: `https://api.example` with no path."""


def genesys_settings(env: Mapping[str, str]) -> GenesysSettings:
    """Read and check the settings; the message names the variable to set."""
    client_id = env.get(CLIENT_ID, "").strip()
    client_secret = env.get(CLIENT_SECRET, "").strip()
    missing = [
        name
        for name, value in ((CLIENT_ID, client_id), (CLIENT_SECRET, client_secret))
        if not value
    ]
    if missing:
        raise SettingsError(
            f"{' and '.join(missing)} not set: create an OAuth client with the Client Credentials "
            "grant in Genesys Cloud (Admin > Integrations > OAuth) and export its id and secret "
            "(docs/connect-genesys.md)"
        )
    region = env.get(REGION, "").strip() or None
    base_url = env.get(BASE_URL, "").strip() or None
    if region is not None and base_url is not None:
        raise SettingsError(f"set {REGION} or {BASE_URL}, not both")
    if region is None and base_url is None:
        raise SettingsError(
            f"{REGION} not set: the region of the Genesys Cloud organization, e.g. eu-west-1 "
            f"(or {BASE_URL} for an API gateway)"
        )
    if region is not None and not REGION_FORM.match(region):
        raise SettingsError(f"{REGION}={region!r} is not a region code like eu-west-1")
    if base_url is not None:
        base_url = _checked_base_url(base_url)
    return GenesysSettings(client_id, client_secret, region, base_url)


def _checked_base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(
            f"{BASE_URL}={value!r} is not an http(s) URL like https://api.mypurecloud.ie"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SettingsError(f"{BASE_URL}={value!r} must have no path: the SDK adds /api/v2/...")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise SettingsError(
            f"{BASE_URL}={value!r}: plain http is only for a local fake on loopback"
        )
    return value.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
