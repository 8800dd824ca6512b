"""Loading the ground truth of a generated data set: truth records, manifest, malformed lines."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from simulator.errors import InputError
from simulator.generate.dataset import DELIVERIES_FILE, MANIFEST_FILE, MANIFEST_FORMAT, TRUTH_FILE
from simulator.generate.formats import dumps

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ExpectedDeadLetter:
    """An injected malformed payload, as the manifest and the deliveries file describe it."""

    line: int
    element: int | None
    kind: str
    detail: str
    marker: str
    text: str  # the delivery line, or the array element as JSON
    value: Any  # the element's JSON value (None for line-level faults)

    def as_json(self) -> Json:
        return {
            "line": self.line,
            "element": self.element,
            "kind": self.kind,
            "detail": self.detail,
            "marker": self.marker,
        }


@dataclass(frozen=True, slots=True)
class Expected:
    """The ground truth of a generated data set."""

    folder: Path
    manifest: Json
    truth: dict[str, Json]
    dead_letters: tuple[ExpectedDeadLetter, ...]
    notes: tuple[str, ...] = ()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        msg = f"{path} is missing; is {path.parent} a folder written by `simulator generate`?"
        raise InputError(msg) from e
    except OSError as e:
        msg = f"cannot read {path}: {e.strerror}"
        raise InputError(msg) from e


def load_expected(folder: Path) -> Expected:
    """Read truth, manifest and the malformed delivery lines of a generated data set."""
    if not folder.is_dir():
        msg = f"data set folder {folder} does not exist; run `simulator generate --out {folder}`"
        raise InputError(msg)
    manifest_bytes = _read(folder / MANIFEST_FILE)
    try:
        manifest = orjson.loads(manifest_bytes)
    except orjson.JSONDecodeError as e:
        msg = f"{folder / MANIFEST_FILE} is not JSON ({e}); regenerate the data set"
        raise InputError(msg) from e
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        msg = f"{folder / MANIFEST_FILE} is not a {MANIFEST_FORMAT} manifest; regenerate it"
        raise InputError(msg)
    truth_bytes = _read(folder / TRUTH_FILE)
    notes = []
    recorded = manifest.get("files", {}).get(TRUTH_FILE, {}).get("sha256")
    if recorded and recorded != hashlib.sha256(truth_bytes).hexdigest():
        notes.append(f"{TRUTH_FILE} changed since it was generated (sha256 differs)")
    truth: dict[str, Json] = {}
    for number, line in enumerate(truth_bytes.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            truth[record["conversation_id"]] = record
        except (orjson.JSONDecodeError, KeyError, TypeError) as e:
            msg = f"{folder / TRUTH_FILE} line {number} is not a truth record: {e}"
            raise InputError(msg) from e
    malformed = manifest.get("malformed", [])
    wanted = {int(m["line"]) for m in malformed}
    lines = _lines(folder / DELIVERIES_FILE, wanted)
    expected = []
    for m in malformed:
        text = lines.get(int(m["line"]))
        if text is None:
            msg = f"{DELIVERIES_FILE} has no line {m['line']} that the manifest lists as malformed"
            raise InputError(msg)
        value = None
        if m.get("element") is not None:
            value = orjson.loads(text)[m["element"]]
            text = dumps(value).decode()
        expected.append(
            ExpectedDeadLetter(
                int(m["line"]), m.get("element"), m["kind"], m["detail"], m["marker"], text, value
            )
        )
    return Expected(folder, manifest, truth, tuple(expected), tuple(notes))


def _lines(path: Path, wanted: set[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    if not wanted:
        return found
    try:
        with path.open("rb") as stream:
            for number, line in enumerate(stream, start=1):
                if number in wanted:
                    found[number] = line.rstrip(b"\r\n").decode("utf-8", "replace")
    except OSError as e:
        msg = f"cannot read {path}: {e.strerror}"
        raise InputError(msg) from e
    return found
