"""Where the relay sends what it has: the sinks of the runtime, and the tail every face shows.

The sink interface and its ``Update`` are the contract's (``streamhost.events``): the MCP progress
sink, the terminal and a tool's own sink plug in there.
"""

from __future__ import annotations

from ..events import Update

TAIL_CHARS = 200


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
