"""Azure I/O behind the core's ports, and in-memory twins that enforce the same invariants.

`genesys_cloud` is the one adapter that is not Azure: the Genesys Cloud SDK behind `ops genesys`.
"""
