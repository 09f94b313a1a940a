"""Where the relay sends what it has: the MCP progress sink, the terminal and tests plug in here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

TAIL_CHARS = 200


@dataclass(frozen=True)
class Update:
    """One thing to show: new text (``kind="text"``) or a status line (``kind="status"``)."""

    kind: Literal["text", "status"]
    delta: str = ""
    """For text: exactly the text generated since the previous text update."""
    offset: int = 0
    """For text: where ``delta`` starts in the final text."""
    status: str = ""
    """For status: the human-readable line."""
    tail: str = ""
    """The last ~200 characters of the text so far, newlines folded."""
    progress: float | None = None
    """How far the call is, in units of the sink's ``total`` (e.g. 2.4 of 5 pages); None: not known."""
    aside: bool = False
    """For status: a remark on the text (``stalled 23 s``), to show beside the tail, not instead of it."""


class Sink(Protocol):
    """Receives updates in order. A slow sink slows the relay; it never drops text."""

    async def send(self, update: Update) -> None:
        """Show or forward one update."""


class CollectingSink:
    """Keeps every update, for tests and for callers that want the sequence."""

    def __init__(self) -> None:
        self.updates: list[Update] = []

    async def send(self, update: Update) -> None:
        """Append the update."""
        self.updates.append(update)

    @property
    def text(self) -> str:
        """The concatenated text deltas."""
        return "".join(u.delta for u in self.updates if u.kind == "text")

    @property
    def statuses(self) -> list[str]:
        """The status lines, in order."""
        return [u.status for u in self.updates if u.kind == "status"]


def fold_tail(text: str, limit: int = TAIL_CHARS) -> str:
    """The end of ``text`` on one line, at most ``limit`` characters."""
    folded = " ".join(text[-(limit * 2):].split())
    return folded[-limit:]


def beside(tail: str, note: str, limit: int = TAIL_CHARS) -> str:
    """``tail`` cut from the left to leave room for `` … (note)``, all in at most ``limit`` characters."""
    if not tail:
        return f"({note})"
    suffix = f" … ({note})"
    room = max(limit - len(suffix), 0)
    return tail[len(tail) - room:] + suffix


class Tail:
    """The latest text of a stream on one line, updated delta by delta.

    Folds the raw recent text, not the previous tail: a tail has lost its trailing newline, and
    ``"Title\n\n"`` then ``"Summary"`` must read ``"Title Summary"``, not ``"TitleSummary"``.
    """

    def __init__(self) -> None:
        self.recent = ""
        self.text = ""

    def add(self, delta: str) -> str:
        """Take the next delta; return the new tail."""
        self.recent = (self.recent + delta)[-2 * TAIL_CHARS:]
        self.text = fold_tail(self.recent)
        return self.text
