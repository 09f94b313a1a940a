"""``streamhost threads list|show ID|rm ID``: the conversations ``generate`` continues, read and deleted by hand."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..errors import StreamhostError
from .common import console, plain
from .store_access import command_group, group_action, local_time, positive_int, with_store

if TYPE_CHECKING:
    from ..store.database import Store
    from ..store.records import ThreadSummary, Turn


def unknown_thread(thread_id: str, store: Store) -> StreamhostError:
    """The error for an id the store does not hold, naming the command that lists the ones it does."""
    return StreamhostError(f"no thread {thread_id!r} in the store ({store.location}): "
                           "`streamhost threads list` shows the threads")


def cmd_threads_list(args: argparse.Namespace) -> int:
    """The threads, most recently continued first: id, updated, turns, last model, title."""

    async def work(store: Store) -> tuple[str, list[ThreadSummary]]:
        return store.location, await store.threads(limit=args.limit)

    location, summaries = with_store(work)
    if args.json:
        print(json.dumps({"store": location, "threads": [asdict(s) for s in summaries]}, indent=2))
        return 0
    out = console()
    if not summaries:
        out.print(f"no threads in {plain(location)}: generate with thread=\"new\" starts one")
        return 0
    from rich.table import Table

    table = Table("thread", "updated", "turns", "last model", "title")
    for s in summaries:
        table.add_row(s.id, local_time(s.updated_at), str(s.turns), plain(s.last_model or ""), plain(s.title))
    out.print(table)
    return 0


def cmd_threads_show(args: argparse.Namespace) -> int:
    """The thread's turns in order: who spoke, which model answered, and the text."""

    async def work(store: Store) -> tuple[ThreadSummary, list[Turn]]:
        summary = await store.thread(args.id)
        if summary is None:
            raise unknown_thread(args.id, store)
        return summary, await store.turns(args.id)

    summary, turns = with_store(work)
    if args.json:
        print(json.dumps({"thread": asdict(summary), "turns": [asdict(turn) for turn in turns]}, indent=2))
        return 0
    out = console()
    out.print(f"[bold]{summary.id}[/] · {summary.turns} turns · started {local_time(summary.created_at)} · "
              f"updated {local_time(summary.updated_at)}")
    for number, turn in enumerate(turns, 1):
        who = turn.role + (f" · {turn.model}" if turn.model else "")
        run = f" · run {turn.run_id}" if turn.run_id else ""
        out.print(f"\n[bold]── {number}. {plain(who)}[/][dim]{run} · {local_time(turn.at) if turn.at else ''}[/]")
        print(turn.content, flush=True)  # as written: no markup, no wrapping
    return 0


def cmd_threads_rm(args: argparse.Namespace) -> int:
    """Delete a thread and its turns; an id the store does not hold is an error."""

    async def work(store: Store) -> str:
        if not await store.delete_thread(args.id):
            raise unknown_thread(args.id, store)
        return store.location

    location = with_store(work)
    if args.json:
        print(json.dumps({"deleted": args.id, "store": location}, indent=2))
    else:
        console().print(f"thread {args.id} deleted")
    return 0


def add_commands(sub: Any) -> None:
    """Add ``threads list|show|rm`` to the ``streamhost`` parser's subcommands."""
    actions = command_group(sub, "threads", "conversations generate continues: list, show one, delete one")
    listing = group_action(actions, "list", cmd_threads_list, "the threads, most recently continued first")
    listing.add_argument("--limit", type=positive_int, default=50, help="at most this many threads (default 50)")
    show = group_action(actions, "show", cmd_threads_show, "a thread's turns in order")
    show.add_argument("id", help="the thread id (t_…), from a result's _meta or `streamhost threads list`")
    rm = group_action(actions, "rm", cmd_threads_rm, "delete a thread and its turns")
    rm.add_argument("id", help="the thread id (t_…)")
