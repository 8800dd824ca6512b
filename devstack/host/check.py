"""`python -m devstack.host.check [--app-dir DIR] [--invoke-all] [--forbid PKG ...]`.

Loads an app into Microsoft's worker runtime exactly as the local host does (and as Azure does,
through the proxy worker) and prints what the runtime indexed as JSON; an app the runtime
refuses exits 1 with the runtime's own message. `make run` and `make test` call it first.
With `--invoke-all` every function is invoked once with an empty input of its trigger's kind
(failures for want of settings are expected and reported, not fatal); `--forbid` names packages
the app must not import while loading or on those first invocations (exit 2 if it does).

Imports only the standard library, protobuf, the runtime and azure-eventhub besides this
folder, so the deploy test can run it in a clean environment: the deploy package and protobuf.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from azure.eventhub import EventData

from devstack.errors import IndexingError
from devstack.host.trigger_data import (
    PartitionInfo,
    TriggerInput,
    WorkerCapabilities,
    batch_input,
    http_input,
    single_input,
    timer_input,
)
from devstack.host.worker import WorkerRuntime, invocation_error

INVOKE_TIMEOUT_S = 30.0
PARTITION = PartitionInfo("localhost", "check", "$Default", "0")


def empty_input(
    name: str, binding: dict[str, Any], capabilities: WorkerCapabilities
) -> TriggerInput:
    """The smallest well-formed input of a trigger, built as the host builds it."""
    kind = str(binding["type"]).lower()
    argument = str(binding["name"])
    if kind == "httptrigger":
        method = str((binding.get("methods") or ["GET"])[0]).upper()
        http = http_input(argument, method=method, url="http://127.0.0.1/", body=b"")
        return TriggerInput([http], {})
    if kind == "eventhubtrigger":
        data_type = str(binding.get("dataType", "")).lower()
        if str(binding.get("cardinality", "")).lower() == "many":
            return batch_input(
                [],
                PARTITION,
                argument=argument,
                data_type=data_type,
                function_name=name,
                capabilities=capabilities,
            )
        event = EventData(b"{}")
        return single_input(
            event, PARTITION, argument=argument, data_type=data_type, function_name=name
        )
    return TriggerInput([timer_input(argument, False, None)], {})


async def check(app_dir: Path, *, invoke_all: bool) -> dict[str, Any]:
    """Load the app; describe its functions and, optionally, one invocation of each."""
    worker = WorkerRuntime(app_dir)
    metadata = await worker.load()
    report: dict[str, Any] = {"functions": [], "invocations": {}}
    for function in metadata:
        bindings = [json.loads(raw) for raw in function.raw_bindings]
        report["functions"].append({"name": function.name, "bindings": bindings})
        if not invoke_all:
            continue
        trigger = next(b for b in bindings if str(b["type"]).lower().endswith("trigger"))
        given = empty_input(
            function.name, trigger, WorkerCapabilities.announced(worker.capabilities)
        )
        call = worker.invoke(
            function.function_id,
            f"check-{function.name}",
            given.input_data,
            trigger_metadata=given.trigger_metadata,
        )
        try:
            response = await asyncio.wait_for(call, INVOKE_TIMEOUT_S)
        except TimeoutError:
            report["invocations"][function.name] = "timed out"
            continue
        error = invocation_error(response)
        report["invocations"][function.name] = "ok" if error is None else f"failed: {error}"
    worker.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.host.check", description=__doc__)
    parser.add_argument("--app-dir", type=Path, default=Path.cwd())
    parser.add_argument("--invoke-all", action="store_true")
    parser.add_argument("--forbid", nargs="*", default=[], help="packages the app must not import")
    arguments = parser.parse_args(argv)
    already = set(sys.modules)
    try:
        report = asyncio.run(check(arguments.app_dir.resolve(), invoke_all=arguments.invoke_all))
    except IndexingError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    forbidden = sorted(
        name for name in set(sys.modules) - already if name.split(".")[0] in set(arguments.forbid)
    )
    report["forbidden_imports"] = forbidden
    sys.stdout.write(json.dumps(report, indent=1) + "\n")
    return 2 if forbidden else 0


if __name__ == "__main__":
    sys.exit(main())
