"""What every `simulator` command shares: the profile choice and the error → exit-code mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

import typer
from rich.console import Console

from simulator.errors import SimulatorError


class Profile(StrEnum):
    clean = "clean"
    realistic = "realistic"
    chaos = "chaos"
    genesys = "genesys"
    mixed = "mixed"


@contextmanager
def errors(console: Console) -> Iterator[None]:
    """Map the simulator's errors to their exit codes with a one-line message."""
    try:
        yield
    except SimulatorError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(int(e.exit_code)) from e
