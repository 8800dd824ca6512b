"""`adapters.table_batch` writes what the SDK writes, and the store reads Azurite's answers.

The byte-for-byte comparison is the guarantee that matters on Azure: the Table service has
accepted the SDK's entity-group transactions for years, and ours are the same bytes (only the
random boundaries and the clock's date differ, and the test hands ours the SDK's). A change of
the pinned SDK that changes its bytes fails here first.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, cast, get_args

import pytest
from azure.core import MatchConditions
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline.transport import HttpTransport
from azure.data.tables import EdmType, EntityProperty, TableClient, TableServiceClient, UpdateMode
from azure.storage.blob import BlobServiceClient
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.opcount import OperationCounter
from adapters.sharded_state import TransactionRefused, TransactionTooLarge
from adapters.state_plan import TableOp
from adapters.table_batch import (
    BatchResponseError,
    PartResponse,
    batch_headers,
    decode_batch_response,
    encode_changeset,
    entity_json,
    failure_of,
)
from adapters.table_state import TableStateStore
from devstack.stack import Stack
from transform.errors import StorageUnavailable

AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
Kind = Literal["create", "update", "upsert", "delete"]
KINDS: tuple[Kind, ...] = get_args(Kind)
ENDPOINTS = [
    "http://127.0.0.1:10002/devstoreaccount1",  # Azurite's path-style account
    "https://account.table.core.windows.net",
]


class _Sent(Exception):
    """Raised by the recording transport: the request went no further."""


class _Recorder(HttpTransport[Any, Any]):
    """A transport that keeps the request the pipeline built (no network)."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.requests.append(request)
        raise _Sent


def _sdk_operation(op: TableOp) -> tuple[Any, ...]:
    """The SDK's spelling of a TableOp, as the store sent it before it wrote its own bytes."""
    entity = {
        k: EntityProperty(v, EdmType.INT64) if type(v) is int else v for k, v in op.entity.items()
    }
    if op.kind == "create":
        return ("create", entity)
    if op.kind == "upsert":
        return ("upsert", entity, {"mode": UpdateMode.REPLACE})
    condition: dict[str, Any] = (
        {"etag": op.etag, "match_condition": MatchConditions.IfNotModified} if op.etag else {}
    )
    if op.kind == "update":
        return ("update", entity, {"mode": UpdateMode.REPLACE, **condition})
    return ("delete", entity, condition)


def _keyed_client(endpoint: str, table: str, **kwargs: Any) -> TableClient:
    """A TableClient on `endpoint`'s account, signed with Azurite's well-known key."""
    connection = (
        f"DefaultEndpointsProtocol={endpoint.split(':', maxsplit=1)[0]};"
        f"AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};TableEndpoint={endpoint};"
    )
    return TableClient.from_connection_string(connection, table, **kwargs)


def _sdk_request(endpoint: str, table: str, ops: list[TableOp]) -> Any:
    recorder = _Recorder()
    client = _keyed_client(endpoint, table, transport=recorder)
    with pytest.raises(_Sent):
        client.submit_transaction([_sdk_operation(op) for op in ops])
    return recorder.requests[0]


def _ours_like(sdk: Any, endpoint: str, table: str, ops: list[TableOp]) -> bytes:
    """Our body with the SDK's boundaries and date (the only parts that are random or clocked)."""
    body = sdk.body
    batch = re.match(rb"--(batch_[0-9a-f-]+)\r\n", body)
    changeset = re.search(rb"boundary=(changeset_[0-9a-f-]+)\r\n", body)
    date = re.search(rb"\r\nx-ms-date: ([^\r]+)\r\n", body)
    assert batch and changeset
    ours = encode_changeset(
        endpoint,
        table,
        ops,
        api_version="2019-02-02",
        date=date.group(1).decode() if date else "unused",
        batch_boundary=batch.group(1).decode(),
        changeset_boundary=changeset.group(1).decode(),
    )
    assert ours.content_type == sdk.headers["Content-Type"]
    sent = {name: sdk.headers[name] for name in batch_headers("2019-02-02", ours.content_type)}
    assert sent == batch_headers("2019-02-02", ours.content_type)
    return ours.body


