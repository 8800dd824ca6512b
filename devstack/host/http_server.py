"""HTTP triggers on loopback: requests in as RpcHttp, the function's RpcHttp answer out.

As the Functions host does, the server hands the worker runtime an `RpcHttp` message (method,
url, headers, query, route parameters, the body as bytes) and turns the `RpcHttp` the function
returned into the response; the runtime does the `azure.functions` decoding and encoding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from devstack.host.invocation import FunctionInvoker
from devstack.host.routes import RouteTemplate, compile_route, order_routes
from devstack.host.rpc import protos
from devstack.host.trigger_data import http_input

logger = logging.getLogger(__name__)

# The host accepts bodies up to 100 MB; the function decides what is too large (SPEC 6: 413).
MAX_REQUEST_BODY_BYTES = 100 * 1024 * 1024
ALL_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"})


@dataclass(frozen=True)
class HttpRoute:
    """An HTTP-triggered function bound to its route and methods."""

    invoker: FunctionInvoker
    route: RouteTemplate
    methods: frozenset[str]


def build_http_routes(invokers: list[FunctionInvoker], route_prefix: str) -> list[HttpRoute]:
    """Routes for every HTTP-triggered function, most specific first."""
    by_template: dict[RouteTemplate, HttpRoute] = {}
    for invoker in invokers:
        trigger = invoker.definition.trigger
        template = str(trigger.get("route") or invoker.definition.name)
        methods = frozenset(str(m).upper() for m in trigger.get("methods") or ()) or ALL_METHODS
        route = compile_route(template, route_prefix)
        by_template[route] = HttpRoute(invoker=invoker, route=route, methods=methods)
        logger.info(
            "http route function=%s methods=%s url=/%s",
            invoker.definition.name,
            ",".join(sorted(methods)),
            route.template,
        )
    ordered = order_routes(by_template)
    return [by_template[r] for r in ordered]


def _joined(pairs: Mapping[str, str] | Any) -> dict[str, str]:
    """Collapse repeated keys the way the host does (comma-joined)."""
    merged: dict[str, str] = {}
    for key, value in pairs.items():
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged


def request_input(argument: str, request: web.Request, body: bytes, params: dict[str, str]) -> Any:
    """The request as the host hands it to the worker (headers joined as the host joins them)."""
    headers: dict[str, str] = {}
    for key, value in request.headers.items():
        name = key.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return http_input(
        argument,
        method=request.method,
        url=str(request.url),
        body=body,
        headers=headers,
        route_params=params,
        query=_joined(request.query),
    )


def _body_bytes(body: Any) -> bytes:
    kind = body.WhichOneof("data")
    if kind is None:
        return b""
    if kind in {"bytes", "stream"}:
        return bytes(getattr(body, kind))
    return str(getattr(body, kind)).encode("utf-8")


def _set_cookie(cookie: Any) -> str:
    """A Set-Cookie value from an RpcHttpCookie (the attributes the library can set)."""
    parts = [f"{cookie.name}={cookie.value}"]
    if cookie.domain.HasField("value"):
        parts.append(f"Domain={cookie.domain.value}")
    if cookie.path.HasField("value"):
        parts.append(f"Path={cookie.path.value}")
    if cookie.expires.HasField("value"):
        expires = cookie.expires.value.ToDatetime()
        parts.append(f"Expires={expires:%a, %d %b %Y %H:%M:%S} GMT")
    if cookie.max_age.HasField("value"):
        parts.append(f"Max-Age={int(cookie.max_age.value)}")
    if cookie.secure.HasField("value") and cookie.secure.value:
        parts.append("Secure")
    if cookie.http_only.HasField("value") and cookie.http_only.value:
        parts.append("HttpOnly")
    same_site = protos.RpcHttpCookie.SameSite.Name(cookie.same_site)
    if same_site != "None":
        parts.append(f"SameSite={'None' if same_site == 'ExplicitNone' else same_site}")
    return "; ".join(parts)


def to_web_response(result: Any) -> web.Response:
    """The response for what the function returned (its `$return` TypedData)."""
    if result is None:
        return web.Response(status=204)
    kind = result.WhichOneof("data")
    if kind != "http":
        # A plain value returned from an HTTP function: the host answers 200 with it as text.
        return web.Response(status=200, body=_body_bytes(result), content_type="text/plain")
    http = result.http
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in http.headers.items():
        headers.add(name, value)
    for cookie in http.cookies:
        headers.add("Set-Cookie", _set_cookie(cookie))
    status = int(http.status_code) if http.status_code else 200
    return web.Response(status=status, headers=headers, body=_body_bytes(http.body))


class HttpTriggerServer:
    """An aiohttp server that dispatches requests to HTTP-triggered functions."""

    def __init__(
        self,
        routes: list[HttpRoute],
        *,
        host: str,
        port: int,
        admin_status: Callable[[], dict[str, Any]],
    ) -> None:
        self._routes = routes
        self._host = host
        self._port = port
        self._admin_status = admin_status
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_REQUEST_BODY_BYTES)
        app.router.add_route("GET", "/admin/host/status", self._handle_status)
        app.router.add_route("*", "/admin/host/ping", self._handle_ping)
        app.router.add_route("*", "/{tail:.*}", self._handle_function)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        logger.info("http listening host=%s port=%s", self._host, self._port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle_status(self, request: web.Request) -> web.Response:
        return web.json_response(self._admin_status())

    async def _handle_ping(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    def _find(self, path: str, method: str) -> tuple[HttpRoute | None, dict[str, str]]:
        for route in self._routes:
            if method not in route.methods:
                continue
            params = route.route.match(path)
            if params is not None:
                return route, params
        return None, {}

    async def _handle_function(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        route, params = self._find(request.path, request.method)
        if route is None:
            # The host answers 404 whether the path or only the method did not match.
            return web.Response(status=404)
        body = await request.read()
        binding = request_input(route.invoker.definition.trigger_argument, request, body, params)
        outcome = await route.invoker.invoke(
            [binding], log_context={"method": request.method, "path": request.path}
        )
        if not outcome.succeeded:
            # The real host answers a failed invocation with an empty 500.
            response = web.Response(status=500)
        else:
            try:
                response = to_web_response(outcome.result)
            except Exception:
                logger.exception(
                    "cannot convert function result function=%s type=%s",
                    route.invoker.definition.name,
                    type(outcome.result).__name__,
                )
                response = web.Response(status=500)
        logger.info(
            "http request method=%s path=%s status=%s duration_ms=%.1f",
            request.method,
            request.path,
            response.status,
            (time.perf_counter() - started) * 1000,
        )
        return response
