"""The ops tools' errors; each knows its exit code, and its message says what to do.

OpsError                 exit 1
 ├── UsageError          exit 2: an argument is missing or malformed
 ├── NotFound            exit 3: the conversation, dead letter or partition does not exist
 └── Refused             exit 4: unsafe while the consumer owns the partitions (see --force)

Two more come from the adapters and are mapped by the CLI: a setting missing or malformed
(`adapters.settings.SettingsError`, exit 2) and a service that did not answer
(`adapters.errors.Unreachable`, `transform.errors.StorageUnavailable`, exit 5).
"""

from __future__ import annotations

SETTINGS_EXIT = 2
UNREACHABLE_EXIT = 5


class OpsError(Exception):
    """Anything the ops tools report instead of a traceback."""

    exit_code = 1


class UsageError(OpsError):
    """An argument is missing or malformed."""

    exit_code = 2


class NotFound(OpsError):
    """What was asked for does not exist."""

    exit_code = 3


class Refused(OpsError):
    """The operation is unsafe right now."""

    exit_code = 4
