"""``streamhost usage [--since 7d] [--by model|day|thread|token]``: what the calls used and cost, with totals."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .common import console, plain
from .store_access import SINCE_EXAMPLES, local_time, money, parse_since, tokens, with_store

if TYPE_CHECKING:
    from ..store.database import Store
    from ..store.records import UsageRow

GROUPINGS = ("model", "day", "thread", "token")


def total(rows: list[UsageRow]) -> dict[str, Any]:
    """The sums of ``rows``, shaped like one row; estimated when any row is."""
    return {"key": "total", "runs": sum(r.runs for r in rows), "input_tokens": sum(r.input_tokens for r in rows),
            "output_tokens": sum(r.output_tokens for r in rows), "cost_usd": sum(r.cost_usd for r in rows),
            "estimated": any(r.estimated for r in rows), "unpriced": sum(r.unpriced for r in rows)}


def price_hint(rows: list[UsageRow], by: str) -> str | None:
    """How many runs have no cost and how to give their models a price; None when every run has one."""
    unpriced = sum(r.unpriced for r in rows)
    if not unpriced:
        return None
    models = [r.key for r in rows if r.unpriced] if by == "model" else ["PROVIDER/NAME"]
    tables = ", ".join(f'[models."{model}"]' for model in models)
    return (f"{unpriced} run{' has' if unpriced == 1 else 's have'} no price: set {tables} price_in / price_out "
            "(USD per million tokens) to price the runs to come")


def estimated(text: str, flag: bool) -> str:
    """``text`` with the ``~`` that marks a figure computed from estimated token counts."""
    return f"~{text}" if flag and text != "–" else text


def cmd_usage(args: argparse.Namespace) -> int:
    """Runs, tokens in/out and cost since ``--since``, grouped ``--by`` one key, with a totals row."""
    since = parse_since(args.since)

    async def work(store: Store) -> tuple[str, list[UsageRow]]:
        return store.location, await store.usage(since=since, by=args.by)

    location, rows = with_store(work)
    sums, hint = total(rows), price_hint(rows, args.by)
    if args.json:
        print(json.dumps({"store": location, "since": since, "by": args.by, "rows": [asdict(r) for r in rows],
                          "total": sums, "note": hint}, indent=2))
        return 0
    out = console()
    heading = f"usage since {local_time(since)} by {args.by} ({plain(location)})"
    if not rows:
        out.print(f"no runs: {heading}")
        return 0
    from rich.table import Table

    table = Table(args.by, "runs", "tokens in", "tokens out", "cost", "no price", title=heading, show_footer=True)
    for row in [*(asdict(r) for r in rows), sums]:
        cost = money(row["cost_usd"]) if row["unpriced"] < row["runs"] else "–"
        cells = (plain(row["key"]), f"{row['runs']:,}", tokens(row["input_tokens"], row["estimated"]),
                 tokens(row["output_tokens"], row["estimated"]), estimated(cost, row["estimated"]),
                 f"{row['unpriced']:,}" if row["unpriced"] else "")
        if row is sums:
            for column, cell in zip(table.columns, cells, strict=True):
                column.footer = f"[bold]{cell}[/]"
        else:
            table.add_row(*cells)
    out.print(table)
    if sums["estimated"]:
        out.print("[dim]~ estimated: some providers reported no usage, so their tokens were counted from the text[/]")
    if hint:
        out.print(f"[yellow]{plain(hint)}[/]")
    return 0


def add_commands(sub: Any) -> None:
    """Add ``usage`` to the ``streamhost`` parser's subcommands."""
    usage = sub.add_parser("usage", help="tokens and cost of the recorded runs, with totals")
    usage.add_argument("--since", default="7d", help=f"runs started since: {SINCE_EXAMPLES} (default 7d)")
    usage.add_argument("--by", choices=GROUPINGS, default="model", help="one row per (default model)")
    usage.add_argument("--json", action="store_true")
    usage.set_defaults(func=cmd_usage)
