"""The typed events: what a provider's or fetcher's stream yields, in the order they happen, and the
updates the host (or a tool) sends to a sink."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class TextDelta:
    """A piece of generated text, to be appended to what came before."""

    text: str


@dataclass(frozen=True)
class Usage:
    """Token counts as the upstream reported them; any field may be unknown (None)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The counts that are known, for results and metrics."""
        out: dict[str, Any] = {
            key: value
            for key, value in (
                ("input_tokens", self.input_tokens),
                ("output_tokens", self.output_tokens),
                ("total_tokens", self.total_tokens),
            )
            if value is not None
        }
        out.update(self.details)
        return out


@dataclass(frozen=True)
class Status:
    """A human-readable word on what is happening ("connecting", "extracting"), not part of the text."""

    message: str


@dataclass(frozen=True)
class Checkpoint:
    """Where the upstream could pick this stream up again: everything yielded before it is covered.

    ``state`` is the provider's own opaque string (e.g. a background response's id and the number of its last
    event). The host keeps the newest one with the run, next to the text it covers, and after a restart hands it
    back to :meth:`Provider.resume`, which yields what came after. Yield one only when it can be resumed from.
    """

    state: str


Event = TextDelta | Usage | Status | Checkpoint
"""What a provider's stream yields."""


async def close_stream(stream: object) -> None:
    """Close a provider's or fetcher's stream: ``await stream.aclose()`` when it has one.

    Async generators have one; a hand-written async iterator may not, and then there is nothing to close.
    Call it in a ``finally`` around the loop that reads the stream, so a stream left early (an error, a
    cancelled call) ends its upstream request now, not whenever it is garbage-collected.
    """
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


# -- what a sink receives --------------------------------------------------------------------------


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
    """Receives updates in order: the MCP progress sink, the terminal, a test's collecting sink.

    A slow sink slows the call that feeds it; it never drops text. A tool is given one and writes to
    it, usually through the host's services (``generate``, ``stream``), which fill in offsets and tails.
    """

    async def send(self, update: Update) -> None:
        """Show or forward one update."""
