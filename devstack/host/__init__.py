"""A local Functions host: runs function_app.py's HTTP, Event Hub and timer triggers."""
