"""The emulator process: AMQP listener, health endpoint, and housekeeping (fsync, retention)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.eventhubs.auth import SharedAccessKey
from devstack.eventhubs.broker import Broker
from devstack.eventhubs.config import EmulatorConfig
from devstack.eventhubs.connection import AmqpConnection
from devstack.eventhubs.health import HEALTH_PATH, serve_health
from devstack.eventhubs.storage import NEVER_ENQUEUED_MS

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Where to listen and how to keep data; see `python -m devstack.eventhubs --help`."""

    host: str = "127.0.0.1"
    port: int = 5672
    health_port: int = 5300
    data_dir: Path = Path(".devstack/eventhubs")
    retention_hours: float = 168.0
    fsync_interval: float = 1.0
    access_key: SharedAccessKey = field(default_factory=SharedAccessKey)

    @property
    def retention_ms(self) -> int:
        return max(1, int(self.retention_hours * 3_600_000))

    @property
    def retention_check_interval(self) -> float:
        """Seconds between retention passes: a tenth of the period, within [0.1 s, 60 s]."""
        return min(60.0, max(0.1, self.retention_ms / 10_000))


def _iso(ms: int) -> str | None:
    if ms == NEVER_ENQUEUED_MS:
        return None
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EmulatorServer:
    """Owns the broker and the listeners; `start`, then `stop` once."""

    def __init__(self, config: EmulatorConfig, settings: ServerSettings) -> None:
        self.config = config
        self.settings = settings
        self.broker = Broker(
            config,
            settings.data_dir,
            retention_ms=settings.retention_ms,
            fsync_each_append=settings.fsync_interval == 0,
        )
        self._connections: set[AmqpConnection] = set()
        self._amqp_server: asyncio.Server | None = None
        self._health_server: asyncio.Server | None = None
        self._housekeeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Trim expired events, then listen on the AMQP and health ports."""
        self.broker.apply_retention()
        loop = asyncio.get_running_loop()
        self._amqp_server = await loop.create_server(
            self._new_connection, self.settings.host, self.settings.port
        )
        self._health_server = await serve_health(
            self.settings.host, self.settings.health_port, self.health_report
        )
        self._housekeeping = asyncio.create_task(self._housekeep(), name="eventhubs-housekeeping")
        _LOG.info(
            "eventhubs emulator ready amqp=%s:%d health=http://%s:%d%s data_dir=%s hubs=%s"
            " sas_key_name=%s",
            self.settings.host,
            self.settings.port,
            self.settings.host,
            self.settings.health_port,
            HEALTH_PATH,
            self.settings.data_dir,
            ",".join(f"{h.name}({h.partition_count})" for h in self.config.hubs),
            self.settings.access_key.name,
        )

    async def stop(self) -> None:
        """Close listeners and connections, fsync and close every log."""
        for server in (self._amqp_server, self._health_server):
            if server is not None:
                server.close()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        for connection in list(self._connections):
            connection.close()
        await asyncio.sleep(0.05)  # let the close frames reach the sockets
        self.broker.close()
        _LOG.info("eventhubs emulator stopped")

    def _new_connection(self) -> AmqpConnection:
        connection = AmqpConnection(
            self.broker, self._connections.discard, self.settings.access_key
        )
        self._connections.add(connection)
        return connection

    async def _housekeep(self) -> None:
        """fsync written logs every `fsync_interval`; trim expired events as often as useful."""
        loop = asyncio.get_running_loop()
        fsync_every = self.settings.fsync_interval or 0.05
        trim_every = self.settings.retention_check_interval
        next_fsync = loop.time() + fsync_every
        next_trim = loop.time() + trim_every
        while True:
            await asyncio.sleep(max(0.0, min(next_fsync, next_trim) - loop.time()))
            now = loop.time()
            try:
                if now >= next_fsync:
                    next_fsync = now + fsync_every
                    self.broker.flush()
                if now >= next_trim:
                    next_trim = now + trim_every
                    self.broker.apply_retention()
            except Exception:
                _LOG.exception("housekeeping failed; will retry")

    def health_report(self) -> dict[str, Any]:
        hubs = []
        for hub in self.config.hubs:
            partitions = []
            for index, partition_id in enumerate(hub.partition_ids):
                info = self.broker.partition_info(hub, index)
                partitions.append(
                    {
                        "id": partition_id,
                        "begin_sequence_number": info.begin_sequence_number,
                        "last_enqueued_sequence_number": info.last_sequence_number,
                        "last_enqueued_offset": info.last_offset,
                        "last_enqueued_time_utc": _iso(info.last_enqueued_ms),
                        "is_empty": info.is_empty,
                        "receivers": self.broker.receiver_count(hub, index),
                    }
                )
            hubs.append(
                {
                    "name": hub.name,
                    "partition_count": hub.partition_count,
                    "consumer_groups": list(hub.consumer_groups),
                    "partitions": partitions,
                }
            )
        return {
            "status": "healthy",
            "namespace": self.config.namespace,
            "amqp": f"{self.settings.host}:{self.settings.port}",
            "connections": len(self._connections),
            "retention_hours": self.settings.retention_hours,
            "sas_key_name": self.settings.access_key.name,
            "hubs": hubs,
        }
