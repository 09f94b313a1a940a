"""The terminal sink: live rendering for ``streamhost chat`` and friends, throttled to a few Hz."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .sinks import Update

REFRESH_HZ = 8


class _LiveMarkdown:
    """Rendered only when rich refreshes, not on every delta (re-rendering markdown is costly)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.status = ""

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.markdown import Markdown
        from rich.text import Text

        text = "".join(self.parts)
        if text:
            return Markdown(text)
        return Group(Text(self.status, style="dim")) if self.status else Text("")


class TerminalSink:
    """Shows text as it arrives: rich Live on a terminal, plain deltas when stdout is a pipe."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.live_view = self.out.isatty()
        self.view: Any = _LiveMarkdown()  # any object with parts, status and __rich__ (fetch/summarize use their own)
        self.live: Any = None

    def __enter__(self) -> TerminalSink:
        if self.live_view:
            from rich.console import Console
            from rich.live import Live

            self.live = Live(self.view, console=Console(file=self.out), refresh_per_second=REFRESH_HZ,
                             vertical_overflow="visible", transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
        elif self.view.parts:
            self.out.write("\n")
            self.out.flush()

    async def send(self, update: Update) -> None:
        """Add text to the view, or show a status line."""
        if update.kind == "text":
            self.view.parts.append(update.delta)
            if not self.live_view:
                self.out.write(update.delta)
                self.out.flush()
        else:
            self.view.status = update.status
            if not self.live_view:
                self.err.write(f"[{update.status}]\n")
                self.err.flush()
