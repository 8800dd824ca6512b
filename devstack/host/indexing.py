"""The functions of an app as the host knows them: from the worker runtime's metadata.

The worker runtime (`devstack.host.worker`) imports and indexes the app; what the host keeps of
each function is what the Functions host gets in the metadata response: a function id, the raw
binding JSON (trigger settings, `%SETTING%` names, connections) and the retry options.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from devstack.errors import IndexingError
from devstack.host.rpc import protos

logger = logging.getLogger(__name__)

HTTP_TRIGGER = "httptrigger"
EVENTHUB_TRIGGER = "eventhubtrigger"
TIMER_TRIGGER = "timertrigger"
SUPPORTED_TRIGGERS = frozenset({HTTP_TRIGGER, EVENTHUB_TRIGGER, TIMER_TRIGGER})


@dataclass(frozen=True)
class RetryPolicy:
    """`@app.retry`: how often and how long to wait before re-running a failed invocation."""

    strategy: str  # fixed_delay | exponential_backoff
    max_retry_count: int  # -1 retries forever, like the runtime
    delay_interval: timedelta = timedelta(0)
    minimum_interval: timedelta = timedelta(0)
    maximum_interval: timedelta = timedelta(0)

    def allows_retry(self, retries_done: int) -> bool:
        """Whether another retry may follow `retries_done` retries."""
        return self.max_retry_count < 0 or retries_done < self.max_retry_count

    def delay_before_retry(self, retry_number: int) -> timedelta:
        """The wait before retry number `retry_number` (1-based)."""
        if self.strategy == "fixed_delay":
            return self.delay_interval
        doubled: timedelta = self.minimum_interval * (2 ** max(retry_number - 1, 0))
        return min(doubled, self.maximum_interval)


@dataclass(frozen=True)
class FunctionDefinition:
    """One indexed function: its id in the worker, its trigger binding and its retry policy."""

    name: str
    function_id: str
    trigger: dict[str, Any]
    retry: RetryPolicy | None

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"]).lower()

    @property
    def trigger_argument(self) -> str:
        return str(self.trigger["name"])

    @property
    def max_retry_count(self) -> int:
        return self.retry.max_retry_count if self.retry else 0


def retry_policy(metadata: Any) -> RetryPolicy | None:
    """The RpcRetryOptions of a function's metadata as a RetryPolicy (None when absent)."""
    if not metadata.HasField("retry_options"):
        return None
    options = metadata.retry_options
    strategy = protos.RpcRetryOptions.RetryStrategy.Name(options.retry_strategy)
    return RetryPolicy(
        strategy=strategy,
        max_retry_count=options.max_retry_count,
        delay_interval=options.delay_interval.ToTimedelta(),
        minimum_interval=options.minimum_interval.ToTimedelta(),
        maximum_interval=options.maximum_interval.ToTimedelta(),
    )


def _check_supported(name: str, trigger: dict[str, Any], bindings: list[dict[str, Any]]) -> None:
    trigger_type = str(trigger["type"]).lower()
    if trigger_type not in SUPPORTED_TRIGGERS:
        msg = (
            f"function {name}: trigger {trigger['type']!r} is not run by the local host "
            "(supported: httpTrigger, eventHubTrigger, timerTrigger)"
        )
        raise IndexingError(msg)
    for binding in bindings:
        if binding is trigger:
            continue
        is_http_return = str(binding["type"]).lower() == "http" and trigger_type == HTTP_TRIGGER
        if not is_http_return:
            msg = (
                f"function {name}: binding {binding['type']!r} ({binding.get('name')}) is not "
                "emulated by the local host; use the Azure SDK in the function instead"
            )
            raise IndexingError(msg)


def function_definition(metadata: Any) -> FunctionDefinition:
    """What the host needs of one function, from its RpcFunctionMetadata."""
    name = str(metadata.name)
    bindings = [json.loads(raw) for raw in metadata.raw_bindings]
    triggers = [b for b in bindings if str(b.get("type", "")).lower().endswith("trigger")]
    if len(triggers) != 1:
        msg = f"function {name}: expected one trigger binding, found {len(triggers)}"
        raise IndexingError(msg)
    trigger = triggers[0]
    _check_supported(name, trigger, bindings)
    logger.info("indexed function name=%s trigger=%s", name, trigger["type"])
    return FunctionDefinition(
        name=name,
        function_id=str(metadata.function_id),
        trigger=trigger,
        retry=retry_policy(metadata),
    )
