"""Just enough Bicep reading for the template tests: params, objects, resources (no compiler here).

It reads the subset these templates use: `param name type = default`, `var name = { … }` and
`resource sym 'Type@version' = [if (…)] { … }` blocks, with `key: value` lines inside objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.infra.deploy import INFRA

_PARAM = re.compile(r"^param\s+(\w+)\s+\w+(?:\s*=\s*(.+))?$", re.MULTILINE)
_RESOURCE = re.compile(r"^resource\s+(\w+)\s+'([^'@]+)@[^']+'(?:\s+existing)?\s*=", re.MULTILINE)
_ENTRY = re.compile(r"^\s*'?([\w.$-]+)'?\s*:\s*(.*?)\s*(?://.*)?$")


def read(name: str) -> str:
    """A template's text, comments kept (the parsers skip them)."""
    return (INFRA / name).read_text(encoding="utf-8")


def params(text: str) -> dict[str, str | None]:
    """Parameters and their default expressions (None: required)."""
    return {m[1]: (m[2].strip() if m[2] else None) for m in _PARAM.finditer(text)}


def braced(text: str, start: int) -> str:
    """The `{ … }` block opening at or after `start`, braces balanced (strings respected)."""
    open_at = text.index("{", start)
    depth, quoted = 0, False
    for index in range(open_at, len(text)):
        char = text[index]
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "{":
            depth += 1
        elif not quoted and char == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : index]
    raise ValueError(f"unbalanced braces from offset {start}")


def variable(text: str, name: str) -> str:
    """The body of `var name = { … }`."""
    match = re.search(rf"^var\s+{name}\s*=\s*\{{", text, re.MULTILINE)
    assert match, f"no object variable {name!r}"
    return braced(text, match.start())


def entries(block: str) -> dict[str, str]:
    """Top-level `key: value` lines of an object body (nested objects give their first line)."""
    found: dict[str, str] = {}
    depth = 0
    for line in block.splitlines():
        stripped = line.strip()
        if depth == 0 and stripped and not stripped.startswith("//"):
            match = _ENTRY.match(line)
            if match:
                found[match[1]] = match[2]
        depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
    return found


@dataclass(frozen=True)
class Resource:
    """One `resource` declaration."""

    symbol: str
    type: str
    body: str

    @property
    def properties(self) -> dict[str, str]:
        """Its top-level entries."""
        return entries(self.body)


def resources(text: str) -> list[Resource]:
    """Every resource declaration, in order."""
    return [Resource(m[1], m[2], braced(text, m.end())) for m in _RESOURCE.finditer(text)]
