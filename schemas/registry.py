"""The versioned schema registry: JSON Schema of the record and of the accepted payloads.

`python -m schemas.registry` writes the current versions under `schemas/registry/`. A stored
version is immutable: when a model changes, bump its version constant and export again (the
test `tests/unit/test_schema_registry.py` fails until you do), then add a line to
`schemas/registry/COMPATIBILITY.md`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from schemas.record import RECORD_SCHEMA_VERSION, ConversationRecord, DeadLetter
from schemas.wire import Envelope, EventBridge, Notification

PAYLOAD_SCHEMA_VERSION = "1"
DEAD_LETTER_SCHEMA_VERSION = "1"
REGISTRY = Path(__file__).parent / "registry"


def _schema(model: type[BaseModel], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization" if mode == "out" else "validation")
    return schema


def current_schemas() -> dict[str, dict[str, Any]]:
    """Relative path under the registry → JSON Schema, for every current version."""
    return {
        f"record/v{RECORD_SCHEMA_VERSION}.json": _schema(ConversationRecord, "out"),
        f"deadletter/v{DEAD_LETTER_SCHEMA_VERSION}.json": _schema(DeadLetter, "out"),
        f"payloads/v{PAYLOAD_SCHEMA_VERSION}/envelope.json": _schema(Envelope, "in"),
        f"payloads/v{PAYLOAD_SCHEMA_VERSION}/eventbridge.json": _schema(EventBridge, "in"),
        f"payloads/v{PAYLOAD_SCHEMA_VERSION}/notification.json": _schema(Notification, "in"),
    }


def render(schema: dict[str, Any]) -> bytes:
    """Stable bytes for a schema file."""
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def export(root: Path = REGISTRY) -> list[Path]:
    """Write the current versions; refuse to change a stored version."""
    written = []
    for relative, schema in current_schemas().items():
        path = root / relative
        content = render(schema)
        if path.exists() and path.read_bytes() != content:
            raise SystemExit(
                f"{relative} exists with different content: versions are immutable. "
                "Bump the version constant for the model you changed and export again."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in export():
        sys.stdout.write(f"{path}\n")
