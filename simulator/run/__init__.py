"""The run phase: generate → local stack → send (with faults) → wait until idle → verify → report.

`runner` is the entry; `runstack` the local stack of a run (the only module of the simulator
that uses `devstack`); `faults` the injected outages; `idle` whether the pipeline is idle
(read through the adapters); `run_report` and `chart` the report.
"""
