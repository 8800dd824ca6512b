"""Operating the deployed pipeline: consumer lag, checkpoints, dead letters, state.

A shell: `python -m ops --help` lists the commands (see docs/operations.md). It reads and
writes through the adapters (`adapters.wiring`) and keeps only presentation and the plan of a
checkpoint reset; the function app needs none of it.
"""
