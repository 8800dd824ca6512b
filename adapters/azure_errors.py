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
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError

from transform.errors import StorageUnavailable

log = logging.getLogger(__name__)

# The Functions retry policy handles outages; the SDK only rides out blips.
CLIENT_OPTIONS: dict[str, Any] = {
    "retry_total": 2,
    "retry_backoff_factor": 0.4,
    "connection_timeout": 5,
    "read_timeout": 30,
}


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
