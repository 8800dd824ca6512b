"""Every connection to the outside, under the shells and over the pure core.

Settings (`settings`, one `SettingsError`) and every SDK client (`clients`); the Azure adapters
of the core's ports with in-memory twins that enforce the same invariants (`table_state`,
`blob_records`, `blob_deadletters`, `eventhub_producer`, `memory`); the readers of what is
stored, each behind a port with a twin (`checkpoints`, `partitions`, `lag`, `state_reader`,
`containers`, `deadletter_store`, `record_reader`); posting to the webhook (`webhook`); and
`wiring`, the services every shell builds. `genesys_cloud` is the one adapter that is not
Azure: the Genesys Cloud SDK behind `ops genesys`.
"""
