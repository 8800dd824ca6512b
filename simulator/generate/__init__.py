"""The generate phase: conversations with ground truth, delivered the way a real feed delivers.

`dataset` is the entry (`generate`, `write`); `profiles` presets the knobs; `org` the contact
centre; `scenarios` (with `steps`, `envelope_scripts`, `genesys_scripts`) what happens in a
conversation; `drift` schema drift; `segment` and `formats` the payloads; `chaos` duplicates,
reordering, late and malformed deliveries; `truth` the record each conversation must end as;
`mutate` hostile variants of good bodies for the fuzz tests.
"""
