"""The terminal sink: live rendering for ``streamhost chat`` and friends, throttled to a few Hz."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ..events import Update

REFRESH_HZ = 8


class _LiveMarkdown:
    """Rendered only when rich refreshes, not on every delta (re-rendering markdown is costly)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.status = ""

    def renderable(self, tail_chars: int | None = None) -> Any:
        """The text so far as markdown (only its last ``tail_chars`` characters when given), or the status."""
        from rich.console import Group
        from rich.markdown import Markdown
        from rich.text import Text

        text = "".join(self.parts)
        if text:
            return Markdown(text if tail_chars is None else text[-tail_chars:])
        return Group(Text(self.status, style="dim")) if self.status else Text("")

    def __rich__(self) -> Any:
        return self.renderable()


class _LastScreen:
    """The bottom of a view, at most one screen high.

    rich's Live can only redraw what is still on the screen: a view taller than the terminal was
    printed again at every refresh and at the end, so the answer stood twice or more in the
    scrollback. The live display shows this instead; the whole view is printed once when it ends.
    """

    def __init__(self, view: Any) -> None:
        self.view = view

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment

        height = max(console.size.height - 1, 1)
        # Rendering markdown costs time in its length: a few screens' worth of the tail is enough to fill one.
        lines = console.render_lines(self.view.renderable(tail_chars=4 * height * console.size.width),
                                     options, pad=False)
        for line in lines[-height:]:
            yield from line
            yield Segment.line()


class TerminalSink:
    """Shows text as it arrives: rich Live on a terminal, plain deltas when stdout is a pipe."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.live_view = self.out.isatty()
        # Any object with parts, status and renderable(tail_chars) (fetch/summarize use their own).
        self.view: Any = _LiveMarkdown()
        self.live: Any = None

    def __enter__(self) -> TerminalSink:
        if self.live_view:
            from rich.console import Console
            from rich.live import Live

            self.live = Live(_LastScreen(self.view), console=Console(file=self.out), refresh_per_second=REFRESH_HZ,
                             vertical_overflow="crop", transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)  # transient: the live part is cleared ...
            if self.view.parts:  # ... and the whole text printed once, however the call ended
                self.live.console.print(self.view.renderable())
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
