"""What every command shares: logging on stderr, the engine, the rich console and live rendering.

Light at import, like every module of the ``streamhost`` command: each one is imported to build the
parser, so rich, asyncio and the host's runtime come in only inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..host.engine import Engine

log = logging.getLogger("streamhost")
T = TypeVar("T")


def setup_logging(level: str) -> None:
    """Log to stderr at ``level``, secrets scrubbed; the chattiest libraries only from WARNING up."""
    from ..host.scrub import ScrubFilter, watch_environment

    watch_environment()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("streamhost %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubFilter())  # upstream text in a log line may echo a key
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx2", "httpx", "httpcore", "httpcore2", "openai", "mcp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def load_engine(warn: bool = True) -> Engine:
    """Config and plugins, loaded with stdout pointed at stderr so a printing plugin cannot spoil --json.

    With ``warn``, the config's and the plugins' warnings (a mistyped key, a name two plugins register)
    are printed on stderr: every command shows them, not only ``doctor``.
    """
    from ..host.engine import Engine

    with contextlib.redirect_stdout(sys.stderr):
        engine = Engine.from_environment()
    if warn:
        print_warnings(console(stderr=True), engine.config.warnings + engine.registry.warnings)
    return engine


def console(stderr: bool = False) -> Any:
    """A rich console on stdout (or stderr), with no guessing at what to highlight."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def plain(text: object) -> str:
    """``text`` escaped for rich markup: messages quote config keys like ``[fetch]``, which rich would eat."""
    from rich.markup import escape

    return escape(str(text))


def print_warnings(out: Any, warnings: Iterable[str]) -> int:
    """Print each warning on the console ``out``; how many there were."""
    count = 0
    for warning in warnings:
        out.print(f"[yellow]warning:[/] {plain(warning)}")
        count += 1
    return count


def run_live(engine: Engine, sink: Any, work: Callable[[], Awaitable[T]]) -> T | None:
    """Run ``work`` with the terminal ``sink`` open, closing the engine's connections after it; None on Ctrl-C."""
    import asyncio

    async def run() -> T:
        try:
            return await work()
        finally:
            await engine.aclose()

    try:
        with sink:
            return asyncio.run(run())
    except KeyboardInterrupt:
        console(stderr=True).print("[yellow]cancelled[/]")
        return None
