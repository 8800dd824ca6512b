"""Errors of the ingest core; each knows the HTTP answer it becomes (SPEC 6).

IngestError                       root: `status` (HTTP) and `code` (stable, for bodies and metrics)
├── RequestRefused                refused before anything is stored or sent
│   ├── SignatureMismatch         401  WEBHOOK_SECRET is set and X-Signature-256 is missing/wrong
│   ├── BodyTooLarge              413  body, array length, micro-event count or one payload
│   └── UnsupportedContentType    415  not `application/json` (UTF-8)
└── Unavailable                   503  with Retry-After: the sender must retry; nothing acknowledged
    ├── CircuitOpen               503  the breaker is open: answered at once, nothing attempted
    ├── PublishFailed             503  Event Hubs send failed or timed out
    ├── DeadLetterStoreFailed     503  the dead letters of a rejected payload could not be stored
    └── NotConfigured             503  app settings missing or malformed (the message says which)

A body with nothing acceptable is not an error: it is an answer (400, dead letters stored first).
"""

from __future__ import annotations


class IngestError(Exception):
    """Root of the ingest errors."""

    status: int = 400
    code: str = "ingest-error"


class RequestRefused(IngestError):
    """The request is refused as a whole; nothing was stored or sent."""


class SignatureMismatch(RequestRefused):
    """HMAC-SHA256 signature missing, malformed or not matching the body."""

    status = 401
    code = "invalid-signature"


class BodyTooLarge(RequestRefused):
    """A size limit of the request was passed."""

    status = 413
    code = "too-large"


class UnsupportedContentType(RequestRefused):
    """The body is not declared as UTF-8 JSON."""

    status = 415
    code = "unsupported-content-type"


class Unavailable(IngestError):
    """A dependency failed: answer 503 with Retry-After so the sender retries."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after_seconds: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class CircuitOpen(Unavailable):
    """The breaker around the producer is open."""

    code = "circuit-open"


class PublishFailed(Unavailable):
    """Event Hubs did not confirm the send (error or timeout)."""

    code = "publish-failed"


class DeadLetterStoreFailed(Unavailable):
    """Dead letters could not be stored, so the rejection cannot be acknowledged."""

    code = "deadletter-store-failed"


class NotConfigured(Unavailable):
    """The function app's settings are missing or malformed."""

    code = "not-configured"
