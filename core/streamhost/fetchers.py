"""What a fetcher plugin implements: turning a URL into a document, with status events on the way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .events import Status

FORMATS = ("markdown", "text", "raw")
"""What a fetch can return: main-content markdown, plain text, or the decoded body as it came."""


@dataclass(frozen=True)
class FetchRequest:
    """One page to fetch. ``format`` is ``markdown``, ``text`` or ``raw``."""

    url: str
    format: str = "markdown"
    model_initiated: bool = True
    """True when an assistant asked for the page (robots.txt applies), False for a user's command."""


@dataclass(frozen=True)
class Document:
    """A fetched page, converted to the requested format."""

    url: str
    final_url: str
    content: str
    title: str | None = None
    content_type: str | None = None
    truncated: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


FetchEvent = Status | Document
"""What a fetcher's stream yields: any number of Status events, then exactly one Document."""


class Fetcher:
    """Base class of a fetcher. Subclass it, set ``name`` and ``schemes``, and implement ``fetch``."""

    name: ClassVar[str] = ""
    schemes: ClassVar[tuple[str, ...]] = ("http", "https")
    """URL schemes this fetcher serves."""
    hosts: ClassVar[tuple[str, ...]] = ()
    """Host names this fetcher is specific to; empty means any host. Specific fetchers win."""
    config_keys: ClassVar[frozenset[str] | None] = None
    """The ``[fetch]`` keys it reads; when all loaded fetchers declare theirs, the host warns of the rest."""

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}

    def configure(self, options: Mapping[str, Any]) -> None:
        """Take the ``[fetch]`` config table. Raise ConfigError on a bad value."""
        self.options = dict(options)

    def handles(self, scheme: str, host: str) -> bool:
        """Whether this fetcher serves a URL with this scheme and host."""
        return scheme in self.schemes and (not self.hosts or host in self.hosts)

    def warm(self) -> None:
        """Import heavy libraries ahead of the first fetch. Runs in a background thread; optional."""

    def fetch(self, request: FetchRequest) -> AsyncIterator[FetchEvent]:
        """Yield Status events, then one Document; raise FetchError with a clear message on failure."""
        raise NotImplementedError(f"fetcher {self.name!r} does not implement fetch()")
