"""What a fetcher plugin implements: turning a URL into a document, with status events on the way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .events import Status
from .options import Option, check_options

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
    declared_options: ClassVar[tuple[Option, ...] | None] = None
    """The ``[fetch]`` options it reads: the host checks their values, and warns of the keys no loaded fetcher
    declares (when every loaded fetcher declares its own). None: the whole table reaches ``configure`` unchecked."""

    def __init__(self) -> None:
        # The [fetch] settings in effect: with declared options, each one, from the config or its default.
        self.options: dict[str, Any] = {}
        if self.declared_options is not None:
            self.options = check_options(self.declared_options, {}, "fetch").values

    def configure(self, options: Mapping[str, Any]) -> None:
        """Take the ``[fetch]`` table as written in the config, which all fetchers share.

        With ``declared_options``, ``self.options`` becomes the declared keys' checked values with the defaults
        filled in (other keys belong to other fetchers), and a bad value raises ConfigError. Override to derive
        more from them: call ``super()`` first.
        """
        if self.declared_options is None:
            self.options = dict(options)
            return
        checked = check_options(self.declared_options, options, "fetch")
        checked.raise_errors(unknown=False)
        self.options = checked.values

    def handles(self, scheme: str, host: str) -> bool:
        """Whether this fetcher serves a URL with this scheme and host."""
        return scheme in self.schemes and (not self.hosts or host in self.hosts)

    def warm(self) -> None:
        """Import heavy libraries ahead of the first fetch. Runs in a background thread; optional."""

    def fetch(self, request: FetchRequest) -> AsyncIterator[FetchEvent]:
        """Yield Status events, then one Document; raise FetchError with a clear message on failure."""
        raise NotImplementedError(f"fetcher {self.name!r} does not implement fetch()")
