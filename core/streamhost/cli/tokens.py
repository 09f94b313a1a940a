"""``streamhost tokens add NAME|list|set NAME|revoke NAME``: who may call ``streamhost serve --http``.

``add`` prints the new token once, alone on the last line of its output (``TOKEN=$(streamhost tokens add
alice)`` keeps just the token: the rest goes to stderr); the store keeps only its SHA-256. ``set`` changes a
token's limits and leaves the token as it is: its holder keeps using it. A person whose token leaked gets a new
one with ``revoke`` then ``add`` under the same name: their usage stays under that name.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..errors import StreamhostError
from .common import console, plain
from .store_access import command_group, group_action, local_time, money, with_store

if TYPE_CHECKING:
    from ..store.database import Store
    from ..store.tokens import TokenRecord

MAX_PATTERN_CHARS = 255
DAY_S = 24 * 60 * 60


def usd(text: str) -> float:
    """``--daily-usd``: dollars, 0 or more (0 refuses every call, as ``[limits] daily_usd = 0`` does)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be an amount of USD, 0 or more (e.g. 5 or 2.50), got {text!r}")
    return value


def per_minute(text: str) -> int:
    """``--per-minute``: a whole number of calls, 1 or more."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of calls, 1 or more, got {text!r}")
    return int(text)


def pattern(text: str) -> str:
    """``--models``: a model id or an fnmatch pattern of them (``openai/gpt-4.1*``, ``litellm/ollama/*``)."""
    if not text.strip() or len(text) > MAX_PATTERN_CHARS:
        raise argparse.ArgumentTypeError(f"must be a model id or pattern such as openai/gpt-4.1*, got {text!r}")
    return text.strip()


def limits(record: TokenRecord) -> str:
    """The token's limits in a few words."""
    models = ", ".join(record.models) if record.models is not None else "any model"
    budget = f"{money(record.daily_usd)} a day" if record.daily_usd is not None else "no daily budget"
    rate = f"{record.per_minute} calls a minute" if record.per_minute is not None else "no rate limit"
    return f"{models}; {budget}; {rate}"


def cmd_tokens_add(args: argparse.Namespace) -> int:
    """Make a token for NAME, store its digest and limits, print it once."""
    from ..store.tokens import TokenRecord, check_name, digest, new_token

    name = check_name(args.name)
    token = new_token()
    record = TokenRecord(name=name, digest=digest(token), created_at=time.time(), revoked_at=None,
                         models=tuple(args.models) if args.models else None, daily_usd=args.daily_usd,
                         per_minute=args.per_minute)

    async def work(store: Store) -> str:
        await store.add_token(record)
        return store.location

    location = with_store(work)
    err = console(stderr=True)
    err.print(f"token {plain(name)} added to {plain(location)} ({plain(limits(record))}).")
    err.print("It is shown this once (only its digest is kept): give it to its holder, who sends it as "
              "[bold]Authorization: Bearer TOKEN[/].")
    print(token, flush=True)
    return 0


def cmd_tokens_list(args: argparse.Namespace) -> int:
    """The tokens (never the tokens themselves): name, created, revoked, limits, spent in the last 24 hours."""

    async def work(store: Store) -> tuple[str, list[TokenRecord], dict[str, float]]:
        rows = await store.usage(since=time.time() - DAY_S, by="token")
        return store.location, await store.tokens(), {row.key: row.cost_usd for row in rows}

    location, records, spent = with_store(work)
    if args.json:
        shown = [{**{key: value for key, value in asdict(r).items() if key != "digest"},
                  "spent_24h_usd": spent.get(r.name, 0.0)} for r in records]
        print(json.dumps({"store": location, "tokens": shown}, indent=2))
        return 0
    out = console()
    if not records:
        out.print(f"no tokens in {plain(location)}: `streamhost tokens add NAME` makes one")
        return 0
    from rich.table import Table

    table = Table("name", "created", "status", "models", "daily budget", "per minute", "spent 24 h")
    for r in records:
        status = f"[red]revoked {local_time(r.revoked_at, short=True)}[/]" if r.revoked else "[green]active[/]"
        table.add_row(plain(r.name), local_time(r.created_at, short=True), status,
                      plain(", ".join(r.models)) if r.models is not None else "any",
                      money(r.daily_usd) if r.daily_usd is not None else "–",
                      str(r.per_minute) if r.per_minute is not None else "–", money(spent.get(r.name, 0.0)))
    out.print(table)
    return 0


def cmd_tokens_set(args: argparse.Namespace) -> int:
    """Change NAME's limits (only those named on the command line), keeping its token."""
    from ..host.callers import TOKEN_CACHE_S

    changes: dict[str, Any] = {}
    if args.models or args.any_model:
        changes["models"] = tuple(args.models) if args.models else None
    if args.daily_usd is not None or args.no_daily_usd:
        changes["daily_usd"] = args.daily_usd
    if args.per_minute is not None or args.no_per_minute:
        changes["per_minute"] = args.per_minute
    if not changes:
        raise StreamhostError("nothing to change: give --models, --daily-usd or --per-minute to set a limit, "
                              "or --any-model, --no-daily-usd or --no-per-minute to lift one")

    async def work(store: Store) -> TokenRecord | None:
        return await store.set_token_limits(args.name, changes)

    record = with_store(work)
    if record is None:
        raise StreamhostError(f"no active token named {args.name!r}: `streamhost tokens list` shows the tokens")
    if args.json:
        print(json.dumps({key: value for key, value in asdict(record).items() if key != "digest"}, indent=2))
    else:
        console().print(f"token {plain(record.name)}: {plain(limits(record))} (running servers apply it within "
                        f"{TOKEN_CACHE_S:g} s; the token is unchanged)")
    return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    """Revoke NAME's token: within a few seconds the server refuses it (401)."""
    from ..host.callers import TOKEN_CACHE_S

    async def work(store: Store) -> bool:
        return await store.revoke_token(args.name)

    if not with_store(work):
        raise StreamhostError(f"no active token named {args.name!r}: `streamhost tokens list` shows the tokens")
    if args.json:
        print(json.dumps({"revoked": args.name}, indent=2))
    else:
        console().print(f"token {plain(args.name)} revoked: running servers refuse it within {TOKEN_CACHE_S:g} s")
    return 0


def add_commands(sub: Any) -> None:
    """Add ``tokens add|list|set|revoke`` to the ``streamhost`` parser's subcommands."""
    actions = command_group(sub, "tokens", "who may call `serve --http`: add, list, set (limits), revoke bearer tokens")
    # No --json for add: its output is the token alone, for TOKEN=$(streamhost tokens add NAME).
    add = group_action(actions, "add", cmd_tokens_add, "make a token for NAME and print it once", json=False)
    add.add_argument("name", help="whom the token is for (1-64 letters, digits, . _ @ + -): usage is kept under it")
    _limit_options(add, lifting=False)
    group_action(actions, "list", cmd_tokens_list, "the tokens, their limits and what they spent (never the tokens)")
    change = group_action(
        actions, "set", cmd_tokens_set, "change NAME's limits, keeping its token",
        description="Change the limits of NAME's token in place: its holder keeps the same token. A limit not named "
                    "here stays as it is; --any-model, --no-daily-usd and --no-per-minute lift one. Running servers "
                    "apply the change within a few seconds.")
    change.add_argument("name")
    _limit_options(change, lifting=True)
    revoke = group_action(actions, "revoke", cmd_tokens_revoke, "revoke NAME's token")
    revoke.add_argument("name")


def _limit_options(parser: argparse.ArgumentParser, *, lifting: bool) -> None:
    """``--models``, ``--daily-usd`` and ``--per-minute``; with ``lifting`` (``set``), each with the flag that lifts
    it instead, and a limit not given stays as it is."""

    def choice() -> Any:
        return parser.add_mutually_exclusive_group() if lifting else parser

    models, budget, rate = choice(), choice(), choice()
    models.add_argument("--models", nargs="+", type=pattern, metavar="PATTERN",
                        help="model ids or patterns it may call, e.g. 'openai/gpt-4.1*' (default: "
                             f"{'unchanged' if lifting else 'every model'})")
    budget.add_argument("--daily-usd", type=usd, metavar="X", help="USD its calls may cost over 24 hours (default: "
                                                                  f"{'unchanged' if lifting else 'none'})")
    rate.add_argument("--per-minute", type=per_minute, metavar="N",
                      help="model calls it may start a minute, per server process (default: "
                           f"{'unchanged' if lifting else 'no limit'})")
    if lifting:
        models.add_argument("--any-model", action="store_true", help="let it call every model")
        budget.add_argument("--no-daily-usd", action="store_true", help="no daily budget of its own")
        rate.add_argument("--no-per-minute", action="store_true", help="no rate limit")
