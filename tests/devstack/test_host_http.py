"""HTTP triggers through the local host: conversion both ways, routes, methods, failures."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import HostStarter
from tests.devstack.helpers import echo_env

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def base_url(module_hosts: HostStarter, tmp_path_factory: pytest.TempPathFactory) -> str:
    records = tmp_path_factory.mktemp("http-records")
    return module_hosts(env=echo_env(records)).http_base_url() + "/api"


def test_async_route_round_trip_keeps_params_query_headers_and_body(base_url: str) -> None:
    answer = httpx.post(
        f"{base_url}/echo/alice?a=1&b=two",
        content=b'{"hello": "world"}',
        headers={"x-echo": "header value", "content-type": "application/json"},
    )
    assert answer.status_code == 201
    assert answer.headers["x-echoed"] == "1"
    assert answer.headers["content-type"].startswith("application/json")
    echoed = answer.json()
    assert echoed == {
        "method": "POST",
        "url": f"{base_url}/echo/alice?a=1&b=two",
        "route": {"name": "alice"},
        "params": {"a": "1", "b": "two"},
        "header": "header value",
        "body": '{"hello": "world"}',
    }


def test_sync_function_with_int_constraint(base_url: str) -> None:
    answer = httpx.get(f"{base_url}/sync/21")
    assert (answer.status_code, answer.text) == (200, "42")
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    # The constraint does not match, so no function does: 404 like the host.
    assert httpx.get(f"{base_url}/sync/abc").status_code == 404


def test_unknown_route_and_wrong_method_are_404(base_url: str) -> None:
    assert httpx.get(f"{base_url}/nothing-here").status_code == 404
    assert httpx.delete(f"{base_url}/sync/1").status_code == 404


def test_route_prefix_applies(base_url: str) -> None:
    root = base_url.removesuffix("/api")
    assert httpx.get(f"{root}/sync/1").status_code == 404
    assert httpx.get(f"{base_url}/sync/1").status_code == 200


def test_function_error_is_an_empty_500_and_the_host_keeps_serving(base_url: str) -> None:
    failed = httpx.get(f"{base_url}/fail")
    assert (failed.status_code, failed.content) == (500, b"")
    assert httpx.get(f"{base_url}/sync/2").text == "4"


def test_concurrent_requests_all_answered(base_url: str) -> None:
    with httpx.Client() as client:
        answers = [client.get(f"{base_url}/sync/{n}") for n in range(50)]
    assert [a.text for a in answers] == [str(2 * n) for n in range(50)]


def test_admin_status_lists_functions(base_url: str) -> None:
    status = httpx.get(base_url.removesuffix("/api") + "/admin/host/status").json()
    assert status["state"] == "running"
    # The stack names each host's port, over the settings file's Host.LocalHttpPort (7071).
    assert base_url.endswith(f":{status['http_port']}/api")
    assert status["http_port_source"] == "--http-port"
    functions = {f["name"]: f["trigger"] for f in status["functions"]}
    assert functions["http_echo"] == "httpTrigger"
    assert functions["record_batch"] == "eventHubTrigger"
    assert functions["record_retrying"] == "eventHubTrigger"
    assert functions["timer_tick"] == "timerTrigger"
