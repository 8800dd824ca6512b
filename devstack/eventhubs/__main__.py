"""Run the Event Hubs emulator: `python -m devstack.eventhubs --help`.

    python -m devstack.eventhubs --config devstack/eventhubs.config.json \\
        --host 127.0.0.1 --port 5672 --health-port 5300 --data-dir .devstack/eventhubs \\
        [--retention-hours 168] [--fsync-interval 1.0] [--log-file F] [--log-level INFO] \\
        [--sas-key-name RootManageSharedAccessKey] [--sas-key SAS_KEY_VALUE]

Clients authenticate with a shared access signature made from the key name and key (default:
the official emulator's well-known pair; `EVENTHUBS_SAS_KEY` in the environment keeps another
key off the command line).

Exit codes: 0 after SIGTERM/SIGINT (clean shutdown, logs fsynced), 1 storage or port error,
2 bad configuration or arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from devstack.eventhubs.auth import DEFAULT_KEY, DEFAULT_KEY_NAME, SharedAccessKey
from devstack.eventhubs.config import load_config
from devstack.eventhubs.errors import ConfigError, StorageError
from devstack.eventhubs.server import EmulatorServer, ServerSettings

_LOG = logging.getLogger("devstack.eventhubs")

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "eventhubs.config.json"
SAS_KEY_ENV = "EVENTHUBS_SAS_KEY"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.eventhubs",
        description="Local Event Hubs emulator (AMQP 1.0) with durable partition logs.",
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="Config.json path")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    parser.add_argument("--port", type=int, default=5672, help="AMQP port")
    parser.add_argument("--health-port", type=int, default=5300, help="HTTP /health port")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(".devstack/eventhubs"), help="partition logs"
    )
    parser.add_argument(
        "--retention-hours", type=float, default=168.0, help="event retention (default 7 days)"
    )
    parser.add_argument(
        "--fsync-interval",
        type=float,
        default=1.0,
        help="seconds between fsyncs of written logs (0: fsync every send before accepting it)",
    )
    parser.add_argument(
        "--sas-key-name",
        default=DEFAULT_KEY_NAME,
        help=f"shared access policy clients sign with (default {DEFAULT_KEY_NAME})",
    )
    parser.add_argument(
        "--sas-key",
        default=os.environ.get(SAS_KEY_ENV, DEFAULT_KEY),
        help=f"its key (default ${SAS_KEY_ENV}, else the emulator's well-known {DEFAULT_KEY})",
    )
    parser.add_argument("--log-file", type=Path, default=None, help="log here instead of stderr")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    return parser


def _configure_logging(log_file: Path | None, level: str) -> None:
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())


def _check_settings(args: argparse.Namespace) -> ServerSettings:
    for name in ("port", "health_port"):
        value = getattr(args, name)
        if not 0 <= value <= 65535:
            raise ConfigError(f"--{name.replace('_', '-')} {value} is not a TCP port")
    if args.retention_hours <= 0:
        raise ConfigError(f"--retention-hours {args.retention_hours} must be positive")
    if args.fsync_interval < 0:
        raise ConfigError(f"--fsync-interval {args.fsync_interval} must not be negative")
    if not args.sas_key_name or not args.sas_key:
        raise ConfigError("--sas-key-name and --sas-key must not be empty")
    return ServerSettings(
        host=args.host,
        port=args.port,
        health_port=args.health_port,
        data_dir=args.data_dir,
        retention_hours=args.retention_hours,
        fsync_interval=args.fsync_interval,
        access_key=SharedAccessKey(args.sas_key_name, args.sas_key),
    )


def _warn_if_exposed(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        _LOG.warning(
            "listening on host=%s: anyone who can reach it and knows the key gets in, over"
            " plain TCP",
            host,
        )


async def _serve(server: EmulatorServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    try:
        await stop.wait()
    finally:
        _LOG.info("shutting down")
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.log_file, args.log_level)
    try:
        settings = _check_settings(args)
        config = load_config(args.config)
        _warn_if_exposed(settings.host)
        server = EmulatorServer(config, settings)
    except ConfigError as e:
        _LOG.error("configuration error: %s", e)
        return 2
    except StorageError as e:
        _LOG.error("storage error: %s", e)
        return 1
    try:
        asyncio.run(_serve(server))
    except OSError as e:
        _LOG.error("cannot listen: %s (is another emulator on these ports?)", e)
        server.broker.close()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