def _undated(body: bytes) -> bytes:
    """The SDK stamps each operation when its policy runs: a second may tick in between."""
    return re.sub(rb"(?<=\r\n)(x-ms-date|Date): [^\r]+(?=\r\n)", rb"\1: D", body)


def _ops() -> list[TableOp]:
    state = {
        "PartitionKey": "s07",
        "RowKey": "c-1",
        "ConversationId": "c-1",
        "Deadline": 1_733_000_000_000,
        "Revision": 3,
        "Chunks": 1,
        "StateBytes": 5,
        "S0": b"\x00\xffstate",
    }
    return [
        TableOp("create", state),
        TableOp("update", {**state, "RowKey": "c-2", "Slot": 2**62}, "W/\"datetime'2026-12-07'\""),
        TableOp("upsert", {"PartitionKey": "s07", "RowKey": "due~1733~c-1", "Done": True}),
        TableOp("delete", {"PartitionKey": "s07", "RowKey": "due~1700~c-1"}),
        TableOp("delete", {"PartitionKey": "s07", "RowKey": "it's c-3 %"}, 'W/"x"'),
        TableOp("create", {"PartitionKey": "s07", "RowKey": "é ' % / ?", "Text": 'hé " \\ \n'}),
        TableOp("create", {"PartitionKey": "s07", "RowKey": "none", "Gone": None, "Empty": ""}),
    ]


_KEY = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.binary(max_size=40),
    st.text(max_size=20),
)


@st.composite
def _random_ops(draw: st.DrawFn) -> list[TableOp]:
    partition = draw(_KEY)
    rows = draw(st.lists(_KEY, min_size=1, max_size=6, unique=True))
    ops = []
    for row in rows:
        kind: Kind = draw(st.sampled_from(KINDS))
        names = draw(st.lists(st.text(min_size=1, max_size=8), max_size=4, unique=True))
        entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": row}
        entity |= {name: draw(_VALUE) for name in names if name not in entity}
        etag = draw(st.sampled_from(["W/\"datetime'2026-12-07T09%3A39%3A09.1Z'\"", None]))
        ops.append(TableOp(kind, entity, etag if kind != "update" else etag or 'W/"e"'))
    return ops


@settings(max_examples=150, deadline=None)
@given(ops=_random_ops(), endpoint=st.sampled_from(ENDPOINTS))
@example(ops=_ops(), endpoint=ENDPOINTS[0])
@example(ops=_ops(), endpoint=ENDPOINTS[1])
def test_any_transaction_of_our_types_is_the_bytes_the_sdk_sends(
    ops: list[TableOp], endpoint: str
) -> None:
    sdk = _sdk_request(endpoint, "state", ops)
    assert sdk.url == f"{endpoint}/$batch"
    assert _undated(_ours_like(sdk, endpoint, "state", ops)) == _undated(sdk.body)


@pytest.mark.parametrize(
    ("value", "error"),
    [(2**63, "does not fit Edm.Int64"), (1.5, "float is not a type"), ([1], "list is not")],
)
def test_a_value_our_rows_never_hold_is_refused(value: object, error: str) -> None:
    with pytest.raises(TypeError, match=error):
        entity_json({"PartitionKey": "p", "RowKey": "r", "X": value})


