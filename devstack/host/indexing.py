"""Load function_app.py and index it through the azure-functions library's own metadata.

Mirrors the Python worker: import the script module with the app dir first on sys.path, find the
single top-level `FunctionRegister` (FunctionApp), call `get_functions()` and read each function's
raw bindings (the JSON the host receives) and its retry setting.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.functions as func

from devstack.errors import IndexingError
from devstack.host.host_config import parse_timespan

logger = logging.getLogger(__name__)

HTTP_TRIGGER = "httptrigger"
EVENTHUB_TRIGGER = "eventhubtrigger"
TIMER_TRIGGER = "timertrigger"
SUPPORTED_TRIGGERS = frozenset({HTTP_TRIGGER, EVENTHUB_TRIGGER, TIMER_TRIGGER})
CONTEXT_PARAMETER = "context"


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
    """One indexed function: its callable, its trigger binding and its settings."""

    name: str
    user_function: Callable[..., Any]
    trigger: dict[str, Any]
    bindings: tuple[dict[str, Any], ...]
    retry: RetryPolicy | None
    directory: Path

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"]).lower()

    @property
    def trigger_argument(self) -> str:
        return str(self.trigger["name"])

    @property
    def accepts_context(self) -> bool:
        return CONTEXT_PARAMETER in inspect.signature(self.user_function).parameters

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)


def parse_retry_policy(function_name: str, setting: dict[str, Any] | None) -> RetryPolicy | None:
    """Turn the library's retry_policy setting into a RetryPolicy (None when absent)."""
    if not setting:
        return None
    strategy = str(setting.get("strategy", "")).lower()
    try:
        max_count = int(setting.get("max_retry_count", 0))
        if strategy == "fixed_delay":
            return RetryPolicy(
                strategy=strategy,
                max_retry_count=max_count,
                delay_interval=parse_timespan(str(setting.get("delay_interval", "00:00:00"))),
            )
        if strategy == "exponential_backoff":
            return RetryPolicy(
                strategy=strategy,
                max_retry_count=max_count,
                minimum_interval=parse_timespan(str(setting.get("minimum_interval"))),
                maximum_interval=parse_timespan(str(setting.get("maximum_interval"))),
            )
    except (TypeError, ValueError) as e:
        msg = f"function {function_name}: retry policy {setting} is malformed: {e}"
        raise IndexingError(msg) from e
    msg = (
        f"function {function_name}: retry strategy {strategy!r} is neither "
        "'fixed_delay' nor 'exponential_backoff'"
    )
    raise IndexingError(msg)


def import_script(app_dir: Path, script_file: str) -> Any:
    """Import the app's script module the way the worker does (app dir first on sys.path)."""
    script = app_dir / script_file
    if not script.is_file():
        msg = f"{script} not found; point --app-dir at the folder holding {script_file}"
        raise IndexingError(msg)
    app_path = str(app_dir)
    if app_path in sys.path:
        sys.path.remove(app_path)
    sys.path.insert(0, app_path)
    module_name = Path(script_file).stem
    loaded = sys.modules.get(module_name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "") != script:
        # Another app's script of the same name (only happens when one process indexes twice).
        del sys.modules[module_name]
    try:
        return importlib.import_module(module_name)
    except Exception as e:
        detail = "".join(traceback.format_exception(e)).rstrip()
        msg = f"importing {script} failed:\n{detail}"
        raise IndexingError(msg) from e


def find_function_app(module: Any, script_file: str) -> func.FunctionRegister:
    """The single top-level FunctionRegister in the module, as the worker requires."""
    found: list[func.FunctionRegister] = []
    for name in dir(module):
        value = getattr(module, name, None)
        if isinstance(value, func.FunctionRegister) and all(value is not f for f in found):
            found.append(value)
    if not found:
        msg = f"no top-level FunctionApp instance in {script_file}"
        raise IndexingError(msg)
    if len(found) > 1:
        msg = f"more than one top-level FunctionApp instance in {script_file}"
        raise IndexingError(msg)
    return found[0]


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


def index_functions(
    app_dir: Path, script_file: str = "function_app.py"
) -> list[FunctionDefinition]:
    """Import the app and return its functions, failing like the worker on a broken app."""
    module = import_script(app_dir, script_file)
    app = find_function_app(module, script_file)
    try:
        functions = app.get_functions()
    except Exception as e:
        msg = f"indexing {script_file} failed: {e}"
        raise IndexingError(msg) from e
    definitions: list[FunctionDefinition] = []
    for function in functions:
        name = function.get_function_name() or function.get_user_function().__name__
        bindings = [json.loads(raw) for raw in function.get_raw_bindings()]
        declared = function.get_trigger()
        trigger_name = declared.name if declared is not None else None
        trigger = next(
            b for b in bindings if b.get("name") == trigger_name and b["direction"] == "IN"
        )
        _check_supported(name, trigger, bindings)
        definitions.append(
            FunctionDefinition(
                name=name,
                user_function=function.get_user_function(),
                trigger=trigger,
                bindings=tuple(bindings),
                retry=parse_retry_policy(name, function.get_settings_dict("retry_policy")),
                directory=app_dir,
            )
        )
        logger.info("indexed function name=%s trigger=%s", name, trigger["type"])
    return definitions
