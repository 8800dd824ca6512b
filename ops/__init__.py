"""Operating the deployed pipeline: consumer lag, checkpoints, dead letters, state.

`python -m ops --help` lists the commands (see docs/operations.md). `settings`, `clients`,
`checkpoints` and `lag` use only the app's runtime dependencies: the function app's telemetry
probe (`functions.telemetry`) measures lag with them. The rest is operator tooling.
"""