@pytest.mark.parametrize(
    ("ops", "error"),
    [
        ([], "1 to 100 operations, not 0"),
        (
            [TableOp("delete", {"PartitionKey": "p", "RowKey": str(i)}) for i in range(101)],
            "not 101",
        ),
        ([TableOp("delete", {"PartitionKey": "p", "RowKey": "r"}, 'W/"1"\r\nX: y')], "not an ETag"),
        ([TableOp("update", {"PartitionKey": "p", "RowKey": "r"})], "needs the ETag"),
    ],
)
def test_a_transaction_the_service_would_refuse_is_refused_here(
    ops: list[TableOp], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        encode_changeset(
            "http://h",
            "t",
            ops,
            api_version="2019-02-02",
            date="d",
            batch_boundary="batch_1",
            changeset_boundary="changeset_1",
        )


# ---------------------------------------------------------------------- answers
_ANSWER = (
    b"--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
    b"--changesetresponse_2\r\nContent-Type: application/http\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 201 Created\r\nContent-ID: 1\r\n"
    b"Content-Type: application/json;odata=minimalmetadata\r\n"
    b"ETag: W/\"datetime'2026-12-07T09%3A39%3A09.1688448Z'\"\r\n\r\n"
    b'{"PartitionKey":"p","RowKey":"a"}\r\n'
    b"--changesetresponse_2\r\nContent-Type: application/http\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 204 No Content\r\n"
    b'etag: W/"b"\r\n\r\n\r\n'
    b"--changesetresponse_2\r\nContent-Type: application/http\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\r\n"
    b"--changesetresponse_2--\r\n--batchresponse_1--\r\n"
)


def test_an_answer_gives_each_operation_its_status_and_etag() -> None:
    answers = decode_batch_response('multipart/mixed; boundary="batchresponse_1"', _ANSWER)
    assert [(a.status, a.etag) for a in answers] == [
        (201, "W/\"datetime'2026-12-07T09%3A39%3A09.1688448Z'\""),
        (204, 'W/"b"'),
        (204, None),
    ]
    assert answers[0].body == b'{"PartitionKey":"p","RowKey":"a"}'


def test_an_answer_with_bare_line_feeds_reads_the_same() -> None:
    """The service writes CRLF; a proxy or an emulator that writes LF is still understood."""
    content_type = "multipart/mixed; boundary=batchresponse_1"
    with_crlf = decode_batch_response(content_type, _ANSWER)
    assert decode_batch_response(content_type, _ANSWER.replace(b"\r\n", b"\n")) == with_crlf


@pytest.mark.parametrize(
    ("content_type", "body", "error"),
    [
        ("multipart/mixed", _ANSWER, "no boundary"),
        ("multipart/mixed; boundary=other", _ANSWER, "no closing boundary"),
        (
            "multipart/mixed; boundary=b",
            b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n",
            "a part of type 'text/plain'",
        ),
        (
            "multipart/mixed; boundary=b",
            b"--b\r\nContent-Type: application/http\r\n\r\nnonsense\r\n--b--\r\n",
            "not an HTTP status line",
        ),
        ("multipart/mixed; boundary=b", _ANSWER[:200], "no closing boundary"),
        (
            "multipart/mixed; boundary=b",
            b"--b\r\nContent-Type: application/http\r\n\r\n\r\n--b--\r\n",
            "an empty part",
        ),
    ],
)
def test_an_answer_that_is_not_a_batch_response_is_an_error(
    content_type: str, body: bytes, error: str
) -> None:
    with pytest.raises(BatchResponseError, match=error):
        decode_batch_response(content_type, body)


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        (
            PartResponse(
                412,
                {},
                b'{"odata.error":{"code":"UpdateConditionNotSatisfied","message":'
                b'{"lang":"en-US","value":"3:The update condition was not satisfied."}}}',
            ),
            (412, "UpdateConditionNotSatisfied", 3),
        ),
        (
            PartResponse(500, {"x-ms-error-code": "InternalError"}, b"<html/>"),
            (500, "InternalError", 0),
        ),
        (
            PartResponse(409, {}, b'{"odata.error":{"code":"X","message":"no index"}}'),
            (409, "X", 0),
        ),
        (  # not ASCII digits: str.isdigit() takes "²", which int() refuses
            PartResponse(409, {}, '{"odata.error":{"code":"X","message":"²:odd"}}'.encode()),
            (409, "X", 0),
        ),
    ],
)
def test_a_failed_part_says_its_code_and_operation(
    part: PartResponse, expected: tuple[int, str, int]
) -> None:
    failure = failure_of(part)
    assert (failure.status, failure.code, failure.index) == expected
    assert failure.message


