"""The engine's public services (``streamhost.Services``) as the host implements them.

The engine brings the models and the calls (the relay included); the page features bring fetching,
with the document cache the page tools share, and summarizing. Each face builds one per engine: the
MCP server for model-initiated calls (robots.txt applies to their fetches), the CLI for a user's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from ..errors import StreamhostError
from ..events import Event, Sink
from ..fetchers import Document
from ..host.engine import Engine, GenerateArgs
from ..host.relay import Relay
from ..services import Generation, ModelEntry, Streamed, Summaries
from .service import PageService
from .summarize import Summarizer, check_urls


class HostServices:
    """What a tool may use of this engine; see :class:`streamhost.Services` for each method."""

    def __init__(self, engine: Engine, *, model_initiated: bool = True) -> None:
        self.engine = engine
        self.model_initiated = model_initiated
        self.pages = PageService(engine)
        self.summarizer = Summarizer(engine, self.pages, model_initiated=model_initiated)

    def models(self) -> list[ModelEntry]:
        return self.engine.catalog.entries()

    def default_model(self) -> str | None:
        return self.engine.catalog.default_model()

    def aliases(self) -> dict[str, str]:
        return dict(self.engine.config.aliases)

    def providers(self) -> list[str]:
        return list(self.engine.registry.providers)

    def schemes(self) -> list[str]:
        return sorted({scheme for fetcher in self.engine.registry.fetchers.values() for scheme in fetcher.schemes})

    def summary_model(self) -> str | None:
        return self.engine.config.summarize.model or self.default_model()

    async def generate(self, prompt: Any, sink: Sink, *, model: Any = None, system: Any = None,
                       temperature: Any = None, max_tokens: Any = None, output_schema: Any = None) -> Generation:
        # The engine checks every value: a tool may pass its arguments on as the client sent them.
        args = GenerateArgs(prompt=prompt, model=model, system=system, temperature=temperature,
                            max_tokens=max_tokens, output_schema=output_schema)
        return await self.engine.generate(args, sink)

    async def stream(self, open_stream: Callable[[], AsyncIterator[Event]], sink: Sink, *, label: str) -> Streamed:
        settings = self.engine.relay_settings(label, streaming=self.engine.config.streaming.enabled)

        def blame(exc: Exception) -> StreamhostError:
            return StreamhostError(f"{label} failed: {type(exc).__name__}: {exc} (a bug in the tool's plugin?)")

        result = await Relay(settings, blame=blame).run(open_stream, sink)
        return Streamed(text=result.text, usage=result.usage.as_dict() if result.usage else None,
                        ttft_ms=result.ttft_ms, duration_ms=result.duration_ms)

    async def fetch(self, url: str, sink: Sink, *, format: str = "markdown") -> Document:
        return await self.pages.fetch(url, sink, format=format, model_initiated=self.model_initiated)

    async def summarize(self, urls: Any, sink: Sink, *, query: str | None = None,
                        model: str | None = None) -> Summaries:
        return await self.summarizer.run(check_urls(urls), sink, query=query, model=model)
