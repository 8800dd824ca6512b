"""The adapters' own error: a service that did not answer a tool's read or write.

Unreachable   Event Hubs or Storage did not answer (the message names the service, the
              setting to check and the permission needed)

The core's ports raise the core's errors instead (`transform.errors.StorageUnavailable`,
`ingest.errors.PublishFailed`), and settings raise `adapters.settings.SettingsError`.
"""

from __future__ import annotations


class Unreachable(Exception):
    """A service did not answer; the message says what to check."""
