"""Run by `.venv-moto/bin/python`: match events against an EventBridge pattern with moto's matcher.

stdin: `{"pattern": {...}, "events": [{...}, ...]}`; stdout: a JSON list of booleans, one an
event. The pattern is validated by moto's `EventPatternParser` first (exit 2 with its reason).
Kept in its own interpreter because moto's botocore clashes with the project's pins.
"""

from __future__ import annotations

import json
import sys

from moto.events.models import EventPattern, EventPatternParser


def main() -> int:
    request = json.load(sys.stdin)
    raw = json.dumps(request["pattern"])
    try:
        parsed = EventPatternParser(raw).parse()
    except Exception as e:  # moto's InvalidEventPatternException
        print(f"invalid event pattern: {e}", file=sys.stderr)
        return 2
    pattern = EventPattern(raw, parsed)
    json.dump([pattern.matches_event(event) for event in request["events"]], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
