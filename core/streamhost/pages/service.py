"""Fetching pages through the engine's plugins: the fetcher for a URL, its stream through the relay (the
statuses to the sink, the document to the result), and a small cache of recent documents."""

from __future__ import annotations

import time
from collections import OrderedDict
from urllib.parse import urlsplit

from ..errors import CallFailed, FetchError
from ..events import Sink
from ..fetchers import Document, Fetcher, FetchRequest
from ..host.engine import Engine
from ..host.relay import Relay

CACHE_TTL_S = 300.0
CACHE_ENTRIES = 32
INSTALL_HINT = "pip install streamhost-fetch"


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


class PageService:
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

        def blame(exc: Exception) -> FetchError:
            return FetchError(f"fetching {url} failed: {type(exc).__name__}: {exc} "
                              f"(a bug in fetcher {fetcher.name!r}?)")

        relay = Relay(self.engine.relay_settings(url, streaming=True), blame=blame)
        try:
            result = await relay.run(lambda: fetcher.fetch(request), sink, keep=(Document,))
        except CallFailed as failed:
            raise failed.error from None  # statuses only went out: there is no partial text to keep
        if len(result.kept) != 1:
            raise FetchError(f"fetcher {fetcher.name!r} gave {len(result.kept)} documents for {url}, not one "
                             "(a bug in its plugin)")
        document: Document = result.kept[0]
        self.cache.put(url, format, document)
        return document
