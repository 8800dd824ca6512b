"""Microsoft's Python worker runtime, driven the way its proxy worker drives it on Azure.

From Python 3.13 the code that indexes a v2-model app, validates its bindings, decodes trigger
data and invokes the functions is the PyPI package `azure-functions-runtime`, pinned in the
app's requirements.txt. On Azure a proxy worker turns the host's gRPC messages into calls of the
runtime's request handlers; here the local host calls the same handlers with the same messages
(`devstack.host.rpc`): worker init (which imports and indexes the app), functions metadata,
function load, invocation. A refused app fails here with the runtime's own words.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure_functions_runtime as runtime

from devstack.errors import IndexingError
from devstack.host.rpc import protos

logger = logging.getLogger(__name__)

# What the host tells the worker about itself (WorkerInitRequest.host_version).
HOST_VERSION = "4.1000.0-devstack"
SCRIPT_FILE_SETTING = "PYTHON_SCRIPT_FILE_NAME"


@dataclass(frozen=True)
class WorkerRequest:
    """What the proxy worker hands a runtime handler: the message and, on init, the protos."""

    name: str
    request: Any
    properties: dict[str, Any] | None = None


class AppLoadError(IndexingError):
    """The worker runtime refused the app (import failure, an invalid binding or annotation)."""


class FunctionInvocationError(Exception):
    """A function raised; the message and stack trace are the runtime's report of it."""

    def __init__(self, message: str, stack_trace: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.stack_trace = stack_trace


def _failure(result: Any) -> str | None:
    """The runtime's message when a StatusResult is not Success, else None."""
    if result.status == protos.StatusResult.Success:
        return None
    exception = result.exception
    detail = exception.stack_trace.rstrip() or exception.message
    return f"{exception.message}\n{detail}" if detail != exception.message else detail


def _message(**content: Any) -> Any:
    return protos.StreamingMessage(request_id=str(uuid.uuid4()), **content)


class WorkerRuntime:
    """One app loaded into the runtime of this process (the runtime keeps process globals)."""

    def __init__(self, app_dir: Path, *, script_file: str = "function_app.py") -> None:
        self.app_dir = app_dir
        self.script_file = script_file
        self.capabilities: dict[str, str] = {}
        """What the worker announced at init (they change how the host encodes trigger data)."""

    def _prepare_process(self) -> None:
        if not (self.app_dir / self.script_file).is_file():
            msg = f"{self.app_dir / self.script_file} not found; point --app-dir at its folder"
            raise AppLoadError(msg)
        # As the proxy worker does: the app folder first on sys.path, and the current directory.
        app_path = str(self.app_dir)
        if app_path in sys.path:
            sys.path.remove(app_path)
        sys.path.insert(0, app_path)
        os.chdir(self.app_dir)
        os.environ.setdefault(SCRIPT_FILE_SETTING, self.script_file)

    async def load(self) -> Sequence[Any]:
        """Init the worker (it indexes the app), then load every function; their metadata."""
        self._prepare_process()
        runtime.start_threadpool_executor()
        init = protos.WorkerInitRequest(
            host_version=HOST_VERSION,
            function_app_directory=str(self.app_dir),
            worker_directory=str(Path(runtime.__file__).parent),
        )
        response = await runtime.worker_init_request(
            WorkerRequest(
                "WorkerInitRequest",
                _message(worker_init_request=init),
                {"protos": protos, "host": "127.0.0.1"},
            )
        )
        if (error := _failure(response.result)) is not None:
            raise AppLoadError(f"the worker runtime refused the app: {error}")
        self.capabilities = dict(response.capabilities)
        metadata_request = protos.FunctionsMetadataRequest(function_app_directory=str(self.app_dir))
        metadata = await runtime.functions_metadata_request(
            WorkerRequest(
                "WorkerMetadataRequest", _message(functions_metadata_request=metadata_request)
            )
        )
        if (error := _failure(metadata.result)) is not None:
            raise AppLoadError(f"the worker runtime reported no functions: {error}")
        functions = list(metadata.function_metadata_results)
        if not functions:
            msg = f"the worker runtime found no functions in {self.app_dir / self.script_file}"
            raise AppLoadError(msg)
        for function in functions:
            load = protos.FunctionLoadRequest(function_id=function.function_id, metadata=function)
            loaded = await runtime.function_load_request(
                WorkerRequest("FunctionLoadRequest", _message(function_load_request=load))
            )
            if (error := _failure(loaded.result)) is not None:
                raise AppLoadError(f"the worker runtime did not load {function.name}: {error}")
        return functions

    async def invoke(
        self,
        function_id: str,
        invocation_id: str,
        input_data: Sequence[Any],
        *,
        trigger_metadata: Mapping[str, Any] | None = None,
        retry_count: int = 0,
        max_retry_count: int = 0,
        previous_error: str = "",
    ) -> Any:
        """One InvocationRequest; the InvocationResponse (a raised function is a Failure)."""
        request = protos.InvocationRequest(
            invocation_id=invocation_id,
            function_id=function_id,
            input_data=list(input_data),
            retry_context=protos.RetryContext(
                retry_count=retry_count,
                max_retry_count=max_retry_count,
                exception=protos.RpcException(message=previous_error),
            ),
        )
        for name, value in (trigger_metadata or {}).items():
            request.trigger_metadata[name].CopyFrom(value)
        return await runtime.invocation_request(
            WorkerRequest("FunctionInvocationRequest", _message(invocation_request=request))
        )

    def stop(self) -> None:
        """Drop the runtime's thread pool without waiting: a hung function must not hang us."""
        executor = runtime.get_threadpool_executor()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


def invocation_error(response: Any) -> FunctionInvocationError | None:
    """The function's failure as the runtime reported it, or None when it succeeded."""
    if response.result.status == protos.StatusResult.Success:
        return None
    exception = response.result.exception
    return FunctionInvocationError(exception.message, exception.stack_trace)
