"""Fetching pages through the engine's plugins: the fetcher for a URL, its statuses through the relay,
a small cache of recent documents, and paging of long content (as mcp-server-fetch pages it)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .engine import Engine
from .errors import FetchError, InvalidArgumentError, StreamhostError
from .events import Event
from .fetchers import Document, Fetcher, FetchRequest
from .relay import GenerationFailed, Relay
from .sinks import Sink

DEFAULT_MAX_LENGTH = 10_000
CACHE_TTL_S = 300.0
CACHE_ENTRIES = 32
INSTALL_HINT = "pip install streamhost-fetch"
NO_TEXT = "The page has no text content: it is empty, or its text is written by JavaScript, which is not run."


@dataclass(frozen=True)
class Page:
    """One slice of a document's content, and where the next one starts."""

    document: Document
    text: str
    start_index: int
    next_start_index: int | None

    @property
    def note(self) -> str:
        """What to tell the reader after the slice: how to get the rest, or that the page was cut."""
        notes = [] if self.document.content else [NO_TEXT]
        if self.next_start_index is not None:
            notes.append(f"Content truncated: {len(self.document.content) - self.next_start_index} more "
                         f"characters. Call fetch_url again with start_index={self.next_start_index} to read on.")
        if self.document.truncated:
            notes.append("The page was larger than the fetcher's size limit ([fetch] max_bytes) and was cut.")
        return "\n".join(f"<note>{note}</note>" for note in notes)

    def metadata(self) -> dict[str, Any]:
        """What fetch_url reports besides the text: where the page came from and where this slice sits in it."""
        doc = self.document
        return {"url": doc.url, "final_url": doc.final_url, "title": doc.title, "content_type": doc.content_type,
                "truncated": doc.truncated, "start_index": self.start_index,
                "next_start_index": self.next_start_index, "total_length": len(doc.content)}


def page_of(document: Document, start_index: int = 0, max_length: int = DEFAULT_MAX_LENGTH) -> Page:
    """The slice ``[start_index, start_index + max_length)`` of the document's content."""
    total = len(document.content)
    if start_index > 0 and start_index >= total:
        raise InvalidArgumentError(f"start_index {start_index} is past the end of the page ({total} characters)")
    end = min(start_index + max_length, total)
    return Page(document, document.content[start_index:end], start_index, end if end < total else None)


class DocumentCache:
    """Recent documents by (url, format), each kept ``ttl_s`` seconds; at most ``entries`` of them."""

    def __init__(self, ttl_s: float = CACHE_TTL_S, entries: int = CACHE_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.entries = entries
        self._items: OrderedDict[tuple[str, str], tuple[float, Document]] = OrderedDict()

    def get(self, url: str, format: str) -> Document | None:
        """The cached document, if it is there and fresh."""
        item = self._items.get((url, format))
        if item is None:
            return None
        if time.monotonic() - item[0] > self.ttl_s:
            del self._items[(url, format)]
            return None
        return item[1]

    def put(self, url: str, format: str, document: Document) -> None:
        """Keep ``document``; the oldest goes when the cache is full."""
        self._items[(url, format)] = (time.monotonic(), document)
        self._items.move_to_end((url, format))
        while len(self._items) > self.entries:
            self._items.popitem(last=False)


class Pages:
    """Fetches documents with the registered fetchers, through the relay, remembering recent ones."""

    def __init__(self, engine: Engine, cache: DocumentCache | None = None) -> None:
        self.engine = engine
        self.cache = cache or DocumentCache()

    def fetcher_for(self, url: str) -> Fetcher:
        """The fetcher that serves ``url``; FetchError naming what to install when none does."""
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        if not scheme:
            raise FetchError(f"{url!r} is not an absolute URL: give one like https://example.com/page")
        fetcher = self.engine.registry.fetcher_for(scheme, host)
        if fetcher is None:
            if not self.engine.registry.fetchers:
                raise FetchError(f"no fetcher plugin is installed, so {url} cannot be read: {INSTALL_HINT}")
            served = sorted({s for f in self.engine.registry.fetchers.values() for s in f.schemes})
            hint = f" (for http and https: {INSTALL_HINT})" if scheme in ("http", "https") else ""
            raise FetchError(f"no fetcher serves {scheme}: URLs like {url}; schemes served: "
                             f"{', '.join(served)}{hint}")
        return fetcher

    async def fetch(self, url: str, sink: Sink, *, format: str = "markdown", model_initiated: bool = True,
                    use_cache: bool = True) -> Document:
        """The document at ``url``: from the cache, else fetched with statuses sent to ``sink``.

        Raises FetchError (or another StreamhostError) with a message that names the URL.
        """
        if use_cache:
            cached = self.cache.get(url, format)
            if cached is not None:
                return cached
        fetcher = self.fetcher_for(url)
        request = FetchRequest(url=url, format=format, model_initiated=model_initiated)
        found: list[Document] = []

        def open_stream() -> AsyncIterator[Event]:
            found.clear()
            return _statuses(fetcher, request, found)

        relay = Relay(self.engine.relay_settings(url, streaming=True))
        try:
            await relay.run(open_stream, sink)
        except GenerationFailed as failed:
            raise failed.error from None
        if len(found) != 1:
            raise FetchError(f"fetcher {fetcher.name!r} gave {len(found)} documents for {url}, not one "
                             "(a bug in its plugin)")
        self.cache.put(url, format, found[0])
        return found[0]


async def _statuses(fetcher: Fetcher, request: FetchRequest, found: list[Document]) -> AsyncIterator[Event]:
    """The fetcher's status events for the relay; the document is put aside in ``found``."""
    stream = fetcher.fetch(request)
    try:
        async for event in stream:
            if isinstance(event, Document):
                found.append(event)
            else:
                yield event
    except StreamhostError:
        raise
    except Exception as exc:
        raise FetchError(f"fetching {request.url} failed: {type(exc).__name__}: {exc} "
                         f"(a bug in fetcher {fetcher.name!r}?)") from exc
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
