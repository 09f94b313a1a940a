"""A run's newest checkpoint on its way from the relay to the run's journal, and what the engine decided about it.

The recorder opens a :func:`tracking` scope around a ``generate`` run; the engine, inside it, hands the relay the
scope's :class:`Resumable` as the place checkpoints go. Sinks never see checkpoints: they are no update to show,
only the journal keeps them (with the text they cover). When the call is cancelled, the engine marks the
``Resumable`` ``stopped`` if the host is stopping (the run is left to resume) and cancels the upstream work if a
user cancelled it; the recorder reads that to record the run as interrupted or cancelled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

_CURRENT: ContextVar[Resumable | None] = ContextVar("streamhost_resumable", default=None)


@dataclass
class Resumable:
    """The newest checkpoint of one call: its provider ``state`` and how many characters of text it covers."""

    keep: Callable[[str, int], None] | None = None
    """Where each checkpoint goes as well (the run's journal); None: only remembered here."""
    state: str | None = None
    chars: int = 0
    stopped: bool = False
    """The host stopped the call: it is left for a later start to resume, not cancelled upstream."""

    def __call__(self, state: str, chars: int) -> None:
        """Take a checkpoint that covers the first ``chars`` characters of the run's text."""
        self.state, self.chars = state, chars
        if self.keep is not None:
            self.keep(state, chars)


@contextlib.contextmanager
def tracking(keep: Callable[[str, int], None] | None = None) -> Iterator[Resumable]:
    """Collect the checkpoints of the call run in this context (the engine finds them with :func:`current`)."""
    resumable = Resumable(keep)
    token = _CURRENT.set(resumable)
    try:
        yield resumable
    finally:
        _CURRENT.reset(token)


def current() -> Resumable | None:
    """The scope :func:`tracking` opened around this call, if any."""
    return _CURRENT.get()
