"""`python -m devstack.host --app-dir DIR [--instance-id N] [--http-port P | --no-http] …`

Like `func start`, the HTTP port is `--http-port`, else `Host.LocalHttpPort` of the settings
file, else 7071 (`devstack.host.http_port`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from adapters.settings import MAX_TCP_PORT
from devstack.host.eventhub_trigger import LoadBalancing
from devstack.host.runtime import FunctionsHost, HostOptions
from devstack.settings import DEFAULT_HTTP_PORT

# Chatty SDK loggers (one line per HTTP request or link event) kept at WARNING.
# The runtime reads the host id from this setting (shared by all scaled-out instances).
HOST_ID_SETTING = "AzureFunctionsWebHost__hostid"
QUIET_LOGGERS = ("azure", "uamqp", "aiohttp.access")
# The processor reports its errors through on_error too, which the host logs with context.
SILENT_LOGGERS = ("azure.eventhub",)


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 1..65535."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= MAX_TCP_PORT:
        msg = f"must be a whole number from 1 to {MAX_TCP_PORT}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return port


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.host", description="Run function_app.py like the Functions host."
    )
    parser.add_argument(
        "--app-dir", type=Path, default=Path.cwd(), help="folder of function_app.py"
    )
    parser.add_argument("--instance-id", type=int, default=0, help="instance number for logs")
    http = parser.add_mutually_exclusive_group()
    http.add_argument(
        "--http-port",
        type=port_number,
        help=f"HTTP port (default: Host.LocalHttpPort of --settings, else {DEFAULT_HTTP_PORT})",
    )
    http.add_argument("--no-http", action="store_true", help="serve no HTTP at all")
    parser.add_argument("--settings", type=Path, help="local.settings.json (default: in app dir)")
    parser.add_argument("--status-file", type=Path, help="write a JSON status here every second")
    parser.add_argument("--log-file", type=Path, help="also log to this file")
    parser.add_argument("--log-level", default=os.environ.get("DEVSTACK_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--host-id",
        default=os.environ.get(HOST_ID_SETTING, "devstack-host"),
        help="instances sharing a host id share timer locks",
    )
    parser.add_argument("--script-file", default="function_app.py")
    parser.add_argument(
        "--load-balancing-interval",
        type=float,
        default=2.0,
        help="seconds between ownership checks",
    )
    parser.add_argument(
        "--ownership-expiration",
        type=float,
        default=10.0,
        help="seconds until a dead owner's claim lapses",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=10.0,
        help="seconds in-flight work may take on SIGTERM",
    )
    return parser.parse_args(argv)


def configure_logging(level: str, instance_id: int, log_file: Path | None) -> None:
    formatter = logging.Formatter(
        f"%(asctime)s %(levelname)s host-{instance_id} %(name)s: %(message)s"
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    root = logging.getLogger()
    root.handlers.clear()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in SILENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    configure_logging(arguments.log_level, arguments.instance_id, arguments.log_file)
    options = HostOptions(
        app_dir=arguments.app_dir.resolve(),
        instance_id=arguments.instance_id,
        http_port=arguments.http_port,
        serve_http=not arguments.no_http,
        settings_file=arguments.settings.resolve() if arguments.settings else None,
        status_file=arguments.status_file.resolve() if arguments.status_file else None,
        host_id=arguments.host_id,
        script_file=arguments.script_file,
        load_balancing=LoadBalancing(
            interval_s=arguments.load_balancing_interval,
            ownership_expiration_s=arguments.ownership_expiration,
        ),
        shutdown_grace_s=arguments.shutdown_grace,
    )
    return asyncio.run(FunctionsHost(options).run())


if __name__ == "__main__":
    sys.exit(main())
