"""Entity-group transactions on the Table service, written and read without the SDK's machinery.

`TableClient.submit_transaction` builds each operation as an HTTP request object, renders the
changeset with the standard library's `email` package and parses the answer with it again:
8.6 ms of CPU for a transaction of 21 operations, most of what the consumer spends per
micro-event against storage (BENCHMARKS.md, P5). This module writes the bytes the SDK writes
(`tests/contract/test_table_batch.py` compares them byte for byte, boundaries and dates aside)
and reads the multipart answer with a few splits. Pure: no I/O; the caller sends the body
through the TableClient's own pipeline (authentication, retries, transport).

The entity types are those our rows hold: text (`Edm.String`), integers (always `Edm.Int64`:
slots and deadlines are epoch milliseconds, past the SDK's Int32 default), bytes (`Edm.Binary`)
and booleans; None is left out as the SDK leaves it out. Anything else is refused.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from adapters.state_plan import TableOp

CRLF = b"\r\n"
DATA_SERVICE_VERSION = "3.0"
MAX_OPERATIONS = 100
"""The service's limit per entity-group transaction (it refuses more with a 400 part)."""
MAX_INT64 = 2**63
MINIMAL_METADATA = "application/json;odata=minimalmetadata"


class BatchResponseError(ValueError):
    """The service's answer to a transaction is not the multipart document it should be."""


@dataclass(frozen=True, slots=True)
class Changeset:
    """What the request of one transaction needs besides the pipeline's own headers."""

    body: bytes
    content_type: str


def batch_headers(api_version: str, content_type: str) -> dict[str, str]:
    """The `$batch` request's headers, as the SDK sends them."""
    return {
        "x-ms-version": api_version,
        "DataServiceVersion": DATA_SERVICE_VERSION,
        "MaxDataServiceVersion": "3.0;NetFx",
        "Content-Type": content_type,
        "Accept": "application/json",
    }


def encode_changeset(
    base_url: str,
    table: str,
    ops: Sequence[TableOp],
    *,
    api_version: str,
    date: str,
    batch_boundary: str,
    changeset_boundary: str,
) -> Changeset:
    """The `$batch` body of one entity-group transaction (one changeset, `ops` in order).

    `base_url` is the account endpoint without a trailing slash (`https://acct.table.core.
    windows.net`, or Azurite's `http://127.0.0.1:10002/devstoreaccount1`); `date` is the
    RFC 1123 time each operation carries, as the SDK's headers policy stamps it.
    """
    if not 1 <= len(ops) <= MAX_OPERATIONS:
        raise ValueError(f"a transaction holds 1 to {MAX_OPERATIONS} operations, not {len(ops)}")
    stamp = f"x-ms-version: {api_version}\r\nDataServiceVersion: {DATA_SERVICE_VERSION}\r\n"
    dates = f"x-ms-date: {date}\r\nDate: {date}\r\n"
    table_url = f"{base_url}/{quote(table, safe='')}"
    delimiter = f"--{changeset_boundary}\r\n".encode()
    parts: list[bytes] = [
        f"--{batch_boundary}\r\nContent-Type: multipart/mixed; boundary={changeset_boundary}"
        "\r\n\r\n".encode()
    ]
    for content_id, op in enumerate(ops):
        parts.append(delimiter)
        parts.append(
            "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: {content_id}\r\n\r\n".encode()
        )
        parts.append(_operation(op, table_url, stamp, dates))
        parts.append(CRLF)
    parts.append(f"--{changeset_boundary}--\r\n\r\n--{batch_boundary}--\r\n".encode())
    return Changeset(b"".join(parts), f"multipart/mixed; boundary={batch_boundary}")


def _operation(op: TableOp, table_url: str, stamp: str, dates: str) -> bytes:
    """One operation as an HTTP request (request line, headers, blank line, body)."""
    if op.kind == "create":
        body = entity_json(op.entity)
        head = (
            f"POST {table_url} HTTP/1.1\r\n{_json_headers(body)}{stamp}"
            f"Accept: {MINIMAL_METADATA}\r\n{dates}\r\n"
        )
        return head.encode() + body
    url = f"{table_url}({_key_path(op.entity)})"
    if op.etag is not None and not _is_header_value(op.etag):
        # written raw into the operation's headers: a line break would forge headers
        raise ValueError(f"not an ETag: {op.etag[:80]!r}")
    if op.kind == "delete":
        head = (
            f"DELETE {url} HTTP/1.1\r\n{stamp}Accept: {MINIMAL_METADATA}\r\n"
            f"If-Match: {op.etag or '*'}\r\n{dates}\r\n"
        )
        return head.encode()
    # update (replace under an ETag) and upsert (replace, unconditional): both a PUT
    if op.kind == "update" and not op.etag:
        raise ValueError("an update needs the ETag it is conditional on")
    body = entity_json(op.entity)
    condition = f"If-Match: {op.etag}\r\n" if op.kind == "update" else ""
    head = (
        f"PUT {url} HTTP/1.1\r\n{_json_headers(body)}{stamp}Accept: application/json\r\n"
        f"{condition}{dates}\r\n"
    )
    return head.encode() + body


def _is_header_value(text: str) -> bool:
    """Printable ASCII only (ETags are the service's: `W/"datetime'…'"`)."""
    return text.isascii() and text.isprintable()


