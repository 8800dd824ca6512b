"""The run's picture: one self-contained HTML file with inline SVG charts (no dependencies).

Two panels over the seconds of the run: throughput (requests started, accepted, records
written per second) and ingest latency (p50 and p99 of each second), with the fault windows
shaded and labelled, plus the headline figures above them.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

WIDTH, HEIGHT = 900, 240
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 20, 30
FAULT_COLOURS = {"host": "#f4a3a3", "eventhubs": "#a3c4f4", "azurite": "#b8e0a8"}
Series = tuple[str, str, Sequence[tuple[float, float]]]
"""Name, colour, points (x seconds, y)."""


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    if high <= low:
        return out_low
    return out_low + (value - low) / (high - low) * (out_high - out_low)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** len(str(int(value))) / 10
    return float(int(value / step + 1) * step)


def panel(
    title: str,
    unit: str,
    series: Sequence[Series],
    *,
    x_max: float,
    faults: Sequence[Mapping[str, Any]] = (),
) -> str:
    """One SVG line chart."""
    y_max = _nice_max(max((y for _, _, points in series for _, y in points), default=0.0))
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{x0}" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>',
    ]
    for fault in faults:
        a = _scale(fault["from"], 0, x_max, x0, x1)
        b = _scale(fault["to"], 0, x_max, x0, x1)
        colour = FAULT_COLOURS.get(str(fault["kind"]), "#dddddd")
        parts.append(
            f'<rect x="{a:.1f}" y="{y1}" width="{max(b - a, 1):.1f}" height="{y0 - y1}" '
            f'fill="{colour}" opacity="0.6"><title>{html.escape(str(fault["kind"]))}</title></rect>'
            f'<text x="{a + 2:.1f}" y="{y1 + 12}" font-size="10">{html.escape(str(fault["kind"]))}'
            "</text>"
        )
    for i in range(5):
        value = y_max * i / 4
        y = _scale(value, 0, y_max, y0, y1)
        parts.append(
            f'<line x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
            f"{value:,.0f}</text>"
        )
    for i in range(6):
        value = x_max * i / 5
        x = _scale(value, 0, x_max, x0, x1)
        parts.append(
            f'<text x="{x:.1f}" y="{y0 + 16}" font-size="10" text-anchor="middle">'
            f"{value:,.0f} s</text>"
        )
    parts.append(
        f'<text x="12" y="{(y0 + y1) / 2:.0f}" font-size="10" '
        f'transform="rotate(-90 12 {(y0 + y1) / 2:.0f})">{html.escape(unit)}</text>'
    )
    legend_x = x1 - 150 * len(series)
    for index, (name, colour, points) in enumerate(series):
        if points:
            path = " ".join(
                f"{_scale(x, 0, x_max, x0, x1):.1f},{_scale(y, 0, y_max, y0, y1):.1f}"
                for x, y in points
            )
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>'
            )
        lx = legend_x + index * 150
        parts.append(
            f'<rect x="{lx}" y="6" width="12" height="3" fill="{colour}"/>'
            f'<text x="{lx + 16}" y="11" font-size="10">{html.escape(name)}</text>'
        )
    parts.append(
        f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#999"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def page(title: str, headline: Sequence[tuple[str, str]], panels: Sequence[str]) -> str:
    """The HTML document: a title, a table of figures, the charts."""
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in headline
    )
    charts = "".join(f"<div>{svg}</div>" for svg in panels)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:24px}"
        "th{text-align:left;padding-right:16px;font-weight:normal;color:#555}"
        "td{font-variant-numeric:tabular-nums}table{margin-bottom:16px}</style>"
        f"</head><body><h2>{html.escape(title)}</h2><table>{rows}</table>{charts}</body></html>\n"
    )
