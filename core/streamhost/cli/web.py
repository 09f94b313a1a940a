"""``streamhost fetch URL`` and ``streamhost summarize URL... [-q QUERY] [-m MODEL]``, live in the terminal.

Both run the same code as the MCP tools, with the terminal as the sink. A user's own command is not a
model-initiated fetch, so robots.txt does not apply.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import StreamhostError
from ..events import Update
from ..fetchers import FORMATS
from .common import console, load_engine, plain, run_live
from .terminal import TerminalSink


class _SectionsView:
    """The live view: the markdown so far, and under it the latest status until text follows it."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._status = ""
        self._status_at = 0

    @property
    def status(self) -> str:
        """The latest status line, or "" once text has come after it."""
        return self._status if len(self.parts) == self._status_at else ""

    @status.setter
    def status(self, value: str) -> None:
        self._status, self._status_at = value, len(self.parts)

    def renderable(self, tail_chars: int | None = None) -> Any:
        """The sections so far (only their last ``tail_chars`` characters when given) and the status."""
        from rich.console import Group
        from rich.markdown import Markdown
        from rich.text import Text

        text = "".join(self.parts)
        if tail_chars is not None:
            text = text[-tail_chars:]
        return Group(*([Markdown(text)] if text else []), Text(self.status, style="dim"))

    def __rich__(self) -> Any:
        return self.renderable()


def cmd_fetch(args: argparse.Namespace) -> int:
    """Print a page as markdown (or text, or raw); statuses while it is fetched."""
    from ..pages.service import PageService

    engine = load_engine()
    err = console(stderr=True)
    sink = TerminalSink()
    markdown = args.format == "markdown"

    async def fetch() -> Any:
        document = await PageService(engine).fetch(args.url, sink, format=args.format, model_initiated=False,
                                             use_cache=False)
        sink.view.status = ""
        if markdown:
            await sink.send(Update(kind="text", delta=document.content))
        return document

    try:
        document = run_live(engine, sink, fetch)
    except StreamhostError as exc:
        err.print(f"[red]error:[/] {plain(exc.message)}")
        return 1
    if document is None:
        return 130
    if not markdown:
        sys.stdout.write(document.content + ("" if document.content.endswith("\n") else "\n"))
    cut = " · [yellow]cut at \\[fetch] max_bytes[/]" if document.truncated else ""
    about = f"{document.final_url} · {document.title or 'no title'} · {document.content_type or '?'}"
    err.print(f"[dim]{plain(about)} · {len(document.content)} characters[/]{cut}", soft_wrap=True)
    return 0


def cmd_summarize(args: argparse.Namespace) -> int:
    """Summarize the pages in order, each summary rendered as it is written."""
    from ..pages.host_services import HostServices
    from ..pages.summarize import check_urls

    urls = check_urls(args.urls)
    engine = load_engine()
    err = console(stderr=True)
    sink = TerminalSink()
    sink.view = _SectionsView()
    # The services the MCP tool uses: the call is recorded as a run (`streamhost runs show ID`), as chat's are.
    services = HostServices(engine, model_initiated=False)
    result = run_live(engine, sink, lambda: services.summarize(urls, sink, query=args.query, model=args.model))
    if result is None:
        return 130
    failed = [r for r in result.results if r.error]
    usage = result.usage or {}
    ttft = "n/a" if result.ttft_ms is None else f"{result.ttft_ms:.0f} ms"
    err.print(f"[dim]{result.model} · {len(urls) - len(failed)}/{len(urls)} pages summarized · first text {ttft} · "
              f"{result.duration_ms / 1000:.1f} s · tokens in {usage.get('input_tokens', '?')} "
              f"out {usage.get('output_tokens', '?')}" + (f" · run {result.run}" if result.run else "") + "[/]")
    if result.error:
        err.print(f"[red]stopped:[/] {plain(result.error)}")
    return 1 if failed else 0


def add_commands(sub: Any) -> None:
    """Add ``fetch`` and ``summarize`` to the ``streamhost`` parser's subcommands."""
    fetch = sub.add_parser("fetch", help="print a web page as markdown (needs a fetcher plugin)")
    fetch.add_argument("url")
    fetch.add_argument("-f", "--format", choices=FORMATS, default="markdown")
    fetch.set_defaults(func=cmd_fetch)
    summarize = sub.add_parser("summarize", help="summarize web pages, streamed page by page")
    summarize.add_argument("urls", nargs="+", metavar="URL")
    summarize.add_argument("-q", "--query", help="what to focus the summaries on")
    summarize.add_argument("-m", "--model", help="PROVIDER/NAME or an alias (default: [summarize] model, "
                                                 "else the default model)")
    summarize.set_defaults(func=cmd_summarize)
