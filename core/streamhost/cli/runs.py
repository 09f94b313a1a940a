"""``streamhost runs list|show ID|prune``: the recorded calls, one call in full, and retention by hand."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from ..errors import StreamhostError
from .common import console, plain
from .store_access import (
    command_group,
    group_action,
    local_time,
    millis,
    money,
    parse_since,
    positive_int,
    store_settings,
    tokens,
    with_store,
)

if TYPE_CHECKING:
    from ..store.database import Store
    from ..store.records import RunRecord

STATUS_STYLE = {"completed": "green", "running": "cyan", "failed": "red", "interrupted": "yellow",
                "cancelled": "yellow"}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values``, interpolated linearly between the closest ranks; None if empty.

    The "inclusive" method of :func:`statistics.quantiles` (and numpy's default): p50 of 1..5 is 3, p90 is 4.6.
    """
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def percentiles_by_model(records: Iterable[RunRecord]) -> dict[str, dict[str, Any]]:
    """Per model: runs, and the p50/p90 of TTFT and duration over the runs that measured them (None: none did)."""
    grouped: dict[str, list[RunRecord]] = {}
    for record in records:
        grouped.setdefault(record.model or "?", []).append(record)
    summary: dict[str, dict[str, Any]] = {}
    for model, group in sorted(grouped.items()):
        ttft = [r.ttft_ms for r in group if r.ttft_ms is not None]
        duration = [r.duration_ms for r in group if r.duration_ms is not None]
        summary[model] = {"runs": len(group),
                          "ttft_ms": {"p50": percentile(ttft, 50), "p90": percentile(ttft, 90)},
                          "duration_ms": {"p50": percentile(duration, 50), "p90": percentile(duration, 90)}}
    return summary


def status(record: RunRecord) -> str:
    """The run's status, coloured so that the runs that did not complete stand out."""
    style = STATUS_STYLE.get(record.status)
    return f"[{style}]{record.status}[/]" if style else plain(record.status)


def cmd_runs_list(args: argparse.Namespace) -> int:
    """The latest runs, newest first, then the TTFT and duration percentiles per model over them."""
    since = parse_since(args.since) if args.since else None

    async def work(store: Store) -> tuple[str, list[RunRecord]]:
        return store.location, await store.runs(since=since, limit=args.limit, model=args.model)

    location, records = with_store(work)
    summary = percentiles_by_model(records)
    if args.json:
        print(json.dumps({"store": location, "runs": [asdict(r) for r in records], "by_model": summary}, indent=2))
        return 0
    out = console()
    if not records:
        out.print(f"no runs{' since ' + plain(args.since) if args.since else ''}"
                  f"{' of ' + plain(args.model) if args.model else ''} in {plain(location)}")
        return 0
    from rich.table import Column, Table

    # The id is what the user copies to `runs show`: never folded, whatever the terminal's width.
    table = Table(Column("run", no_wrap=True), Column("started", no_wrap=True), "tool", "model", "status", "TTFT",
                  "duration", "in", "out", "cost")
    for r in records:
        table.add_row(r.id, local_time(r.started_at, short=True), plain(r.tool), plain(r.model or ""), status(r),
                      millis(r.ttft_ms), millis(r.duration_ms), tokens(r.input_tokens, r.usage_estimated),
                      tokens(r.output_tokens, r.usage_estimated), money(r.cost_usd))
    out.print(table)
    spread = Table("model", "runs", "TTFT p50", "TTFT p90", "duration p50", "duration p90",
                   title=f"over these {len(records)} runs")
    for model, row in summary.items():
        spread.add_row(plain(model), str(row["runs"]), millis(row["ttft_ms"]["p50"]), millis(row["ttft_ms"]["p90"]),
                       millis(row["duration_ms"]["p50"]), millis(row["duration_ms"]["p90"]))
    out.print(spread)
    if any(r.usage_estimated for r in records):
        out.print("[dim]~ estimated: the provider reported no usage[/]")
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    """Every field of one run, the files it sent, its error, then its journaled text."""

    async def work(store: Store) -> tuple[RunRecord, str, bool]:
        record = await store.run(args.id)
        if record is None:
            raise StreamhostError(f"no run {args.id!r} in the store ({store.location}): "
                                  "`streamhost runs list` shows the recorded runs")
        return record, await store.run_text(args.id), store.keep_text

    record, text, kept = with_store(work)
    if args.json:
        print(json.dumps({**asdict(record), "text": text if kept or text else None, "keep_text": kept}, indent=2))
        return 0
    from rich.table import Table

    out = console()
    fields = Table.grid(padding=(0, 2))
    for name, value in (
        ("run", record.id), ("tool", plain(record.tool)), ("model", plain(record.model or "")),
        ("status", status(record)), ("thread", record.thread_id or "–"),
        ("started", local_time(record.started_at)), ("ended", local_time(record.ended_at) or "–"),
        ("TTFT", millis(record.ttft_ms)), ("duration", millis(record.duration_ms)),
        ("tokens in", tokens(record.input_tokens, record.usage_estimated)),
        ("tokens out", tokens(record.output_tokens, record.usage_estimated)),
        ("cost", money(record.cost_usd)), ("text", f"{record.chars:,} characters"),
        ("caller", plain(f"token {record.owner_token}" if record.owner_token else "local")),
    ):
        fields.add_row(f"[bold]{name}[/]", value)
    out.print(fields)
    if record.files:
        files = Table("file", "size", "sha256", title="files sent")
        for file in record.files:
            files.add_row(plain(file.path), f"{file.size:,} B", file.sha256[:12])
        out.print(files)
    if record.error:
        out.print(f"[red]error:[/] {plain(record.error)}")
    if record.prompt is not None:
        out.print("[bold]── prompt ──[/]")
        print(record.prompt, flush=True)
    out.print("[bold]── text ──[/]")
    if text:
        print(text, flush=True)  # as written: no markup, no wrapping, exact for a pipe
    elif not kept:
        out.print("[dim]not kept: \\[store] keep_text = false records only ids, models, times, sizes and usage[/]")
    elif record.chars:
        out.print("[dim]not kept: the text was not journaled when this run was recorded[/]")
    else:
        out.print("[dim](no text)[/]")
    return 0


