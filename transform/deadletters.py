"""Building dead-letter records (SPEC 7) from rejections."""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Literal

import orjson

from schemas.record import DeadLetter, DeadLetterSource
from schemas.timestamps import iso_ms
from transform.normalize import Rejection


def raw_text(raw: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    """The original bytes as UTF-8 text when they are, else base64."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def raw_bytes(letter: DeadLetter) -> bytes:
    """The original bytes a dead letter kept (the inverse of `raw_text`)."""
    if letter.raw_encoding == "base64":
        return base64.b64decode(letter.raw)
    return letter.raw.encode("utf-8")


def dead_letter_id(stage: str, source: dict[str, Any], payload_index: int | None) -> str:
    """Deterministic for a delivery position, so a redelivered batch rewrites, not duplicates."""
    key = orjson.dumps([stage, source, payload_index], option=orjson.OPT_SORT_KEYS)
    return f"{stage}-{hashlib.sha256(key).hexdigest()[:32]}"


def whole_delivery_letter(
    body: bytes, source: dict[str, Any], *, reason: str, error: str, received_at_ms: int
) -> DeadLetter:
    """A transform dead letter keeping a whole delivery, named after its reason and position."""
    text, encoding = raw_text(body)
    return DeadLetter(
        id=dead_letter_id(f"transform-{reason}", source, None),
        stage="transform",
        reason=reason,
        error=error,
        received_at=iso_ms(received_at_ms),
        source=DeadLetterSource.model_validate(source),
        raw=text,
        raw_encoding=encoding,
    )


def make_dead_letter(
    rejection: Rejection,
    *,
    stage: Literal["ingest", "transform"],
    source: dict[str, Any],
    received_at_ms: int,
    letter_id: str | None = None,
) -> DeadLetter:
    """A dead letter holding the rejected bytes whole."""
    text, encoding = raw_text(rejection.raw)
    return DeadLetter(
        id=letter_id or dead_letter_id(stage, source, rejection.payload_index),
        stage=stage,
        reason=str(rejection.reason),
        error=rejection.error,
        received_at=iso_ms(received_at_ms),
        source=DeadLetterSource.model_validate(source),
        raw=text,
        raw_encoding=encoding,
    )
