"""`python -m devstack up | status | down`: the local stack from the command line."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from devstack.errors import DevstackError
from devstack.settings import ensure_local_settings
from devstack.stack import PartStatus, Stack, StackPorts

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Modules the stack's processes import; the Makefile's venv has them all.
REQUIRED_MODULES = ("azure.functions", "azure.eventhub", "aiohttp", "proton", "croniter")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Azurite, the Event Hubs emulator and the local Functions host, on loopback.",
)
console = Console()
errors = Console(stderr=True)

RootOption = Annotated[Path, typer.Option(help="project root", file_okay=False)]
StateDirOption = Annotated[
    Path | None, typer.Option(help="pids, logs and data (default: ROOT/.devstack)", file_okay=False)
]


def _status_table(rows: list[PartStatus]) -> Table:
    table = Table(title="local stack")
    table.add_column("part")
    table.add_column("pid", justify="right")
    table.add_column("health")
    table.add_column("detail")
    for row in rows:
        health = "[green]healthy[/]" if row.healthy else "[red]unhealthy[/]"
        table.add_row(row.name, str(row.pid or "-"), health, row.detail)
    return table


def _check_python_dependencies() -> None:
    missing = [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"missing Python packages ({', '.join(missing)}): run `make setup` and use .venv"
        raise DevstackError(msg)


def offset_ports(offset: int) -> StackPorts:
    """The standard ports shifted by `offset` (a second stack beside the first)."""
    base = StackPorts()
    return StackPorts(
        blob=base.blob + offset,
        queue=base.queue + offset,
        table=base.table + offset,
        amqp=base.amqp + offset,
        eventhubs_health=base.eventhubs_health + offset,
        http=base.http + offset,
    )


@app.command()
def up(
    *,
    root: RootOption = PROJECT_ROOT,
    state_dir: StateDirOption = None,
    app_dir: Annotated[
        Path | None, typer.Option(help="folder of function_app.py (default: project root)")
    ] = None,
    instances: Annotated[int, typer.Option(min=1, help="host instances sharing partitions")] = 1,
    no_host: Annotated[
        bool, typer.Option("--no-host", help="only Azurite and the emulator")
    ] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each part")] = 90.0,
    port_offset: Annotated[
        int, typer.Option(help="shift every standard port by this much (run a second stack)")
    ] = 0,
) -> None:
    """Install what is missing, start everything, wait until healthy."""
    started = time.monotonic()
    stack = Stack(
        root,
        app_dir=app_dir,
        instances=0 if no_host else instances,
        state_dir=state_dir,
        ports=offset_ports(port_offset),
        startup_timeout_s=timeout,
    )
    try:
        _check_python_dependencies()
        settings, created = ensure_local_settings(stack.root)
        if created:
            console.print(f"created {settings} from local.settings.example.json")
        stack.start()
    except DevstackError as e:
        errors.print(f"[red]devstack up failed:[/] {e}", highlight=False, markup=True)
        stack.stop()
        raise typer.Exit(1) from e
    console.print(_status_table(stack.status()))
    where = "" if no_host else f"; HTTP at {stack.http_base_url()}/api"
    console.print(f"up in {time.monotonic() - started:.1f}s; logs in {stack.logs_dir}{where}")


@app.command()
def status(root: RootOption = PROJECT_ROOT, state_dir: StateDirOption = None) -> None:
    """Show every part; exit 0 only when all are healthy."""
    stack = Stack.load(root, state_dir)
    rows = stack.status()
    console.print(_status_table(rows))
    if not all(row.healthy for row in rows):
        raise typer.Exit(1)


@app.command()
def down(root: RootOption = PROJECT_ROOT, state_dir: StateDirOption = None) -> None:
    """Stop every part (SIGTERM, then SIGKILL after a grace period)."""
    stack = Stack.load(root, state_dir)
    stack.stop()
    console.print("local stack stopped")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
