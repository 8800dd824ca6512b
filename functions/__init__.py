"""Azure Functions blueprints: translate triggers into core calls and results into responses.

A shell: the services and their adapters come from `adapters.wiring`, once per worker.
"""
