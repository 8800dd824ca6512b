"""ASP.NET-style route templates (`items/{id:int}`, `{name?}`, `{*rest}`) as the host reads them."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_PARAMETER = re.compile(r"\{(?P<star>\*{1,2})?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}")

# Value patterns of the common inline constraints; unknown constraints accept any segment.
_CONSTRAINT_PATTERNS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "float": r"-?\d+(?:\.\d+)?",
    "double": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "bool": r"(?i:true|false)",
    "alpha": r"[A-Za-z]+",
    "guid": r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
    "datetime": r"[^/]+",
}


@dataclass(frozen=True)
class RouteTemplate:
    """One compiled route: matches a request path (without query) and extracts parameters."""

    template: str
    pattern: re.Pattern[str]
    parameter_names: tuple[str, ...]
    literal_segments: int

    def match(self, path: str) -> dict[str, str] | None:
        """Route parameters when `path` matches, else None."""
        found = self.pattern.fullmatch(path.strip("/"))
        if found is None:
            return None
        return {k: v for k, v in found.groupdict().items() if v is not None}


def _parameter_pattern(name: str, rest: str, catch_all: bool) -> tuple[str, bool]:
    optional = rest.endswith("?")
    rest = rest.removesuffix("?")
    default = None
    if "=" in rest:
        rest, default = rest.split("=", 1)
    value = r".*" if catch_all else r"[^/]+"
    for constraint in filter(None, rest.split(":")):
        key = constraint.split("(", 1)[0].lower()
        if key == "regex":
            value = constraint[len("regex(") : -1]
        elif key in _CONSTRAINT_PATTERNS:
            value = _CONSTRAINT_PATTERNS[key]
        else:
            logger.debug("route constraint not enforced constraint=%s", constraint)
    return f"(?P<{name}>{value})", optional or default is not None or catch_all


def compile_route(template: str, prefix: str) -> RouteTemplate:
    """Compile `prefix/template` into a case-insensitive matcher."""
    full = "/".join(p.strip("/") for p in (prefix, template) if p.strip("/"))
    regex = ""
    names: list[str] = []
    literals = 0
    for index, segment in enumerate(full.split("/") if full else []):
        separator = "/" if index else ""
        parts: list[str] = []
        position = 0
        optional_segment = False
        for found in _PARAMETER.finditer(segment):
            parts.append(re.escape(segment[position : found.start()]))
            piece, optional = _parameter_pattern(
                found["name"], found["rest"], catch_all=bool(found["star"])
            )
            parts.append(piece)
            names.append(found["name"])
            optional_segment = optional and found.start() == 0 and found.end() == len(segment)
            position = found.end()
        parts.append(re.escape(segment[position:]))
        body = "".join(parts)
        if position == 0:
            literals += 1
        regex += f"(?:{separator}{body})?" if optional_segment else f"{separator}{body}"
    return RouteTemplate(
        template=full,
        pattern=re.compile(regex, re.IGNORECASE),
        parameter_names=tuple(names),
        literal_segments=literals,
    )


def order_routes(routes: Iterable[RouteTemplate]) -> list[RouteTemplate]:
    """Most specific first: more literal segments, then fewer parameters (like ASP.NET)."""
    return sorted(routes, key=lambda r: (-r.literal_segments, len(r.parameter_names)))
