"""Errors of the simulator, each knowing the exit code the CLI maps it to.

    SimulatorError            exit 4, an internal inconsistency (a bug)
    ├── UsageError            exit 2, a bad option value or combination
    │   └── InputError        exit 2, an input folder or file is missing or unreadable
    ├── OutputError           exit 3, an output file could not be written
    └── PipelineError         exit 5, the pipeline or the local stack failed (unreachable,
                              deliveries given up, a part did not start, never idle)

A verification that finds differences is not an error: `verify` returns exit 1 for it.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the `simulator` CLI."""

    OK = 0
    MISMATCH = 1
    USAGE = 2
    OUTPUT = 3
    INTERNAL = 4
    PIPELINE = 5


class SimulatorError(Exception):
    """Root of the simulator's errors."""

    exit_code: ExitCode = ExitCode.INTERNAL


class UsageError(SimulatorError):
    """An option has a value the simulator cannot use."""

    exit_code = ExitCode.USAGE


class InputError(UsageError):
    """An input folder or file is missing, unreadable or not what the simulator wrote."""


class OutputError(SimulatorError):
    """An output file or folder could not be written."""

    exit_code = ExitCode.OUTPUT


class PipelineError(SimulatorError):
    """The pipeline or the local stack under test failed; the message says where to look."""

    exit_code = ExitCode.PIPELINE
