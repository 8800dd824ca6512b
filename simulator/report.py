"""Rich rendering for the terminal: progress bars and the summary tables of each command."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
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

from simulator.errors import OutputError
from simulator.generate.formats import dumps
from simulator.generate.profiles import PROFILES, Knobs
from simulator.verify.verdict import Report


class RichProgress:
    """`generate.Progress` on a rich progress bar, one task per phase."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, phase: str, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[-1].total)
        self.task = self.progress.add_task(phase, total=total)

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)


@contextmanager
def progress_bar(console: Console, *, quiet: bool) -> Iterator[Progress]:
    """A progress display on `console` (stderr), silent when `quiet`."""
    columns = (
        TextColumn("[progress.description]{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=quiet) as progress:
        yield progress


def short(value: Any, width: int = 70) -> str:
    """A value as compact JSON, cut to `width` characters."""
    text = value if isinstance(value, str) else dumps(value).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def size_text(n: int) -> str:
    """Bytes in the largest binary unit below 1,024 of it: `512 B`, `1.5 MiB`."""
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def generate_summary(
    manifest: Mapping[str, Any], paths: Mapping[str, Path], seconds: float
) -> Table:
    """What `generate` produced and injected."""
    c = manifest["counts"]
    table = Table(
        title=f"generated profile {manifest['profile']!r}, seed {manifest['seed']}",
        show_header=True,
    )
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("detail")
    dup, late, drift, bad = c["duplicates"], c["late"], c["drifted"], c["malformed"]
    rows = [
        ("conversations", c["conversations"], f"{c['ended']} ended, {c['never_ended']} never end"),
        ("micro-events", c["micro_events"], f"{c['dropped_micro_events']} lost in bad details"),
        (
            "payloads",
            c["payloads"],
            f"{c['envelopes']} envelopes, "
            f"{c['multi_envelope_conversations']} multi-envelope conversations",
        ),
        ("delivery lines", c["deliveries"], f"{c['array_deliveries']} JSON arrays"),
        (
            "duplicates",
            dup["payloads"],
            f"{dup['micro_events']} micro-events; {dup['resend']} "
            f"re-sent, {dup['reenvelope']} re-enveloped, {dup['after_finalization']} after the end",
        ),
        ("reordered", c["reordered"], f"{c['shuffled_envelopes']} envelopes with shuffled details"),
        (
            "late",
            late["payloads"],
            f"{late['micro_events']} micro-events; {late['delayed']} held "
            f"back, {late['natural']} naturally late (slow wrap-up)",
        ),
        (
            "drifted",
            drift["payloads"],
            f"{drift['conversations']} conversations; "
            + ", ".join(f"{k} {v}" for k, v in drift["by_kind"].items()),
        ),
        ("malformed", bad["total"], ", ".join(f"{k} {v}" for k, v in bad["by_kind"].items())),
        ("heartbeats", c["heartbeats"], "Notifications API keep-alives a relay forwards"),
        (
            "filtered",
            c["filtered"]["conversations"],
            f"{c['filtered']['micro_events']} micro-events set aside by INGEST_MEDIA_TYPES="
            f"{','.join(c['filtered']['media_types']) or 'all'}; "
            + ", ".join(f"{k or 'unknown'} {v}" for k, v in c["filtered"]["by_media"].items()),
        ),
    ]
    for what, count, detail in rows:
        table.add_row(what, str(count), detail)
    for name, path in paths.items():
        table.add_row(name, "", f"{path} ({size_text(path.stat().st_size)})")
    rate = c["micro_events"] / seconds if seconds > 0 else 0.0
    table.caption = (
        f"{seconds:.2f} s: {c['conversations'] / max(seconds, 1e-9):,.0f} conversations/s, "
        f"{rate:,.0f} micro-events/s"
    )
    return table


def verify_summary(report: Report) -> Table:
    """Counts of matched, mismatched, missing and unexpected records and dead letters."""
    table = Table(title=f"verify against {report.source}")
    table.add_column("records")
    table.add_column("", justify="right")
    table.add_column("dead letters")
    table.add_column("", justify="right")
    d = report.dead_letters
    rows = [
        ("matched", report.count("matched"), "expected", d.expected),
        ("mismatched", report.count("mismatched"), "found", d.found),
        ("missing", report.count("missing"), "matched", len(d.matched)),
        ("unexpected", report.count("unexpected"), "missing", len(d.missing)),
        ("unreadable / duplicate", len(report.problems), "unexpected", len(d.unexpected)),
    ]
    if d.copies:  # only a live run with sender retries has these
        rows.append(("", 0, "retry copies (allowed)", len(d.copies)))
    for a, b, c, n in rows:
        table.add_row(a, _mark(a, b) if a else "", c, _mark(c, n))
    return table


def _mark(label: str, n: int) -> str:
    good = label in ("matched", "expected", "found", "retry copies (allowed)")
    if n and not good:
        return f"[bold red]{n}[/]"
    return str(n)


def verify_details(report: Report, limit: int) -> list[Table]:
    """Tables of the first `limit` problems of each kind."""
    tables = []
    diffs = [(r, d) for r in report.records if r.status == "mismatched" for d in r.diffs]
    if diffs:
        table = Table(title=f"mismatched fields ({len(diffs)}, first {min(limit, len(diffs))})")
        for name in ("conversation", "field", "expected", "actual", "note"):
            table.add_column(name, overflow="fold")
        for record, diff in diffs[:limit]:
            table.add_row(
                short(record.conversation_id, 38),
                diff.field,
                short(diff.expected, 40),
                short(diff.actual, 40),
                short(diff.note, 160),
            )
        tables.append(table)
    others = [r for r in report.records if r.status in ("missing", "unexpected")]
    if others:
        table = Table(title=f"missing and unexpected records ({len(others)})")
        table.add_column("status")
        table.add_column("conversation", overflow="fold")
        table.add_column("location", overflow="fold")
        for record in others[:limit]:
            table.add_row(record.status, short(record.conversation_id, 60), record.location or "")
        tables.append(table)
    d = report.dead_letters
    if d.missing or d.unexpected or report.problems:
        table = Table(title="dead letters and unreadable items")
        table.add_column("problem")
        table.add_column("where")
        table.add_column("what", overflow="fold")
        for want in d.missing[:limit]:
            where = f"deliveries line {want.line}" + (
                f" [{want.element}]" if want.element is not None else ""
            )
            table.add_row("no dead letter for", where, f"{want.kind}: {want.detail}")
        for found in d.unexpected[:limit]:
            value = found.value if isinstance(found.value, dict) else {}
            what = f"{value.get('reason', '?')}: {short(value.get('error', found.error), 90)}"
            table.add_row("unexpected dead letter", found.location, what)
        for problem in report.problems[:limit]:
            table.add_row("unreadable", "", problem)
        tables.append(table)
    return tables


def profiles_table() -> Table:
    """Every profile with the knobs it sets differently from the defaults."""
    defaults = Knobs().as_json()
    table = Table(title="profiles (knobs that differ from the defaults)")
    table.add_column("profile")
    table.add_column("knobs", overflow="fold")
    for name, knobs in PROFILES.items():
        changed = {k: v for k, v in knobs.as_json().items() if v != defaults[k]}
        table.add_row(name, ", ".join(f"{k}={short(v, 60)}" for k, v in changed.items()) or "-")
    table.caption = "defaults: " + ", ".join(f"{k}={short(v, 40)}" for k, v in defaults.items())
    return table


def show_verify(out: Console, report: Report, max_diffs: int) -> None:
    """The verify summary, its problem tables, notes and verdict."""
    out.print(verify_summary(report))
    for table in verify_details(report, max_diffs):
        out.print(table)
    for note in report.notes:
        out.print(f"[yellow]note:[/] {note}", highlight=False)
    if report.extra_fields:
        names = ", ".join(f"{k} ({v})" for k, v in sorted(report.extra_fields.items()))
        out.print(f"[yellow]note:[/] record fields outside SPEC 4: {names}", highlight=False)
    if report.ok:
        out.print("[bold green]verified:[/] every record and dead letter matches the truth")
    else:
        out.print("[bold red]FAILED:[/] the pipeline's output differs from the truth")


def write_json(path: Path, document: Any) -> None:
    """Indented, sorted JSON; an unwritable path is an `OutputError`."""
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data + b"\n")
    except OSError as e:
        msg = f"cannot write the JSON report {path}: {e.strerror}"
        raise OutputError(msg) from e
