"""Operating the deployed pipeline: consumer lag, checkpoints, dead letters, state, erasure, the
capacity model, and connecting Genesys Cloud (`ops.genesys`).

A shell: `python -m ops --help` lists the commands (see docs/operations.md). It reads and
writes through the adapters (`adapters.wiring`) and keeps only presentation and its own plans
(a checkpoint reset, what an erasure finds, the capacity arithmetic, the Genesys integration's
changes); the function app needs none of it.
"""