def _json_headers(body: bytes) -> str:
    return f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"


def _key_path(entity: dict[str, object]) -> str:
    """`PartitionKey='…',RowKey='…'`: quotes doubled, then percent-encoded, as the SDK does."""
    keys = []
    for name in ("PartitionKey", "RowKey"):
        value = entity[name]
        if not isinstance(value, str):
            raise TypeError(f"{name} must be text, got {type(value).__name__}")
        keys.append(f"{name}='{quote(value.replace("'", "''"), safe='')}'")
    return ",".join(keys)


def entity_json(entity: dict[str, object]) -> bytes:
    """An entity's JSON with its OData type annotations, as the SDK serializes it."""
    properties: dict[str, object] = {}
    for name, value in entity.items():
        kind = type(value)
        if value is None:
            continue
        if kind is str:
            properties[name] = value
            properties[f"{name}@odata.type"] = "Edm.String"
        elif kind is int:
            if not -MAX_INT64 <= value < MAX_INT64:  # type: ignore[operator]
                raise TypeError(f"property {name!r}: {value} does not fit Edm.Int64")
            properties[name] = str(value)
            properties[f"{name}@odata.type"] = "Edm.Int64"
        elif kind is bytes:
            properties[name] = base64.b64encode(value).decode("ascii")  # type: ignore[arg-type]
            properties[f"{name}@odata.type"] = "Edm.Binary"
        elif kind is bool:
            properties[name] = value
        else:
            raise TypeError(f"property {name!r}: {kind.__name__} is not a type our rows hold")
    return json.dumps(properties).encode("ascii")


# ---------------------------------------------------------------------- the answer
@dataclass(frozen=True, slots=True)
class PartResponse:
    """One operation's answer inside the changeset response."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    """Header names in lower case."""
    body: bytes = b""

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")


@dataclass(frozen=True, slots=True)
class PartFailure:
    """Why a transaction was refused, as its failing part says: status, code, operation."""

    status: int
    code: str
    index: int
    message: str


def decode_batch_response(content_type: str, body: bytes) -> list[PartResponse]:
    """The operation answers of a `$batch` response, in order (changesets flattened)."""
    answers: list[PartResponse] = []
    for headers, content in _multipart(content_type, body):
        inner = headers.get("content-type", "")
        if inner.lower().startswith("multipart/mixed"):
            answers.extend(decode_batch_response(inner, content))
        elif inner.lower().startswith("application/http"):
            answers.append(_http_response(content))
        else:
            raise BatchResponseError(f"a part of type {inner!r} in a batch response")
    return answers


def failure_of(part: PartResponse) -> PartFailure:
    """The code, message and operation index of a failed part (`N:` leads the message)."""
    code = part.headers.get("x-ms-error-code", "")
    message = ""
    try:
        document = json.loads(part.body) if part.body.strip() else {}
    except ValueError:
        document = {}
    error = document.get("odata.error") if isinstance(document, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or code)
        text = error.get("message")
        message = str(text.get("value", "")) if isinstance(text, dict) else str(text or "")
    index_text, colon, _ = message.partition(":")
    # ASCII digits only: str.isdigit() admits "²", which int() refuses
    index = int(index_text) if colon and index_text.isascii() and index_text.isdigit() else 0
    text_of_body = part.body[:200].decode("utf-8", "replace")
    return PartFailure(part.status, code, index, message or text_of_body)


def _multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body: each one's headers (lower-case names) and content."""
    boundary = _boundary(content_type)
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise BatchResponseError(f"no closing boundary {boundary!r} in a batch response")
    parts = []
    for chunk in chunks[1:-1]:
        # a part runs from the line break after its delimiter to the one before the next
        part = _strip_line_break(_strip_line_break(chunk, at_start=True), at_start=False)
        lines, content = _head_and_body(part)
        parts.append((_headers(lines), content))
    return parts


def _strip_line_break(data: bytes, *, at_start: bool) -> bytes:
    """One CRLF (or, leniently, a bare LF) off the start or the end."""
    if at_start:
        return data[2:] if data.startswith(CRLF) else data.removeprefix(b"\n")
    return data[:-2] if data.endswith(CRLF) else data.removesuffix(b"\n")


def _head_and_body(data: bytes) -> tuple[list[bytes], bytes]:
    """The header lines and the body after the first empty line (CRLF, or leniently LF)."""
    ends = [(at, len(mark)) for mark in (CRLF + CRLF, b"\n\n") if (at := data.find(mark)) >= 0]
    if not ends:
        return data.splitlines(), b""
    at, length = min(ends)
    return data[:at].splitlines(), data[at + length :]


def _boundary(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"')
    raise BatchResponseError(f"no boundary in content type {content_type!r}")


def _http_response(content: bytes) -> PartResponse:
    lines, body = _head_and_body(content)
    if not lines:
        raise BatchResponseError("an empty part in a batch response")
    version, _, rest = lines[0].partition(b" ")
    status_text = rest.partition(b" ")[0]
    if not version.startswith(b"HTTP/") or not status_text.isdigit():
        raise BatchResponseError(f"not an HTTP status line: {lines[0][:80]!r}")
    return PartResponse(int(status_text), _headers(lines[1:]), body)


def _headers(lines: list[bytes]) -> dict[str, str]:
    headers = {}
    for line in lines:
        name, colon, value = line.decode("latin-1").partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers
