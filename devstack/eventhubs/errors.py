"""Errors of the Event Hubs emulator.

EmulatorError                 root: anything the emulator refuses or cannot do
├── ConfigError               the Config.json or a command-line value is unusable (exit 2)
├── StorageError              the data dir cannot be read or written (exit 1)
└── AmqpDecodeError           a peer sent bytes that are not valid AMQP (the connection closes)
"""

from __future__ import annotations


class EmulatorError(Exception):
    """Root of every error the emulator raises on purpose."""


class ConfigError(EmulatorError):
    """The configuration cannot be used; the message says which value and what to do."""


class StorageError(EmulatorError):
    """A partition log cannot be opened, recovered or written."""


class AmqpDecodeError(EmulatorError):
    """Bytes that do not decode as AMQP 1.0."""
