"""The MCP tools that read pages: ``fetch_url`` and ``summarize_urls``.

They are listed only when they can work: ``fetch_url`` needs a fetcher plugin, ``summarize_urls``
also needs a provider. Both share one document cache, so a page summarized a moment ago is paged
with fetch_url without being fetched again.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types

from ..errors import InvalidArgumentError
from ..fetchers import FORMATS
from ..host.engine import Engine
from ..host.sinks import Sink
from ..pages.service import PageService
from ..pages.slices import DEFAULT_MAX_LENGTH, slice_of
from ..pages.summarize import MAX_URLS, Summarizer, check_urls
from .tools import MAX_MODEL_CHARS, MODEL_TOO_LONG, ToolSpec, error_result, meta_of, text_result

MAX_LENGTH_LIMIT = 1_000_000
MAX_URL_CHARS = 8_192
"""Longer than what web servers accept (8 KB for the whole request line is common)."""
MAX_QUERY_CHARS = 10_000
URL_TOO_LONG = "Give the page's address; web servers refuse URLs this long anyway."


def web_tools(engine: Engine) -> list[ToolSpec]:
    """The page tools this engine can serve (none without a fetcher plugin)."""
    if not engine.registry.fetchers:
        return []
    pages = PageService(engine)
    specs = [fetch_url_tool(pages)]
    if engine.registry.providers:
        specs.append(summarize_urls_tool(engine, pages))
    return specs


def _whole(arguments: dict[str, Any], name: str, default: int, minimum: int, maximum: int) -> int:
    value = arguments.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidArgumentError(f"{name} must be a whole number from {minimum} to {maximum}, got {value!r}")
    return value


def fetch_url_tool(pages: PageService) -> ToolSpec:
    """``fetch_url``: a page as markdown (or text, or raw), one slice at a time."""
    schemes = sorted({s for f in pages.engine.registry.fetchers.values() for s in f.schemes})
    schema = {
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

    async def handler(arguments: dict[str, Any], sink: Sink) -> types.CallToolResult:
        url = arguments["url"]
        if not isinstance(url, str) or not url.strip():
            raise InvalidArgumentError(f"url must be a non-empty string, got {url!r}")
        format = arguments.get("format") or "markdown"
        if format not in FORMATS:
            raise InvalidArgumentError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
        max_length = _whole(arguments, "max_length", DEFAULT_MAX_LENGTH, 1, MAX_LENGTH_LIMIT)
        start_index = _whole(arguments, "start_index", 0, 0, 2**53)
        document = await pages.fetch(url.strip(), sink, format=format)
        page = slice_of(document, start_index, max_length)
        text = "\n\n".join(filter(None, [page.text, page.note]))
        return text_result(text, meta_of(page.metadata()))

    tool = types.Tool(
        name="fetch_url",
        description=(
            "Read a web page as markdown (main content with headings, links, lists, code and tables; "
            "boilerplate removed). Long pages come in slices of max_length characters: the note at the end "
            "gives the start_index of the next slice, which is served from a cache, not fetched again."
        ),
        input_schema=schema,
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    return ToolSpec(tool=tool, handler=handler, too_long={"url": URL_TOO_LONG})


def summarize_urls_tool(engine: Engine, pages: PageService) -> ToolSpec:
    """``summarize_urls``: one streamed summary per page, in order, pages fetched concurrently."""
    summarizer = Summarizer(engine, pages)
    default = engine.config.summarize.model or engine.catalog.default_model()
    schema = {
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

    async def handler(arguments: dict[str, Any], sink: Sink) -> types.CallToolResult:
        urls = check_urls(arguments["urls"])
        result = await summarizer.run(urls, sink, query=arguments.get("query"), model=arguments.get("model"))
        if result.error is not None:
            return error_result(f"{result.text}\n\nStopped: {result.error}", meta_of(result.metadata()))
        return text_result(result.text, meta_of(result.metadata()))

    def total(arguments: dict[str, Any]) -> float | None:
        urls = arguments.get("urls")
        return float(len(urls)) if isinstance(urls, list) and 1 <= len(urls) <= MAX_URLS else None

    tool = types.Tool(
        name="summarize_urls",
        description=(
            f"Summarize 1 to {MAX_URLS} web pages with another model, in order: for each a '## [i/N] title' "
            "heading and its summary, streamed to the user as it is written, while the later pages are "
            "fetched in the background. A page that cannot be fetched gets its error under its heading; "
            "the others are still summarized. Long pages are summarized in parts, then combined. Give query "
            "to focus the summaries on a question."
        ),
        input_schema=schema,
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    too_long = {"urls": URL_TOO_LONG, "model": MODEL_TOO_LONG,
                "query": "Ask a shorter question: it goes into the prompt of every page."}
    return ToolSpec(tool=tool, handler=handler, total=total, too_long=too_long)
