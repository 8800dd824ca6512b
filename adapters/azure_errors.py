"""Mapping Azure SDK failures onto the core's errors.

`ResourceModifiedError` / `ResourceExistsError` (an ETag or existence precondition) become
`ConcurrencyConflict` where the caller asked for one; everything else that is not a plain
"not found" (connection errors, timeouts, throttling, 5xx, even auth) becomes
`StorageUnavailable`: the batch is retried and, on the last attempt, parked as dead letters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import AzureError, HttpResponseError

from transform.errors import StorageUnavailable

log = logging.getLogger(__name__)


@contextmanager
def storage_call(what: str) -> Iterator[None]:
    """Turn any SDK failure inside the block into `StorageUnavailable` naming `what`."""
    try:
        yield
    except AzureError as e:
        status = e.status_code if isinstance(e, HttpResponseError) else None
        code = getattr(e, "error_code", None)
        msg = f"{what} failed (status={status} code={code}): {str(e).splitlines()[0][:200]}"
        raise StorageUnavailable(msg) from e
