"""What `ops genesys` itself refuses (Genesys Cloud's own refusals are the adapter's).

OpsError (ops.errors)
 ├── UsageError          exit 2: an argument is missing or malformed
 └── Refused             exit 4
      └── WrongState     the integration is in a state this command must not change

The CLI also maps `adapters.genesys_cloud.GenesysError` (`cli.genesys_exit`: 4 several
integrations of the name, 5 still rate-limited, 7 credentials or a permission refused, 1 any
other refusal), `adapters.settings.SettingsError` (exit 2) and `adapters.errors.Unreachable`
(exit 5).
"""

from __future__ import annotations

from ops.errors import Refused


class WrongState(Refused):
    """The integration is activating, deactivating, in error, or bound to another source."""
