"""Azure I/O behind the core's ports, and in-memory twins that enforce the same invariants."""
