"""The Event Hubs emulator (`devstack.eventhubs`) as a part of the stack: one AMQP port, one
health port, data in `<state>/eventhubs`."""

from __future__ import annotations

from pathlib import Path

from devstack.errors import PartStartError
from devstack.eventhubs.auth import DEFAULT_KEY, DEFAULT_KEY_NAME
from devstack.eventhubs.health import fetch_health
from devstack.parts.processes import PartProcesses, ServicePart
from devstack.processes import ProcessSpec
from devstack.settings import LOOPBACK, eventhubs_emulator_connection_string

PROBE_TIMEOUT_S = 2.0


class EventHubsPart(ServicePart):
    """The emulator of one stack."""

    NAME = "eventhubs"

    def __init__(
        self, parts: PartProcesses, *, amqp_port: int, health_port: int, config: Path
    ) -> None:
        self._parts = parts
        self.amqp_port = amqp_port
        self.health_port = health_port
        self.config = config

    @property
    def connection_string(self) -> str:
        """The official emulator's connection string on this emulator's port."""
        return eventhubs_emulator_connection_string(self.amqp_port)

    def healthy(self) -> bool:
        try:
            fetch_health(LOOPBACK, self.health_port, timeout=PROBE_TIMEOUT_S)
        except (OSError, ValueError):
            return False
        return True

    def start(self) -> float:
        """Start the emulator unless running; seconds to healthy."""
        if self._parts.running(self.NAME) is not None and self.healthy():
            return 0.0
        if not self.config.exists():
            msg = f"Event Hubs emulator config {self.config} is missing"
            raise PartStartError(msg)
        data_dir = self._parts.state_dir / "eventhubs"
        data_dir.mkdir(parents=True, exist_ok=True)
        spec = ProcessSpec(
            name=self.NAME,
            command=(
                self._parts.python(),
                "-m",
                "devstack.eventhubs",
                "--config",
                str(self.config),
                "--host",
                LOOPBACK,
                "--port",
                str(self.amqp_port),
                "--health-port",
                str(self.health_port),
                "--data-dir",
                str(data_dir),
                # The key the stack's connection strings carry, whatever EVENTHUBS_SAS_KEY says
                # in the shell that started the stack (it is the well-known one: not a secret).
                "--sas-key-name",
                DEFAULT_KEY_NAME,
                "--sas-key",
                DEFAULT_KEY,
            ),
            cwd=self._parts.root,
            log_file=self._parts.log_file(self.NAME),
            ports=(("Event Hubs AMQP", self.amqp_port), ("Event Hubs health", self.health_port)),
            env=self._parts.python_env(),
        )
        return self._parts.start(spec, self.healthy)

    def detail(self) -> str:
        return f"amqp {self.amqp_port}, health {self.health_port}"
