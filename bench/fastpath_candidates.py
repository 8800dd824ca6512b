"""The two candidates for the native fast path, measured on the same payloads (issue 17).

Both validate the clean envelope shape of `transform.fastpath` from the payloads the one
delivery parser decoded (orjson): msgspec's `convert` into Structs (the shipped fast path), and
pydantic-core validators compiled from equivalent strict TypedDicts (the fast path before,
rebuilt here for the comparison only). Also shown: msgspec decoding the raw bytes itself, the
option not taken because its JSON acceptance differs from orjson's (it skips unknown fields
without checking their nesting depth, UTF-8 or number range), so ingest and the transform would
disagree on what is JSON. CPU seconds, best of `--repeat`.

    python -m bench.fastpath_candidates [--conversations 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Annotated, Any, NotRequired

import msgspec
import orjson
from pydantic import Field, Strict, TypeAdapter
from typing_extensions import TypedDict

from bench.common import generated_input, write_result
from schemas.wire import INT64_MAX, INT64_MIN
from transform.fastpath import _Envelope

StrictInt = Annotated[int, Strict(), Field(ge=INT64_MIN, le=INT64_MAX)]


class _DetailData(TypedDict, total=False):
    status: str
    duration: float
    agentId: str
    queueId: str
    skillIds: list[str]
    wrapUpCode: str
    wrapupCode: str
    callerNumber: str
    calleeNumber: str
    direction: str
    fromAgentId: str
    toAgentId: str
    toQueueId: str


class _Detail(TypedDict):
    name: Annotated[str, Field(min_length=1)]
    sequence: StrictInt
    timestamp: str
    data: NotRequired[_DetailData]


class _EnvelopeData(TypedDict):
    id: Annotated[str, Field(min_length=1)]
    type: NotRequired[str]
    details: list[_Detail]


class _PydanticEnvelope(TypedDict):
    createdTimestamp: str
    data: _EnvelopeData


def _best(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (no figures kept)")
    args = parser.parse_args()
    conversations = 30 if args.smoke else args.conversations
    folder = generated_input("realistic", conversations, knobs=["--format-mix", "envelope=1"])
    lines = (folder / "deliveries.jsonl").read_bytes().splitlines()
    decoded = [orjson.loads(line) for line in lines]
    payloads: list[Any] = [p for d in decoded for p in (d if isinstance(d, list) else [d])]
    raw = [orjson.dumps(p) for p in payloads]
    pydantic_validator = TypeAdapter(_PydanticEnvelope).validator
    msgspec_decoder = msgspec.json.Decoder(_Envelope)
    repeat = 1 if args.smoke else args.repeat
    seconds = {
        "orjson_loads": _best(repeat, lambda: [orjson.loads(r) for r in raw]),
        "msgspec_convert": _best(repeat, lambda: [msgspec.convert(p, _Envelope) for p in payloads]),
        "pydantic_core_validate": _best(
            repeat, lambda: [pydantic_validator.validate_python(p) for p in payloads]
        ),
        "msgspec_decode_bytes": _best(repeat, lambda: [msgspec_decoder.decode(r) for r in raw]),
    }
    results = {
        "payloads": len(payloads),
        "cpu_seconds": {k: round(v, 4) for k, v in seconds.items()},
        "microseconds_per_payload": {
            k: round(v / len(payloads) * 1e6, 2) for k, v in seconds.items()
        },
        "kept": "msgspec_convert",
    }
    if args.smoke:
        print(results)
    else:
        write_result("fastpath_candidates", results)


if __name__ == "__main__":
    main()
