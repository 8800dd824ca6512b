"""Errors of the transform core and how each maps outward.

TransformError
├── ConcurrencyConflict   another writer changed the state first: reload and re-apply
├── StorageUnavailable    a transient store failure: retry the batch (no checkpoint)
└── StateTooLarge         a conversation outgrew every storage limit: dead-letter its events
"""

from __future__ import annotations


class TransformError(Exception):
    """Root of the transform core's errors."""


class ConcurrencyConflict(TransformError):
    """An ETag precondition failed: the stored state is newer than the one we read."""


class StorageUnavailable(TransformError):
    """A store could not be reached or answered with a transient failure."""


class StateTooLarge(TransformError):
    """Encoded state exceeds what the store can hold for one conversation."""
