"""What ``runs``, ``threads``, ``tokens`` and ``usage`` share: the store opened for one command, their actions,
``--since``, and formats.

Light at import like every command module: the store (SQLAlchemy, its drivers) comes in only inside
``with_store``, when a command runs.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import InvalidArgumentError, StreamhostError
from .common import console, print_warnings

if TYPE_CHECKING:
    from ..host.config import StoreSettings
    from ..store.database import Store

T = TypeVar("T")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
SINCE_EXAMPLES = "7d, 24h, 30m, 2w, 2026-11-01 or 2026-11-01T09:30"


def store_settings() -> StoreSettings:
    """The ``[store]`` settings of the config file (its warnings printed on stderr); an error when it is off."""
    from ..host.config import STORE_ENV, load_config

    config = load_config()
    print_warnings(console(stderr=True), config.warnings)
    if not config.store.enabled:
        where = config.locate("store.enabled") or "the config file"
        raise StreamhostError(
            f"the store is off ([store] enabled = false in {where}): runs, threads and usage are not kept. "
            f"Set [store] enabled = true (or remove the line) to turn it on; {STORE_ENV} may name its file or URL")
    return config.store


def with_store(work: Callable[[Store], Awaitable[T]], settings: StoreSettings | None = None) -> T:
    """Open the store (with ``settings``, else the config's), run ``work`` on it, close it."""
    import asyncio

    from ..host.config import STORE_ENV, URL_CREDENTIALS

    settings = settings or store_settings()

    async def run() -> T:
        from ..store import open_store

        try:
            store = await open_store(settings)
        except OSError as exc:  # a database server that cannot be reached, a directory that cannot be made
            where = URL_CREDENTIALS.sub("****@", settings.location() or "the default store file")
            raise StreamhostError(f"cannot open the store {where} ({exc}): check [store] path/url or "
                                  f"{STORE_ENV}, or set [store] enabled = false") from None
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def parse_since(text: str, now: float | None = None) -> float:
    """The epoch time ``--since`` names: a span back from now (``7d``, ``24h``, ``30m``) or a local date/time."""
    now = time.time() if now is None else now
    match = DURATION.match(text)
    if match:
        return now - float(match.group(1)) * UNITS[match.group(2).lower()]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()  # a naive date is local midnight
    except ValueError:
        raise InvalidArgumentError(
            f"--since {text!r} is neither a span nor a date: use e.g. {SINCE_EXAMPLES}") from None


def command_group(sub: Any, name: str, help: str) -> Any:
    """The command ``name`` (``runs``, ``threads``, ``tokens``) as a group of actions: what to add them to."""
    return sub.add_parser(name, help=help).add_subparsers(dest="action", required=True, metavar="ACTION")


def group_action(actions: Any, name: str, func: Callable[[argparse.Namespace], int], help: str, *,
                 json: bool = True, **options: Any) -> argparse.ArgumentParser:
    """One action of a command group, run by ``func``; with ``json``, a ``--json`` flag for what it prints."""
    parser: argparse.ArgumentParser = actions.add_parser(name, help=help, **options)
    if json:
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=func)
    return parser


def positive_int(text: str) -> int:
    """``--limit``: a whole number, 1 or more."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more, got {text!r}")
    return int(text)


def local_time(epoch: float | None, short: bool = False) -> str:
    """``2026-11-30 14:05:09`` in the local time zone; empty for None.

    ``short`` (for tables): ``11-30 14:05`` this year, ``2025-11-30`` before.
    """
    if epoch is None:
        return ""
    when = time.localtime(epoch)
    if not short:
        return time.strftime("%Y-%m-%d %H:%M:%S", when)
    return time.strftime("%m-%d %H:%M" if when.tm_year == time.localtime().tm_year else "%Y-%m-%d", when)


def tokens(count: int | None, estimated: bool) -> str:
    """A token count, ``~`` in front when the provider did not report it and it was estimated."""
    if count is None:
        return "–"
    return f"{'~' if estimated else ''}{count:,}"


def money(usd: float | None) -> str:
    """A cost in USD, with cents or, for the small sums one call costs, four decimals; ``–`` when unpriced."""
    if usd is None:
        return "–"
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.4f}"


def millis(ms: float | None) -> str:
    """A duration: ``850 ms`` below a second, ``12.3 s`` above; ``–`` when unknown."""
    if ms is None:
        return "–"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
