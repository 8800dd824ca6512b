"""Rich rendering of a send: a live progress bar with running counts, and the summary table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from simulator.send.delivery import Outcome
from simulator.send.pacing import SendResult
from simulator.send.stats import SendSummary


@dataclass(slots=True)
class SendProgress:
    """Counts shown beside the bar as outcomes arrive."""

    progress: Progress
    task: TaskID
    ok: int = 0
    retries: int = 0
    unavailable: int = 0
    rejected: int = 0
    gave_up: int = 0

    def __call__(self, outcome: Outcome) -> None:
        self.ok += outcome.accepted
        self.retries += outcome.attempts - 1
        self.unavailable += sum(t.status == 503 for t in outcome.tries)
        self.rejected += outcome.status is not None and 400 <= outcome.status < 500
        self.gave_up += outcome.gave_up
        self.progress.update(
            self.task,
            advance=1,
            counts=(
                f"ok {self.ok} · 4xx {self.rejected} · retries {self.retries} · "
                f"503 {self.unavailable} · gave up {self.gave_up}"
            ),
        )


@contextmanager
def send_progress(console: Console, total: int, *, quiet: bool) -> Iterator[SendProgress]:
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(bar_width=12),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    with Progress(*columns, console=console, disable=quiet) as progress:
        task = progress.add_task("sending", total=total, counts="")
        yield SendProgress(progress, task)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def send_table(result: SendResult, summary: SendSummary, title: str) -> Table:
    """Deliveries, answers, retries, rate achieved against the target, latency percentiles."""
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_column("detail")
    target = f"{result.target_rate:g}/s" if result.target_rate > 0 else "unpaced"
    gave_up = f"[bold red]{summary.gave_up}[/]" if summary.gave_up else "0"
    latency = summary.latency_ms
    rows = [
        ("deliveries", str(summary.deliveries), f"in {result.seconds:.1f} s"),
        ("accepted", str(summary.accepted), "final answer 2xx"),
        ("rejected", str(summary.rejected), "final answer 4xx (malformed bodies: 400)"),
        ("gave up", gave_up, "still 5xx, 429 or no answer after the last retry or past the age"),
        (
            "EventBridge route",
            str(summary.eventbridge),
            f"{summary.throttled} × 429, {summary.expired} past the maximum event age "
            "(EventBridge's dead-letter queue)",
        ),
        ("requests", str(summary.requests), f"{summary.retries} retries"),
        (
            "503 / other 5xx / no answer",
            f"{summary.unavailable} / {summary.server_errors} / {summary.no_answer}",
            "per try",
        ),
        ("rate", f"{result.achieved_rate:,.1f}/s", f"target {target}"),
        (
            "latency ms",
            _ms(latency["p50"]),
            f"p90 {_ms(latency['p90'])}  p95 {_ms(latency['p95'])}  p99 {_ms(latency['p99'])}  "
            f"max {_ms(latency['max'])}",
        ),
        (
            "schedule lag ms",
            _ms(summary.lag_ms["p50"]),
            f"p99 {_ms(summary.lag_ms['p99'])}  max {_ms(summary.lag_ms['max'])}",
        ),
    ]
    for row in rows:
        table.add_row(*row)
    return table