# ---------------------------------------------------------------------- against Azurite
@pytest.fixture
def table_store(local_stack: Stack) -> Iterator[tuple[TableStateStore, TableServiceClient, str]]:
    service = TableServiceClient.from_connection_string(local_stack.storage_connection_string)
    blobs = BlobServiceClient.from_connection_string(local_stack.storage_connection_string)
    name = f"batch{uuid.uuid4().hex[:10]}"
    store = TableStateStore(
        service.get_table_client(name),
        blobs.get_container_client(f"spill-{name}"),
        counter=OperationCounter(),
    )
    store.ensure_table()
    yield store, service, name
    service.delete_table(name)
    service.close()
    blobs.close()


@pytest.mark.stack
def test_the_failing_operation_of_a_transaction_is_named_and_nothing_is_written(
    table_store: tuple[TableStateStore, TableServiceClient, str],
) -> None:
    store, service, name = table_store
    etags = store._submit("p", [TableOp("create", {"PartitionKey": "p", "RowKey": "a", "N": 1})])
    assert etags[0] and etags[0].startswith('W/"')
    refused = [
        TableOp("create", {"PartitionKey": "p", "RowKey": "b"}),
        TableOp("update", {"PartitionKey": "p", "RowKey": "a", "N": 2}, 'W/"stale"'),
    ]
    with pytest.raises(TransactionRefused) as conflict:
        store._submit("p", refused)
    assert (conflict.value.index, conflict.value.reason) == (1, "conflict")
    with pytest.raises(TransactionRefused) as missing:
        store._submit("p", [TableOp("delete", {"PartitionKey": "p", "RowKey": "zz"}, None)])
    assert (missing.value.index, missing.value.reason) == (0, "missing")
    rows = service.get_table_client(name).query_entities("PartitionKey eq 'p'")
    assert [(row["RowKey"], row["N"].value) for row in rows] == [("a", 1)]
    ok = store._submit(
        "p",
        [
            TableOp("update", {"PartitionKey": "p", "RowKey": "a", "N": 3}, etags[0]),
            TableOp("upsert", {"PartitionKey": "p", "RowKey": "b", "N": 4}),
            TableOp("create", {"PartitionKey": "p", "RowKey": "c"}),
        ],
    )
    assert len(ok) == 3 and all(etag and etag != etags[0] for etag in ok)


@pytest.mark.stack
def test_a_table_deleted_under_the_store_is_made_again(
    table_store: tuple[TableStateStore, TableServiceClient, str],
) -> None:
    store, service, name = table_store
    service.delete_table(name)
    etags = store._submit("p", [TableOp("create", {"PartitionKey": "p", "RowKey": "a"})])
    assert etags[0]
    rows = service.get_table_client(name).query_entities("PartitionKey eq 'p'")
    assert [row["RowKey"] for row in rows] == ["a"]


