"""One invocation as the Functions host makes it: through the worker runtime, with a timeout.

The host builds the trigger's input (`ParameterBinding`s and trigger metadata, the messages the
real host sends), the worker runtime decodes it into `azure.functions` objects and runs the
function (async ones on the loop, sync ones in its thread pool); a function that raised comes
back as a Failure with the runtime's message and stack trace.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from devstack.host.indexing import FunctionDefinition
from devstack.host.worker import FunctionInvocationError, WorkerRuntime, invocation_error

logger = logging.getLogger(__name__)


class FunctionTimeoutError(TimeoutError):
    """The invocation ran longer than host.json functionTimeout."""


@dataclass(frozen=True)
class InvocationOutcome:
    """What one invocation returned (the `$return` TypedData) or how it failed."""

    invocation_id: str
    result: Any = None
    error: BaseException | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None


class FunctionInvoker:
    """Invokes one function of the app loaded in the worker runtime."""

    def __init__(
        self,
        definition: FunctionDefinition,
        worker: WorkerRuntime,
        timeout: timedelta | None,
    ) -> None:
        self.definition = definition
        self._worker = worker
        self._timeout = timeout.total_seconds() if timeout else None

    @property
    def worker_capabilities(self) -> Mapping[str, str]:
        """The capabilities the worker runtime announced when it loaded the app."""
        return self._worker.capabilities

    async def invoke(
        self,
        input_data: Sequence[Any],
        *,
        trigger_metadata: Mapping[str, Any] | None = None,
        retry_count: int = 0,
        previous_error: BaseException | None = None,
        log_context: Mapping[str, object] | None = None,
    ) -> InvocationOutcome:
        """Invoke once; a failure comes back in the outcome, never raised."""
        invocation_id = str(uuid.uuid4())
        name = self.definition.name
        extra = " ".join(f"{k}={v}" for k, v in (log_context or {}).items())
        logger.debug(
            "executing function=%s invocation_id=%s retry=%s %s",
            name,
            invocation_id,
            retry_count,
            extra,
        )
        call = self._worker.invoke(
            self.definition.function_id,
            invocation_id,
            input_data,
            trigger_metadata=trigger_metadata,
            retry_count=retry_count,
            max_retry_count=self.definition.max_retry_count,
            previous_error=str(previous_error) if previous_error else "",
        )
        task = asyncio.ensure_future(call)
        try:
            done, _ = await asyncio.wait({task}, timeout=self._timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            logger.error(
                "function timed out function=%s invocation_id=%s timeout_s=%s",
                name,
                invocation_id,
                self._timeout,
            )
            message = f"function {name} exceeded functionTimeout {self._timeout}s"
            return InvocationOutcome(invocation_id, error=FunctionTimeoutError(message))
        response = task.result()
        error: FunctionInvocationError | None = invocation_error(response)
        if error is not None:
            logger.error(
                "function failed function=%s invocation_id=%s error=%s %s\n%s",
                name,
                invocation_id,
                error.message,
                extra,
                error.stack_trace.rstrip(),
            )
            return InvocationOutcome(invocation_id, error=error)
        logger.debug("executed function=%s invocation_id=%s status=succeeded", name, invocation_id)
        result = response.return_value if response.HasField("return_value") else None
        return InvocationOutcome(invocation_id, result=result)
