"""The Functions app: registers the blueprints and nothing else."""

import azure.functions as func

from functions.ingest import bp as ingest_bp
from functions.telemetry import bp as telemetry_bp
from functions.transform import bp as transform_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(ingest_bp)
app.register_functions(transform_bp)
app.register_functions(telemetry_bp)