def cmd_runs_prune(args: argparse.Namespace) -> int:
    """Delete the runs older than ``--days`` (default ``[store] keep_days``) and say how many."""
    settings = store_settings()
    days = args.days if args.days is not None else settings.keep_days
    if not days:
        message = ("[store] keep_days = 0 keeps runs for ever: nothing to prune "
                   "(`streamhost runs prune --days N` deletes the runs older than N days)")
        if args.json:
            print(json.dumps({"deleted": 0, "days": None, "note": message}, indent=2))
        else:
            console().print(plain(message))
        return 0

    async def work(store: Store) -> tuple[str, int]:
        return store.location, await store.prune(days)

    # Opened without its own pruning (keep_days 0), which would delete the old runs before they could be counted.
    location, deleted = with_store(work, replace(settings, keep_days=0))
    if args.json:
        print(json.dumps({"deleted": deleted, "days": days, "store": location}, indent=2))
    else:
        console().print(f"{deleted} run{'' if deleted == 1 else 's'} older than {days:g} days deleted "
                        f"from {plain(location)}")
    return 0


def positive_days(text: str) -> float:
    """``--days``: a number of days, more than 0."""
    try:
        days = float(text)
    except ValueError:
        days = 0
    if not 0 < days < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number of days, more than 0, got {text!r}")
    return days


def add_commands(sub: Any) -> None:
    """Add ``runs list|show|prune`` to the ``streamhost`` parser's subcommands."""
    actions = command_group(sub, "runs", "recorded calls: list, show one, prune old ones")
    listing = group_action(actions, "list", cmd_runs_list,
                           "the latest runs, newest first, with TTFT/duration per model")
    listing.add_argument("--limit", type=positive_int, default=50, help="at most this many runs (default 50)")
    listing.add_argument("--since", help="only runs started since: 7d, 24h, 30m or a date (2026-11-01)")
    listing.add_argument("--model", help="only runs of this model (PROVIDER/NAME)")
    show = group_action(actions, "show", cmd_runs_show, "one run in full: fields, files sent, error, text")
    show.add_argument("id", help="the run id (r_…), from a result's _meta or `streamhost runs list`")
    prune = group_action(actions, "prune", cmd_runs_prune,
                         "delete old runs (default: older than [store] keep_days)")
    prune.add_argument("--days", type=positive_days, help="delete the runs older than this many days")
