"""Send deliveries to ingest or the hub: the part `send`, `replay` and `run` share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from adapters.settings import PublishSettings, app_environment
from adapters.webhook import RetryPolicy
from simulator.errors import UsageError
from simulator.send.delivery import Delivery, Outcome, Target
from simulator.send.http_target import DEFAULT_FUNCTION_KEY, DEFAULT_TIMEOUT_S, HttpTarget
from simulator.send.hub_target import EventHubTarget
from simulator.send.pacing import SendResult, send_all


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """Where to send and how: ingest over HTTP (`url`) or the hub (`eventhub`)."""

    url: str | None = None
    eventhub: bool = False
    secret: bytes | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    eventbridge_policy: RetryPolicy = field(default_factory=RetryPolicy.eventbridge)
    eventbridge_route: bool = True
    """EventBridge events go as an API destination sends them (False: as a relay would)."""
    function_key: str = DEFAULT_FUNCTION_KEY
    concurrency: int = 16
    timeout_s: float = DEFAULT_TIMEOUT_S
    settings: Path | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (not self.eventhub):
            msg = "say where to send: --target URL (ingest over HTTP) or --eventhub, not both"
            raise UsageError(msg)

    def describe(self) -> str:
        return "event hub (bypassing ingest)" if self.eventhub else f"ingest {self.url}"

    def open(self) -> Target:
        """A target bound to the running event loop."""
        if self.url is not None:
            return HttpTarget(
                self.url,
                secret=self.secret,
                policy=self.policy,
                eventbridge_policy=self.eventbridge_policy,
                eventbridge_route=self.eventbridge_route,
                function_key=self.function_key,
                timeout_s=self.timeout_s,
                concurrency=self.concurrency,
            )
        hub = PublishSettings.from_env(app_environment(self.settings))
        return EventHubTarget(hub, policy=self.policy, concurrency=self.concurrency)


def send(
    deliveries: Sequence[Delivery],
    spec: TargetSpec,
    *,
    rate: float,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> SendResult:
    """Deliver everything at `rate`; blocks until every delivery has its final outcome."""

    async def main() -> SendResult:
        target = spec.open()
        try:
            return await send_all(deliveries, target, rate=rate, on_outcome=on_outcome)
        finally:
            await target.aclose()

    return asyncio.run(main())
