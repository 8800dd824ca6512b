"""The verify phase: what the pipeline wrote, compared with the ground truth.

`expected` loads a generated data set's truth and injected faults, `records` compares a record
field by field, `dead_letters` pairs dead letters with the injected malformed payloads,
`verdict` puts them together (`verify`); `sources` and `blob_source` read what the pipeline
wrote (an offline replay's folder, or Blob Storage through the adapters).
"""
