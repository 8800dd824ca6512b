"""What every `simulator` command shares: the profile choice and the error → exit-code mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

import typer
from rich.console import Console

from adapters.errors import Unreachable
from adapters.settings import SettingsError
from simulator.errors import ExitCode, SimulatorError
from transform.errors import StorageUnavailable

SETTINGS_HINT = "(in the environment or local.settings.json, or pass --settings FILE)"


class Profile(StrEnum):
    clean = "clean"
    realistic = "realistic"
    chaos = "chaos"
    genesys = "genesys"
    mixed = "mixed"
    relay = "relay"


@contextmanager
def errors(console: Console) -> Iterator[None]:
    """Map the simulator's errors to their exit codes with a one-line message.

    Two come from the adapters: a setting missing or malformed (exit 2, usage) and a service
    that did not answer (exit 5, the pipeline failed).
    """
    message: str
    try:
        yield
        return
    except SimulatorError as e:
        error: Exception = e
        message, code = str(e), int(e.exit_code)
    except SettingsError as e:
        error, message, code = e, f"{e} {SETTINGS_HINT}", int(ExitCode.USAGE)
    except (Unreachable, StorageUnavailable) as e:
        error, message, code = e, str(e), int(ExitCode.PIPELINE)
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code) from error
