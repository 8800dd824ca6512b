"""Errors of the local stack.

DevstackError
 ├── PortInUseError        a port the stack needs is taken
 ├── PartStartError        a part (Azurite, emulator, host) did not become healthy
 └── HostError             the local Functions host cannot run the app
      ├── SettingError     an app setting or connection is missing or malformed
      │                    (also an `adapters.settings.SettingsError`: one kind of error)
      └── IndexingError    function_app.py could not be loaded or indexed
"""

from __future__ import annotations

from adapters.settings import SettingsError


class DevstackError(Exception):
    """Root of every error raised by the local stack."""


class PortInUseError(DevstackError):
    """A loopback port the stack needs is already bound by another process."""


class PartStartError(DevstackError):
    """A part of the stack exited or stayed unhealthy while starting."""


class HostError(DevstackError):
    """The local Functions host cannot run the app as configured."""


class SettingError(HostError, SettingsError):
    """An app setting or connection setting is missing or malformed."""


class IndexingError(HostError):
    """The app's function_app.py could not be imported or indexed."""