# ---------------------------------------------------------------------- the whole request
class _Token:
    """A token credential that needs no identity (the bearer policy only reads the token)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo("token", int(time.time()) + 3600)


_HTTPS = "https://account.table.core.windows.net"
_KEYED = f"DefaultEndpointsProtocol=https;AccountName=account;AccountKey={AZURITE_KEY};"
_CLIENTS: dict[str, Any] = {
    "shared key": lambda **kw: TableClient.from_connection_string(
        f"{_KEYED}TableEndpoint={_HTTPS};", "state", **kw
    ),
    "shared key via service": lambda **kw: TableServiceClient.from_connection_string(
        f"{_KEYED}TableEndpoint={_HTTPS};", **kw
    ).get_table_client("state"),
    "token": lambda **kw: TableClient(_HTTPS, "state", credential=_Token(), **kw),
    "sas": lambda **kw: TableClient.from_connection_string(
        f"TableEndpoint={_HTTPS};SharedAccessSignature=sv=2019-02-02&ss=t&sig=a%3D", "state", **kw
    ),
    "azurite": lambda **kw: _keyed_client(ENDPOINTS[0], "state", **kw),
}


@pytest.mark.parametrize("credential", list(_CLIENTS))
def test_the_request_is_the_sdks_with_its_signature(
    credential: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same clock and boundaries: the same URL (SAS included), headers (SharedKey signature
    included: it covers Content-Type, the date and `/$batch`) and body, byte for byte."""
    recorder = _Recorder()
    client = _CLIENTS[credential](transport=recorder, request_id="request-1")
    fixed = uuid.UUID(int=7)
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)
    monkeypatch.setattr("azure.data.tables._base_client.uuid4", lambda: fixed)
    monkeypatch.setattr("adapters.table_state.uuid.uuid4", lambda: fixed)
    ops = _ops()
    with pytest.raises(_Sent):
        client.submit_transaction([_sdk_operation(op) for op in ops])
    with pytest.raises(_Sent):
        TableStateStore(client, cast(Any, None), counter=OperationCounter())._submit("s07", ops)
    sdk, ours = recorder.requests
    assert (ours.method, ours.url) == (sdk.method, sdk.url)
    assert dict(ours.headers) == dict(sdk.headers)
    assert "Authorization" in ours.headers or "sig=" in ours.url
    assert ours.body == sdk.body


# ---------------------------------------------------------------------- canned answers
_Canned = tuple[int, dict[str, str], bytes]


class _CannedService:
    """A local HTTP server that answers each request with the next canned answer, so the
    TableClient's real pipeline and transport read what Azure sends and Azurite never does."""

    def __init__(self) -> None:
        self.answers: list[_Canned] = []
        self.paths: list[str] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                service.paths.append(self.path)
                status, headers, body = service.answers.pop(0)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        port = self.server.server_address[1]
        self.table = _keyed_client(
            f"http://127.0.0.1:{port}/devstoreaccount1", "state", retry_total=0
        )
        self.store = TableStateStore(self.table, cast(Any, None), counter=OperationCounter())

    def close(self) -> None:
        self.table.close()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canned() -> Iterator[_CannedService]:
    service = _CannedService()
    yield service
    service.close()


def _changeset_answer(*parts: bytes) -> _Canned:
    """A 202 as the Table service writes it (its headers, its part headers)."""
    body = (
        b"--batchresponse_9\r\nContent-Type: multipart/mixed; boundary=changesetresponse_8\r\n\r\n"
    )
    for part in parts:
        body += (
            b"--changesetresponse_8\r\nContent-Type: application/http\r\n"
            b"Content-Transfer-Encoding: binary\r\n\r\n" + part + b"\r\n"
        )
    body += b"--changesetresponse_8--\r\n--batchresponse_9--\r\n"
    headers = {
        "Content-Type": "multipart/mixed; boundary=batchresponse_9",
        "Cache-Control": "no-cache",
        "x-ms-version": "2019-02-02",
        "X-Content-Type-Options": "nosniff",
    }
    return 202, headers, body


