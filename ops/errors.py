"""The ops tools' errors; each knows its exit code, and its message says what to do.

OpsError                 exit 1
 ├── ConfigError         exit 2: a setting or an argument is missing or malformed
 ├── NotFound            exit 3: the conversation, dead letter or partition does not exist
 ├── Refused             exit 4: unsafe while the consumer owns the partitions (see --force)
 └── Unreachable         exit 5: Event Hubs or Storage did not answer
"""

from __future__ import annotations


class OpsError(Exception):
    """Anything the ops tools report instead of a traceback."""

    exit_code = 1


class ConfigError(OpsError):
    """A setting or an argument is missing or malformed."""

    exit_code = 2


class NotFound(OpsError):
    """What was asked for does not exist."""

    exit_code = 3


class Refused(OpsError):
    """The operation is unsafe right now."""

    exit_code = 4


class Unreachable(OpsError):
    """A service did not answer."""

    exit_code = 5
