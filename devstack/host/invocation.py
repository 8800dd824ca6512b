"""Calling a user function like the Python worker: context, thread pool, timeout, retries."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import azure.functions as func
from azure.functions import _abc as func_abc

from devstack.host.indexing import FunctionDefinition

logger = logging.getLogger(__name__)


class _TraceContext(func_abc.TraceContext):
    """An empty W3C trace context (no distributed tracing locally)."""

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RpcException(func_abc.RpcException):
    """The previous failure as the worker reports it in the retry context."""

    def __init__(self, error: BaseException | None) -> None:
        self._error = error

    @property
    def source(self) -> str:
        return type(self._error).__module__ if self._error else ""

    @property
    def stack_trace(self) -> str:
        return ""

    @property
    def message(self) -> str:
        return str(self._error) if self._error else ""


class _RetryContext(func_abc.RetryContext):
    def __init__(self, retry_count: int, max_retry_count: int, error: BaseException | None):
        self._retry_count = retry_count
        self._max_retry_count = max_retry_count
        self._error = _RpcException(error)

    @property
    def retry_count(self) -> int:
        return self._retry_count

    @property
    def max_retry_count(self) -> int:
        return self._max_retry_count

    @property
    def exception(self) -> func_abc.RpcException:
        return self._error


class InvocationContext(func.Context):
    """The `context` argument a function may declare."""

    _thread_local = threading.local()

    def __init__(
        self,
        definition: FunctionDefinition,
        *,
        retry_count: int = 0,
        previous_error: BaseException | None = None,
    ) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._definition = definition
        max_retries = definition.retry.max_retry_count if definition.retry else 0
        self._retry = _RetryContext(retry_count, max_retries, previous_error)

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._definition.name

    @property
    def function_directory(self) -> str:
        return str(self._definition.directory)

    @property
    def trace_context(self) -> func_abc.TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> func_abc.RetryContext:
        return self._retry


class FunctionTimeoutError(TimeoutError):
    """The invocation ran longer than host.json functionTimeout."""


@dataclass(frozen=True)
class InvocationOutcome:
    """What one invocation returned or raised."""

    invocation_id: str
    result: Any = None
    error: BaseException | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None


class FunctionInvoker:
    """Runs one function: async ones on the loop, sync ones in the worker thread pool."""

    def __init__(
        self,
        definition: FunctionDefinition,
        executor: ThreadPoolExecutor,
        timeout: timedelta | None,
    ) -> None:
        self.definition = definition
        self._executor = executor
        self._timeout = timeout.total_seconds() if timeout else None

    async def invoke(
        self,
        trigger_value: Any,
        *,
        retry_count: int = 0,
        previous_error: BaseException | None = None,
        log_context: Mapping[str, object] | None = None,
    ) -> InvocationOutcome:
        """Invoke once; user exceptions come back in the outcome, never raised."""
        context = InvocationContext(
            self.definition, retry_count=retry_count, previous_error=previous_error
        )
        kwargs: dict[str, Any] = {self.definition.trigger_argument: trigger_value}
        if self.definition.accepts_context:
            kwargs["context"] = context
        extra = " ".join(f"{k}={v}" for k, v in (log_context or {}).items())
        logger.debug(
            "executing function=%s invocation_id=%s retry=%s %s",
            self.definition.name,
            context.invocation_id,
            retry_count,
            extra,
        )
        task = asyncio.ensure_future(self._call(kwargs))
        try:
            done, _ = await asyncio.wait({task}, timeout=self._timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            logger.error(
                "function timed out function=%s invocation_id=%s timeout_s=%s",
                self.definition.name,
                context.invocation_id,
                self._timeout,
            )
            message = f"function {self.definition.name} exceeded functionTimeout {self._timeout}s"
            return InvocationOutcome(context.invocation_id, error=FunctionTimeoutError(message))
        try:
            result = task.result()
        except Exception as e:
            logger.exception(
                "function failed function=%s invocation_id=%s error=%r %s",
                self.definition.name,
                context.invocation_id,
                e,
                extra,
            )
            return InvocationOutcome(context.invocation_id, error=e)
        logger.debug(
            "executed function=%s invocation_id=%s status=succeeded",
            self.definition.name,
            context.invocation_id,
        )
        return InvocationOutcome(context.invocation_id, result=result)

    async def _call(self, kwargs: dict[str, Any]) -> Any:
        user_function = self.definition.user_function
        if self.definition.is_async:
            return await user_function(**kwargs)
        loop = asyncio.get_running_loop()
        # copy_context keeps contextvars (e.g. logging context) visible in the worker thread.
        call = functools.partial(contextvars.copy_context().run, user_function, **kwargs)
        return await loop.run_in_executor(self._executor, call)
