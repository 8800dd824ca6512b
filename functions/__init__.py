"""Azure Functions blueprints: translate triggers into core calls and results into responses."""
