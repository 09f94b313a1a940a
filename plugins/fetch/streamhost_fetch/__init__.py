"""streamhost-fetch: registers the ``http`` fetcher (http and https pages to markdown, text or raw)."""

from streamhost import hookimpl

from .fetcher import HttpFetcher

__all__ = ["HttpFetcher", "register_fetchers"]


@hookimpl
def register_fetchers(register):  # type: ignore[no-untyped-def]
    """Register the ``http`` fetcher for http and https URLs on any host."""
    register(HttpFetcher())
