"""The tools that read pages: ``fetch_url`` and ``summarize_urls``.

They are listed only when they can work: ``fetch_url`` needs a fetcher plugin, ``summarize_urls``
also needs a provider. The host's page service keeps one document cache for both, so a page
summarized a moment ago is paged with fetch_url without being fetched again.
"""

from __future__ import annotations

from typing import Any, ClassVar

from streamhost import (
    FORMATS,
    MAX_MODEL_CHARS,
    MAX_URLS,
    InvalidArgumentError,
    Services,
    Sink,
    Tool,
    ToolAnnotations,
    ToolResult,
)

from .models import MODEL_TOO_LONG
from .slices import DEFAULT_MAX_LENGTH, slice_of

MAX_LENGTH_LIMIT = 1_000_000
MAX_URL_CHARS = 8_192
"""Longer than what web servers accept (8 KB for the whole request line is common)."""
MAX_QUERY_CHARS = 10_000
URL_TOO_LONG = "Give the page's address; web servers refuse URLs this long anyway."


def _fetch_url_schema(schemes: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "url": {"type": "string", "maxLength": MAX_URL_CHARS,
                    "description": f"The page's URL ({', '.join(schemes)})."},
            "max_length": {"type": "integer", "minimum": 1, "maximum": MAX_LENGTH_LIMIT,
                           "description": f"Characters to return. Default {DEFAULT_MAX_LENGTH}."},
            "start_index": {"type": "integer", "minimum": 0,
                            "description": "Where to start in the page's content (from the previous call's note)."},
            "format": {"type": "string", "enum": list(FORMATS),
                       "description": "markdown (default: main content, links, code, tables), text, or raw."},
        },
        "required": ["url"],
        "additionalProperties": False,
    }


class FetchUrl(Tool):
    """``fetch_url``: a page as markdown (or text, or raw), one slice at a time."""

    name = "fetch_url"
    description = (
        "Read a web page as markdown (main content with headings, links, lists, code and tables; "
        "boilerplate removed). Long pages come in slices of max_length characters: the note at the end "
        "gives the start_index of the next slice, which is served from a cache, not fetched again."
    )
    input_schema = _fetch_url_schema(["http", "https"])
    annotations = ToolAnnotations(read_only=True, open_world=True)
    too_long: ClassVar[dict[str, str]] = {"url": URL_TOO_LONG}

    def available(self, services: Services) -> bool:
        return bool(services.schemes())

    def input_schema_for(self, services: Services) -> dict[str, Any]:
        return _fetch_url_schema(services.schemes())

    async def run(self, arguments: dict[str, Any], services: Services, sink: Sink) -> ToolResult:
        url = arguments["url"]
        if not isinstance(url, str) or not url.strip():
            raise InvalidArgumentError(f"url must be a non-empty string, got {url!r}")
        format = arguments.get("format") or "markdown"
        if format not in FORMATS:
            raise InvalidArgumentError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
        # The host checked both against the schema's bounds.
        max_length = arguments.get("max_length") or DEFAULT_MAX_LENGTH
        start_index = arguments.get("start_index") or 0
        document = await services.fetch(url.strip(), sink, format=format)
        page = slice_of(document, start_index, max_length)
        return ToolResult("\n\n".join(filter(None, [page.text, page.note])), page.metadata())


def _summarize_urls_schema(default: str | None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "urls": {"type": "array", "items": {"type": "string", "maxLength": MAX_URL_CHARS},
                     "minItems": 1, "maxItems": MAX_URLS,
                     "description": f"The pages to summarize, 1 to {MAX_URLS}, in the order to report them."},
            "query": {"type": "string", "maxLength": MAX_QUERY_CHARS,
                      "description": "What to focus the summaries on (optional)."},
            "model": {"type": "string", "maxLength": MAX_MODEL_CHARS,
                      "description": f"PROVIDER/NAME or an alias. Default: {default or 'none'}."},
        },
        "required": ["urls"],
        "additionalProperties": False,
    }


class SummarizeUrls(Tool):
    """``summarize_urls``: one streamed summary per page, in order, pages fetched concurrently."""

    name = "summarize_urls"
    description = (
        f"Summarize 1 to {MAX_URLS} web pages with another model, in order: for each a '## [i/N] title' "
        "heading and its summary, streamed to the user as it is written, while the later pages are "
        "fetched in the background. A page that cannot be fetched gets its error under its heading; "
        "the others are still summarized. Long pages are summarized in parts, then combined. Give query "
        "to focus the summaries on a question."
    )
    input_schema = _summarize_urls_schema(None)
    annotations = ToolAnnotations(read_only=True, open_world=True)
    too_long: ClassVar[dict[str, str]] = {"urls": URL_TOO_LONG, "model": MODEL_TOO_LONG,
                "query": "Ask a shorter question: it goes into the prompt of every page."}

    def available(self, services: Services) -> bool:
        return bool(services.schemes()) and bool(services.providers())

    def input_schema_for(self, services: Services) -> dict[str, Any]:
        return _summarize_urls_schema(services.summary_model())

    def total(self, arguments: dict[str, Any]) -> float | None:
        urls = arguments.get("urls")
        return float(len(urls)) if isinstance(urls, list) and 1 <= len(urls) <= MAX_URLS else None

    async def run(self, arguments: dict[str, Any], services: Services, sink: Sink) -> ToolResult:
        result = await services.summarize(arguments["urls"], sink, query=arguments.get("query"),
                                          model=arguments.get("model"))
        if result.error is not None:
            return ToolResult(f"{result.text}\n\nStopped: {result.error}", result.metadata(), is_error=True)
        return ToolResult(result.text, result.metadata())
