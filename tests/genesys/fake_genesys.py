"""A local fake of the Genesys Cloud API on loopback, for the real SDK to talk to.

It speaks the URL paths and JSON shapes the SDK uses for what `ops genesys connect` needs: the
OAuth token endpoint (Client Credentials, HTTP Basic), `GET /api/v2/organizations/me` and the
Integrations API (list with paging and `integrationType`, create, read, current configuration
with optimistic `version`, PATCH `intendedState`). Like Genesys it refuses a bad token with
401 `bad.credentials`, a missing permission with 403 `missing.any.permissions` naming it,
answers 429 `too.many.requests` with `Retry-After` when told to, checks the EventBridge
configuration properties (400), and reports the integration ERROR when an enabled one is
incomplete or reuses another's partner event source.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

EVENTBRIDGE = "amazon-eventbridge-source"
VIEW = "integrations:integration:view"
ADD = "integrations:integration:add"
EDIT = "integrations:integration:edit"
ALL_PERMISSIONS = frozenset({VIEW, ADD, EDIT})
TYPE_NAMES = {
    EVENTBRIDGE: "Amazon EventBridge Source",
    "purecloud-data-actions": "Genesys Cloud Data Actions",
}

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-\d$")
_SUFFIX = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

Json = dict[str, Any]


@dataclass
class Client:
    """An OAuth client: its secret and the permissions its roles grant."""

    secret: str
    permissions: frozenset[str] = ALL_PERMISSIONS


@dataclass
class Stored:
    """One integration as the fake keeps it."""

    id: str
    type_id: str
    intended_state: str = "DISABLED"
    reported_code: str = "INACTIVE"
    reported_detail: str | None = None
    version: int = 1
    name: str = ""
    notes: str = ""
    properties: Json = field(default_factory=dict)
    advanced: Json = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One request, as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


class FakeGenesys:
    """The fake's state, and its server on a free loopback port."""

    def __init__(self, *, org_id: str | None = None) -> None:
        self.org_id = org_id or str(uuid.uuid4())
        self.clients: dict[str, Client] = {}
        self.integrations: dict[str, Stored] = {}
        self.requests: list[Seen] = []
        self.throttle: deque[str | None] = deque()
        """Retry-After values: each answers the next API request with 429 (None: no header)."""
        self.conflicts: int = 0
        """How many of the next configuration writes find the version moved by someone else."""
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeGenesys:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def add_client(
        self, client_id: str, secret: str, permissions: frozenset[str] = ALL_PERMISSIONS
    ) -> None:
        self.clients[client_id] = Client(secret, permissions)

    def add_integration(self, stored: Stored) -> Stored:
        self.integrations[stored.id] = stored
        return stored

    def writes(self) -> list[Seen]:
        """The requests that change something (token requests excluded)."""
        return [
            r
            for r in self.requests
            if r.method in ("POST", "PUT", "PATCH") and r.path.startswith("/api/")
        ]

    # ------------------------------------------------------------------ behaviour
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, raw: bytes
    ) -> tuple[int, Json, dict[str, str]]:
        with self._lock:
            body = _parse_body(headers.get("Content-Type", ""), raw)
            self.requests.append(Seen(method, path, query, body))
            if path == "/oauth/token" and method == "POST":
                return self._token(headers.get("Authorization", ""), body)
            if not path.startswith("/api/v2/"):
                return _error(404, "not.found", f"no route {method} {path}")
            permissions = self._permissions(headers.get("Authorization", ""))
            if permissions is None:
                return _error(401, "bad.credentials", "Invalid login credentials.")
            if self.throttle:
                retry_after = self.throttle.popleft()
                seconds = retry_after if retry_after is not None else "?"
                status, answer, extra = _error(
                    429,
                    "too.many.requests",
                    f"Rate limit exceeded the maximum. Retry the request in [{seconds}] seconds",
                )
                if retry_after is not None:
                    extra["Retry-After"] = retry_after
                return status, answer, extra
            return self._api(method, path, query, body, permissions)

    def _token(self, authorization: str, body: Any) -> tuple[int, Json, dict[str, str]]:
        client_id, secret = _basic(authorization)
        client = self.clients.get(client_id or "")
        if client is None or client.secret != secret:
            answer = {
                "error": "invalid_client",
                "description": "authentication failed",
                "error_description": "authentication failed",
            }
            return 401, answer, {}
        if not isinstance(body, dict) or body.get("grant_type") != "client_credentials":
            return (
                400,
                {"error": "unsupported_grant_type", "description": "grant type not supported"},
                {},
            )
        token = uuid.uuid4().hex
        self._tokens[token] = client_id or ""
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": 86399}, {}

    def _permissions(self, authorization: str) -> frozenset[str] | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token not in self._tokens:
            return None
        return self.clients[self._tokens[token]].permissions

    def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: Any,
        granted: frozenset[str],
    ) -> tuple[int, Json, dict[str, str]]:
        parts = path.removeprefix("/api/v2/").split("/")
        if parts == ["organizations", "me"] and method == "GET":
            return 200, self._organization(), {}
        if parts[0] != "integrations":
            return _error(404, "not.found", f"no route {method} {path}")
        needed = {"GET": VIEW, "POST": ADD, "PUT": EDIT, "PATCH": EDIT}.get(method)
        if needed is None:
            return _error(405, "method.not.allowed", method)
        if needed not in granted:
            return _error(
                403,
                "missing.any.permissions",
                "Unable to perform the requested action. You must have at least one of the "
                f"following permissions assigned: [{needed}]",
            )
        if len(parts) == 1:
            return self._list(query) if method == "GET" else self._create(body)
        stored = self.integrations.get(parts[1])
        if stored is None:
            return _error(404, "not.found", f"integration {parts[1]} not found")
        if len(parts) == 2:
            return (200, _integration(stored), {}) if method == "GET" else self._patch(stored, body)
        if parts[2:] == ["config", "current"]:
            return (200, _config(stored), {}) if method == "GET" else self._configure(stored, body)
        return _error(404, "not.found", f"no route {method} {path}")

    def _organization(self) -> Json:
        return {
            "id": self.org_id,
            "name": "Example Contact Center",
            "defaultLanguage": "en-us",
            "thirdPartyOrgName": "example",
            "domain": "example",
            "version": 12,
            "state": "active",
            "selfUri": f"/api/v2/organizations/{self.org_id}",
        }

    def _list(self, query: dict[str, list[str]]) -> tuple[int, Json, dict[str, str]]:
        size = int(query.get("pageSize", ["25"])[0])
        number = int(query.get("pageNumber", ["1"])[0])
        wanted = query.get("integrationType", [None])[0]
        found = [s for s in self.integrations.values() if wanted is None or s.type_id == wanted]
        pages = max(1, -(-len(found) // size))
        chunk = found[(number - 1) * size : number * size]
        return (
            200,
            {
                "entities": [_integration(s, with_config=False) for s in chunk],
                "pageSize": size,
                "pageNumber": number,
                "total": len(found),
                "pageCount": pages,
                "firstUri": f"/api/v2/integrations?pageSize={size}&pageNumber=1",
                "lastUri": f"/api/v2/integrations?pageSize={size}&pageNumber={pages}",
                "selfUri": f"/api/v2/integrations?pageSize={size}&pageNumber={number}",
            },
            {},
        )

    def _create(self, body: Any) -> tuple[int, Json, dict[str, str]]:
        type_id = (
            (body or {}).get("integrationType", {}).get("id") if isinstance(body, dict) else None
        )
        if type_id not in TYPE_NAMES:
            return _error(400, "bad.request", f"integration type {type_id!r} does not exist")
        stored = Stored(
            str(uuid.uuid4()), type_id, name=str(body.get("name") or TYPE_NAMES[type_id])
        )
        self.integrations[stored.id] = stored
        return 200, _integration(stored), {}

    def _configure(self, stored: Stored, body: Any) -> tuple[int, Json, dict[str, str]]:
        if not isinstance(body, dict):
            return _error(400, "bad.request", "a configuration body is required")
        if self.conflicts:
            self.conflicts -= 1
            stored.version += 1
        if body.get("version") != stored.version:
            return _error(
                409,
                "conflict",
                f"version {body.get('version')} is stale; the current one is {stored.version}",
            )
        properties = body.get("properties") or {}
        if stored.type_id == EVENTBRIDGE:
            problem = _eventbridge_problem(properties, complete=False)
            if problem:
                return _error(400, "bad.request", problem)
        stored.version += 1
        stored.name = str(body.get("name") or stored.name)
        stored.notes = str(body.get("notes") or "")
        stored.properties = dict(properties)
        stored.advanced = dict(body.get("advanced") or {})
        if stored.intended_state == "ENABLED":
            self._report(stored)
        return 200, _config(stored), {}

    def _patch(self, stored: Stored, body: Any) -> tuple[int, Json, dict[str, str]]:
        state = body.get("intendedState") if isinstance(body, dict) else None
        if state not in ("ENABLED", "DISABLED"):
            return _error(400, "bad.request", f"intendedState {state!r} is not ENABLED or DISABLED")
        stored.intended_state = state
        if state == "ENABLED":
            self._report(stored)
        else:
            stored.reported_code, stored.reported_detail = "INACTIVE", None
        return 200, _integration(stored), {}

    def _report(self, stored: Stored) -> None:
        problem = _eventbridge_problem(stored.properties, complete=True)
        if problem is None:
            key = _source_key(stored.properties)
            for other in self.integrations.values():
                if (
                    other.id != stored.id
                    and other.intended_state == "ENABLED"
                    and _source_key(other.properties) == key
                ):
                    problem = (
                        f"The partner event source for suffix {key[2]!r} already exists "
                        f"in account {key[0]}."
                    )
        stored.reported_code, stored.reported_detail = (
            ("ERROR", problem) if problem else ("ACTIVE", None)
        )


def _source_key(properties: Json) -> tuple[object, object, object]:
    return (
        properties.get("awsAccountId"),
        properties.get("awsAccountRegion"),
        properties.get("eventSourceSuffix"),
    )


def _eventbridge_problem(properties: Json, *, complete: bool) -> str | None:
    checks = (
        ("awsAccountId", _ACCOUNT, "a 12-digit AWS account id"),
        ("awsAccountRegion", _REGION, "an AWS region code"),
        ("eventSourceSuffix", _SUFFIX, "1 to 64 letters, digits, '.', '-' or '_'"),
    )
    for key, form, what in checks:
        value = properties.get(key)
        if value is None and not complete:
            continue
        if not isinstance(value, str) or not form.match(value):
            return f"Configuration property {key} must be {what}; got {value!r}."
    topics = properties.get("eventFilter")
    if topics is None and not complete:
        return None
    if (
        not isinstance(topics, list)
        or not topics
        or not all(isinstance(t, str) and t.startswith("v2.") for t in topics)
    ):
        return f"Configuration property eventFilter must be a non-empty list; got {topics!r}."
    return None


def _integration(stored: Stored, *, with_config: bool = True) -> Json:
    answer: Json = {
        "id": stored.id,
        "name": stored.name,
        "integrationType": {
            "id": stored.type_id,
            "name": TYPE_NAMES[stored.type_id],
            "selfUri": f"/api/v2/integrations/types/{stored.type_id}",
        },
        "notes": stored.notes,
        "intendedState": stored.intended_state,
        "reportedState": {
            "code": stored.reported_code,
            "effective": stored.reported_code.title(),
            "lastUpdated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        },
        "attributes": {},
        "selfUri": f"/api/v2/integrations/{stored.id}",
    }
    if stored.reported_detail:
        answer["reportedState"]["detail"] = {"message": stored.reported_detail}
    if with_config:
        answer["config"] = {"current": _config(stored)}
    return answer


def _config(stored: Stored) -> Json:
    return {
        "id": stored.id,
        "name": stored.name,
        "version": stored.version,
        "properties": stored.properties,
        "advanced": stored.advanced,
        "notes": stored.notes,
        "credentials": {},
        "selfUri": f"/api/v2/integrations/{stored.id}/config/current",
    }


def _error(status: int, code: str, message: str) -> tuple[int, Json, dict[str, str]]:
    return (
        status,
        {
            "message": message,
            "code": code,
            "status": status,
            "contextId": str(uuid.uuid4()),
            "details": [],
            "errors": [],
        },
        {},
    )


def _basic(authorization: str) -> tuple[str | None, str | None]:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None, None
    return client_id, secret


def _parse_body(content_type: str, raw: bytes) -> Any:
    if not raw:
        return None
    if content_type.startswith("application/x-www-form-urlencoded"):
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _handler(fake: FakeGenesys) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            status, answer, extra = fake.handle(
                self.command, url.path, parse_qs(url.query), self.headers, raw
            )
            data = json.dumps(answer).encode()
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
