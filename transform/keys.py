"""Reversible, storage-safe keys derived from conversation ids (SPEC 3, 8).

Every byte outside `[A-Za-z0-9_-]` is percent-encoded, so the key has no `/ \\ # ? %` of its
own, no control characters and no dots (no `..` path segments), and decodes back exactly. Ids
whose encoding would pass Table Storage's 1 KiB key limit keep a readable prefix plus a
digest; the record itself always carries the exact id.
"""

from __future__ import annotations

import functools
import hashlib
from urllib.parse import quote, unquote

MAX_KEY_CHARS = 480  # Table keys are <= 1 KiB of UTF-16; ASCII keys of 480 chars stay well inside
_SAFE = "-_"


@functools.lru_cache(maxsize=1 << 16)
def safe_key(conversation_id: str, max_chars: int = MAX_KEY_CHARS) -> str:
    """The storage key for a conversation id (at most `max_chars` long; >= 100)."""
    encoded = quote(conversation_id, safe=_SAFE, encoding="utf-8", errors="surrogatepass")
    # quote() never encodes "." or "~"; we must, so "." cannot form ".." and "~" marks digests.
    encoded = encoded.replace(".", "%2E").replace("~", "%7E")
    if len(encoded) <= max_chars:
        return encoded
    digest = hashlib.sha256(conversation_id.encode("utf-8", "surrogatepass")).hexdigest()
    prefix = encoded[: max_chars - 65]
    if "%" in prefix[-2:]:  # never cut an escape in half
        prefix = prefix[: prefix.rindex("%")]
    return f"{prefix}~{digest}"


def is_digest_key(key: str) -> bool:
    """A key for an over-long id: not reversible, the record holds the id."""
    return "~" in key


def id_from_key(key: str) -> str:
    """Inverse of `safe_key` for ids that fit (see `is_digest_key`)."""
    if is_digest_key(key):
        raise ValueError(f"key {key[:40]!r}… is a digest key; read the id from the record")
    return unquote(key, encoding="utf-8", errors="surrogatepass")
