"""Shared access signatures: check a client's token against the key configured for the stack.

    SharedAccessSignature sr=<url-encoded resource>&sig=<url-encoded signature>
                          &se=<expiry, unix s>&skn=<key name>     (one line)

The signature is base64(HMAC-SHA256(key, "<sr as written in the token>\\n<se>")), the string
both SDKs sign. A connection holds the claims its valid `$cbs` put-tokens granted; a link may
attach to an entity when a claim on it or on one of its parents is unexpired, as in the service.
Refusals read like the service's (`InvalidSignature: …`, `ExpiredToken: …`, `InvalidAudience: …`)
and add what to fix. Pure: the caller passes the time.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field
from urllib.parse import unquote, unquote_plus

DEFAULT_KEY_NAME = "RootManageSharedAccessKey"
DEFAULT_KEY = "SAS_KEY_VALUE"  # the official emulator's well-known key; nothing secret
SAS_TOKEN_TYPE = "servicebus.windows.net:sastoken"
TOKEN_PREFIX = "SharedAccessSignature "

Path = tuple[str, ...]


class Unauthorized(Exception):
    """A token or request the service would refuse with 401; the message says why."""


@dataclass(frozen=True, slots=True)
class SharedAccessKey:
    """The one shared access policy of the emulated namespace (name and key)."""

    name: str = DEFAULT_KEY_NAME
    key: str = field(default=DEFAULT_KEY, repr=False)

    def sign(self, resource: str, expiry_s: int) -> str:
        """The base64 signature of `resource` (as written in the token) and `expiry_s`."""
        digest = hmac.new(
            self.key.encode("utf-8"), f"{resource}\n{expiry_s}".encode(), hashlib.sha256
        ).digest()
        return base64.b64encode(digest).decode("ascii")


def entity_path(uri: str) -> Path:
    """The path of an audience or address, case-folded: `sb://host:5672/Hub/x` -> ('hub', 'x').

    The host is ignored: clients name the emulator `localhost`, `127.0.0.1` or anything else.
    """
    rest = uri.split("://", 1)[1].partition("/")[2] if "://" in uri else uri
    return tuple(part.lower() for part in rest.split("/") if part)


def covers(granted: Path, wanted: Path) -> bool:
    """A claim on an entity covers the entity and everything under it."""
    return wanted[: len(granted)] == granted


def _fields(token: str) -> dict[str, str]:
    if not token.startswith(TOKEN_PREFIX):
        msg = f"MalformedToken: a shared access signature starts with {TOKEN_PREFIX!r}"
        raise Unauthorized(msg)
    fields: dict[str, str] = {}
    for part in token[len(TOKEN_PREFIX) :].split("&"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    missing = [name for name in ("sr", "sig", "se", "skn") if not fields.get(name)]
    if missing:
        msg = f"MalformedToken: the shared access signature has no {', '.join(missing)}"
        raise Unauthorized(msg)
    return fields


def verify_token(token: str, key: SharedAccessKey, audience: str, now_s: int) -> int:
    """Check a SAS token for `audience`; return its expiry (unix s) or raise `Unauthorized`."""
    fields = _fields(token)
    key_name = unquote_plus(fields["skn"])
    if key_name != key.name:
        msg = (
            "InvalidSignature: The token has an invalid signature. The namespace has no"
            f" shared access policy {key_name!r}; the emulator's is {key.name!r} (devstack"
            " connection strings name it)."
        )
        raise Unauthorized(msg)
    try:
        expiry_s = int(fields["se"])
    except ValueError:
        raise Unauthorized(f"MalformedToken: expiry se={fields['se']!r} is not a number") from None
    expected = key.sign(fields["sr"], expiry_s)
    if not hmac.compare_digest(unquote(fields["sig"]).encode(), expected.encode()):
        msg = (
            "InvalidSignature: The token has an invalid signature. Sign it with the key"
            f" configured for the emulator's policy {key.name!r}."
        )
        raise Unauthorized(msg)
    if expiry_s <= now_s:
        expired = dt.datetime.fromtimestamp(expiry_s, tz=dt.UTC).isoformat()
        msg = f"ExpiredToken: The token is expired. Expiration time: '{expiry_s}' ({expired})"
        raise Unauthorized(msg)
    if not covers(entity_path(unquote_plus(fields["sr"])), entity_path(audience)):
        msg = (
            "InvalidAudience: The authorization header contains a token with a wrong audience."
            f" The token is for {unquote_plus(fields['sr'])!r}, the claim for {audience!r}."
        )
        raise Unauthorized(msg)
    return expiry_s


@dataclass
class Claims:
    """What a connection's put-tokens granted: entity paths and until when (unix s)."""

    _granted: dict[Path, int] = field(default_factory=dict)

    def grant(self, audience: str, expiry_s: int) -> None:
        path = entity_path(audience)
        self._granted[path] = max(expiry_s, self._granted.get(path, 0))

    def allow(self, wanted: Path, now_s: int) -> bool:
        """Whether an unexpired claim covers `wanted`."""
        return any(
            expiry_s > now_s and covers(granted, wanted)
            for granted, expiry_s in self._granted.items()
        )