def _failed_part(status: str, code: str, message: str, content_id: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + (f"Content-ID: {content_id}\r\n" if content_id else "")
    return (
        head.encode()
        + b"X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\n"
        + b"DataServiceVersion: 3.0;\r\n"
        + b"Content-Type: application/json;odata=minimalmetadata;streaming=true;charset=utf-8"
        + b"\r\n\r\n"
        + json.dumps(
            {"odata.error": {"code": code, "message": {"lang": "en-US", "value": message}}}
        ).encode()
    )


_THREE = [
    TableOp("create", {"PartitionKey": "p", "RowKey": "a"}),
    TableOp("update", {"PartitionKey": "p", "RowKey": "b"}, 'W/"1"'),
    TableOp("delete", {"PartitionKey": "p", "RowKey": "c"}, 'W/"2"'),
]


@pytest.mark.parametrize(
    ("part", "index", "reason"),
    [
        # Storage leaves the index out when the first operation fails (azure-sdk-for-net#20533)
        (_failed_part("409 Conflict", "EntityAlreadyExists", "The entity exists.\nRequestId:x"), 0,
         "conflict"),
        (_failed_part("412 Precondition Failed", "UpdateConditionNotSatisfied",
                      "1:The update condition specified in the request was not satisfied.", "1"),
         1, "conflict"),
        (_failed_part("404 Not Found", "ResourceNotFound",
                      "2:The specified resource does not exist.\nRequestId:x\nTime:y", "2"),
         2, "missing"),
    ],
)  # fmt: skip
def test_a_refusal_as_azure_writes_it_names_the_operation(
    canned: _CannedService, part: bytes, index: int, reason: str
) -> None:
    canned.answers.append(_changeset_answer(part))
    with pytest.raises(TransactionRefused) as refused:
        canned.store._submit("p", _THREE)
    assert (refused.value.index, refused.value.reason) == (index, reason)
    assert canned.paths == ["/devstoreaccount1/$batch"]


def test_a_table_being_deleted_is_no_conflict_of_ours(canned: _CannedService) -> None:
    canned.answers.append(
        _changeset_answer(_failed_part("409 Conflict", "TableBeingDeleted", "0:Being deleted."))
    )
    with pytest.raises(StorageUnavailable, match="TableBeingDeleted"):
        canned.store._submit("p", _THREE)


@pytest.mark.parametrize(
    "answer",
    [
        (413, {"x-ms-error-code": "RequestBodyTooLarge"}, b'{"odata.error":{}}'),
        _changeset_answer(_failed_part("413 Request Entity Too Large", "RequestBodyTooLarge", "")),
    ],
)
def test_too_large_is_said_by_the_request_or_by_its_part(
    canned: _CannedService, answer: _Canned
) -> None:
    canned.answers.append(answer)
    with pytest.raises(TransactionTooLarge):
        canned.store._submit("p", _THREE)


def test_a_refused_request_keeps_the_services_code(canned: _CannedService) -> None:
    """A managed identity without a data role gets a 403: the log must say which."""
    body = json.dumps(
        {
            "odata.error": {
                "code": "AuthorizationPermissionMismatch",
                "message": {"lang": "en-US", "value": "This request is not authorized."},
            }
        }
    ).encode()
    headers = {
        "Content-Type": "application/json;odata=minimalmetadata;streaming=true;charset=utf-8",
        "x-ms-error-code": "AuthorizationPermissionMismatch",
    }
    canned.answers.append((403, headers, body))
    with pytest.raises(StorageUnavailable, match="status=403 code=AuthorizationPermissionMismatch"):
        canned.store._submit("p", _THREE)


@pytest.mark.parametrize(
    "answer",
    [
        _changeset_answer(b"HTTP/1.1 201 Created\r\n\r\n{}", b"HTTP/1.1 204 No Content\r\n\r\n"),
        _changeset_answer(
            b'HTTP/1.1 201 Created\r\nETag: W/"3"\r\n\r\n{}',
            b"HTTP/1.1 204 No Content\r\n\r\n",  # the update's answer has no ETag
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ),
        (202, {"Content-Type": "multipart/mixed; boundary=batchresponse_9"}, b"--batchres"),
        (202, {"Content-Type": "text/html"}, b"<html>proxy</html>"),
    ],
)
def test_an_answer_that_does_not_fit_is_retried_never_taken(
    canned: _CannedService, answer: _Canned
) -> None:
    canned.answers.append(answer)
    with pytest.raises(StorageUnavailable):
        canned.store._submit("p", _THREE)


def test_an_empty_transaction_sends_nothing(canned: _CannedService) -> None:
    assert canned.store._submit("p", []) == []
    assert canned.paths == []
