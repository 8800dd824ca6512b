"""Which port the local host serves HTTP on, and where that number came from.

As `func start` chooses its port: `--http-port` on the command line wins (Core Tools: `--port`),
else `Host.LocalHttpPort` of local.settings.json, else 7071. `--no-http` serves none. A bad
LocalHttpPort fails the start whatever the command line says: the file is broken (Core Tools
then ignores all of it, Values too, which is worse than stopping).
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.settings import LOCAL_HTTP_PORT, LocalSettings, SettingsError
from devstack.errors import SettingError
from devstack.settings import DEFAULT_HTTP_PORT

COMMAND_LINE = "--http-port"
NO_HTTP = "--no-http"
DEFAULT = "default"


@dataclass(frozen=True)
class HttpPortChoice:
    """The port to serve HTTP on (None: no HTTP) and what chose it, for the status and logs."""

    port: int | None
    source: str
    """`--http-port`, `Host.LocalHttpPort in <file>`, `default` or `--no-http`."""


def choose_http_port(
    command_line: int | None, *, serve_http: bool, local: LocalSettings
) -> HttpPortChoice:
    """The command line's port, else the settings file's, else DEFAULT_HTTP_PORT."""
    try:
        from_file = local.local_http_port
    except SettingsError as e:
        raise SettingError(str(e)) from e
    if not serve_http:
        return HttpPortChoice(None, NO_HTTP)
    if command_line is not None:
        return HttpPortChoice(command_line, COMMAND_LINE)
    if from_file is not None:
        return HttpPortChoice(from_file, f"Host.{LOCAL_HTTP_PORT} in {local.path}")
    return HttpPortChoice(DEFAULT_HTTP_PORT, DEFAULT)
