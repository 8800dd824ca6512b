"""What `ops genesys` reports instead of a traceback; each error knows its exit code.

OpsError (ops.errors)
 ├── ConfigError         exit 2: a setting or an argument is missing or malformed
 ├── Refused             exit 4
 │    ├── WrongState     the integration is in a state this command must not change
 │    └── AmbiguousName  several EventBridge integrations carry the name
 ├── Unreachable         exit 5: Genesys Cloud did not answer
 │    └── RateLimited    still 429 after honouring Retry-After, or asked to wait too long
 ├── Denied              exit 7: credentials refused (401) or a permission missing (403)
 └── GenesysApiError     exit 1: any other refusal, with Genesys's status and message
"""

from __future__ import annotations

from ops.errors import OpsError, Refused, Unreachable

DENIED_EXIT = 7


class WrongState(Refused):
    """The integration is activating, deactivating, in error, or bound to another source."""


class AmbiguousName(Refused):
    """More than one integration of the type has the name: the command cannot pick one."""


class RateLimited(Unreachable):
    """Genesys Cloud kept answering 429."""


class Denied(OpsError):
    """The OAuth client's credentials or its roles' permissions were refused."""

    exit_code = DENIED_EXIT


class VersionConflict(OpsError):
    """The configuration changed between reading and writing it (409); the service retries."""


class GenesysApiError(OpsError):
    """Genesys Cloud refused a request for another reason; the message carries its own."""
