"""The local host's HTTP port, chosen as `func start` chooses it: `--http-port`, else
`Host.LocalHttpPort` of local.settings.json, else 7071; a bad LocalHttpPort is a clear error."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.settings import LocalSettings, SettingsError, read_local_settings
from devstack import processes
from devstack.errors import SettingError
from devstack.host.__main__ import parse_arguments
from devstack.host.http_port import choose_http_port
from devstack.parts.processes import PartProcesses
from devstack.processes import ProcessSpec
from devstack.settings import DEFAULT_HTTP_PORT, LOOPBACK
from devstack.stack import Stack
from tests.conftest import APPS, EXAMPLE_SETTINGS, ROOT

BAD_PORTS: list[Any] = [
    "7072",
    "abc",
    "",
    True,
    False,
    None,
    7072.0,
    7072.5,
    0,
    -1,
    65536,
    10**20,
    [7072],
    {"port": 7072},
]


def settings_file(folder: Path, host: Any, name: str = "local.settings.json") -> Path:
    path = folder / name
    document = {"IsEncrypted": False, "Values": {"FUNCTIONS_WORKER_RUNTIME": "python"}}
    path.write_text(json.dumps({**document, "Host": host}), encoding="utf-8")
    return path


def file_port(path: Path) -> int | None:
    return read_local_settings(path).local_http_port


def host_command(settings: Path, status_file: Path) -> tuple[str, ...]:
    """`python -m devstack.host` on the minimal app with no --http-port."""
    return (
        sys.executable,
        "-m",
        "devstack.host",
        "--app-dir",
        str(APPS / "minimal"),
        "--settings",
        str(settings),
        "--status-file",
        str(status_file),
    )


def example_with_port(folder: Path, port: int) -> Path:
    """The example settings (the session stack's environment overrides its connections)."""
    example = json.loads(EXAMPLE_SETTINGS.read_text(encoding="utf-8"))
    path = folder / "local.settings.json"
    path.write_text(json.dumps({**example, "Host": {"LocalHttpPort": port}}), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- precedence


def test_the_command_line_wins_over_the_settings_file(tmp_path: Path) -> None:
    local = read_local_settings(settings_file(tmp_path, {"LocalHttpPort": 7100}))
    choice = choose_http_port(7200, serve_http=True, local=local)
    assert (choice.port, choice.source) == (7200, "--http-port")


def test_the_settings_file_wins_over_the_default(tmp_path: Path) -> None:
    path = settings_file(tmp_path, {"LocalHttpPort": 7100, "CORS": "*"})
    choice = choose_http_port(None, serve_http=True, local=read_local_settings(path))
    assert (choice.port, choice.source) == (7100, f"Host.LocalHttpPort in {path}")


@pytest.mark.parametrize("host", [{}, {"CORS": "*"}, None], ids=["empty", "other keys", "null"])
def test_without_a_port_anywhere_the_default(tmp_path: Path, host: Any) -> None:
    local = read_local_settings(settings_file(tmp_path, host))
    choice = choose_http_port(None, serve_http=True, local=local)
    assert (choice.port, choice.source) == (DEFAULT_HTTP_PORT, "default") == (7071, "default")


def test_a_missing_settings_file_gives_the_default(tmp_path: Path) -> None:
    local = read_local_settings(tmp_path / "absent.json")
    assert choose_http_port(None, serve_http=True, local=local).port == DEFAULT_HTTP_PORT


def test_no_http_serves_none_whatever_the_file_says(tmp_path: Path) -> None:
    local = read_local_settings(settings_file(tmp_path, {"LocalHttpPort": 7100}))
    choice = choose_http_port(None, serve_http=False, local=local)
    assert (choice.port, choice.source) == (None, "--no-http")


@pytest.mark.parametrize("port", [1, 65535])
def test_the_ends_of_the_port_range_are_taken(tmp_path: Path, port: int) -> None:
    assert file_port(settings_file(tmp_path, {"LocalHttpPort": port})) == port


def test_the_command_line_leaves_the_port_to_the_host() -> None:
    assert parse_arguments([]).http_port is None
    assert parse_arguments(["--http-port", "7300"]).http_port == 7300
    assert parse_arguments(["--no-http"]).no_http is True


@pytest.mark.parametrize("value", ["0", "65536", "-1", "abc", "7071.5"])
def test_a_bad_command_line_port_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_arguments(["--http-port", value])
    assert exited.value.code == 2
    assert "--http-port: must be a whole number from 1 to 65535" in capsys.readouterr().err


# --------------------------------------------------------------------------- bad values


@pytest.mark.parametrize("port", BAD_PORTS, ids=[json.dumps(p) for p in BAD_PORTS])
def test_a_bad_local_http_port_names_the_file_and_the_setting(tmp_path: Path, port: Any) -> None:
    path = settings_file(tmp_path, {"LocalHttpPort": port})
    with pytest.raises(SettingsError) as raised:
        file_port(path)
    message = str(raised.value)
    assert f"Host.LocalHttpPort in {path} must be a whole number from 1 to 65535" in message
    assert f"got {json.dumps(port)}" in message
    # The host refuses it as a setting error (a clean exit 1), even when the command line
    # names the port or asks for no HTTP: the file is broken either way.
    local = read_local_settings(path)
    for command_line, serve_http in ((None, True), (7200, True), (None, False)):
        with pytest.raises(SettingError, match=r"Host\.LocalHttpPort"):
            choose_http_port(command_line, serve_http=serve_http, local=local)


def test_bad_values_get_a_hint_when_the_fix_is_obvious(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="write the number without quotes"):
        file_port(settings_file(tmp_path, {"LocalHttpPort": "7072"}, "a.json"))
    with pytest.raises(SettingsError, match="remove the setting for the default"):
        file_port(settings_file(tmp_path, {"LocalHttpPort": 0}, "b.json"))
    with pytest.raises(SettingsError) as raised:
        file_port(settings_file(tmp_path, {"LocalHttpPort": "7o72"}, "c.json"))
    assert "quotes" not in str(raised.value)


def test_settings_built_in_memory_say_so() -> None:
    local = LocalSettings(host={"LocalHttpPort": Path("7071")})
    with pytest.raises(SettingError, match="in the local settings must be"):
        choose_http_port(None, serve_http=True, local=local)


@pytest.mark.parametrize("host", [7071, "7071", [], "", False])
def test_a_host_section_that_is_not_an_object_is_refused(tmp_path: Path, host: Any) -> None:
    path = settings_file(tmp_path, host)
    with pytest.raises(SettingsError, match=f"'Host' in {path} must be an object"):
        read_local_settings(path)


def test_the_host_process_exits_with_the_message_not_a_traceback(tmp_path: Path) -> None:
    path = settings_file(tmp_path, {"LocalHttpPort": 70000})
    status_file = tmp_path / "status.json"
    ran = subprocess.run(
        host_command(path, status_file),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 1
    assert "Traceback" not in ran.stderr
    expected = f"Host.LocalHttpPort in {path} must be a whole number from 1 to 65535"
    assert expected in ran.stderr
    status = json.loads(status_file.read_text(encoding="utf-8"))
    assert status["state"] == "error"
    assert expected in status["error"]


# --------------------------------------------------------------------------- the real host


@pytest.mark.stack
def test_the_host_serves_on_the_settings_files_port(local_stack: Stack, tmp_path: Path) -> None:
    """No --http-port: the host listens on Host.LocalHttpPort and says where it came from."""
    port = processes.free_port()
    path = example_with_port(tmp_path, port)
    status_file = tmp_path / "status.json"
    parts = PartProcesses(ROOT, tmp_path / "state", local_stack.startup_timeout_s)
    name = "settings-port-host"  # not `host-N`: those are the stack's own instances
    spec = ProcessSpec(
        name=name,
        command=host_command(path, status_file),
        cwd=ROOT,
        log_file=parts.log_file(name),
        ports=((f"{name} HTTP", port),),
        env=local_stack.host_environment(),
    )

    def running_and_answering() -> bool:
        try:
            status = json.loads(status_file.read_text(encoding="utf-8"))
            answer = httpx.get(f"http://{LOOPBACK}:{port}/api/ping", timeout=2)
        except (OSError, ValueError, httpx.HTTPError):
            return False
        return status.get("state") == "running" and answer.text == "pong"

    try:
        parts.start(spec, running_and_answering)
        status = json.loads(status_file.read_text(encoding="utf-8"))
        assert status["http_port"] == port
        assert status["http_port_source"] == f"Host.LocalHttpPort in {path}"
        log = parts.log_file(name).read_text(encoding="utf-8")
        assert f"http port={port} from=Host.LocalHttpPort in {path}" in log
    finally:
        parts.stop(name)


@pytest.mark.stack
def test_a_taken_port_says_where_its_number_came_from(local_stack: Stack, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen()
        port = holder.getsockname()[1]
        path = example_with_port(tmp_path, port)
        ran = subprocess.run(
            host_command(path, tmp_path / "status.json"),
            cwd=ROOT,
            env=local_stack.host_environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert ran.returncode == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    assert f"cannot serve HTTP on {LOOPBACK}:{port} (from Host.LocalHttpPort in {path})" in (
        ran.stderr
    )
