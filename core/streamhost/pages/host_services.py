"""The engine's public services (``streamhost.Services``) as the host implements them.

The engine brings the models and the calls (the relay included); the page features bring fetching,
with the document cache the page tools share, and summarizing. Each face builds one per engine: the
MCP server for model-initiated calls (robots.txt applies to their fetches), the CLI for a user's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from ..errors import StreamhostError
from ..events import Event, Sink
from ..fetchers import Document
from ..host.asking import Asking
from ..host.callers import CALLER, callable_models, may_call
from ..host.engine import Engine, GenerateArgs
from ..host.handoff import handoff_time
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
        self.asking = Asking(engine)
        self.client: str | None = None
        """The MCP client's name (its ``clientInfo``), which picks the default hand-off time; set by the MCP face."""
        self.roots: Callable[[], Awaitable[list[Path]]] | None = None
        """The client's roots, for ``files``: set by the MCP face. None, or an empty answer (a client that
        offers no roots), means the working directory; ``[context] roots`` are allowed as well."""

    # Over HTTP a token's holder is shown only the models its token may call (host/callers.py).
    def models(self) -> list[ModelEntry]:
        return callable_models(self.engine.catalog.entries())

    def default_model(self) -> str | None:
        default = self.engine.catalog.default_model()
        return default if default is None or self._may_call(default) else None

    def aliases(self) -> dict[str, str]:
        return {alias: target for alias, target in self.engine.config.aliases.items() if self._may_call(target)}

    def _may_call(self, name: str) -> bool:
        if CALLER.get() is None:
            return True
        try:  # the id a call of ``name`` would be held to, as the engine resolves it
            name = self.engine.catalog.resolve(name).id
        except StreamhostError:
            pass  # a name no provider serves: the token's patterns alone decide
        return may_call(name)

    def providers(self) -> list[str]:
        return list(self.engine.registry.providers)

    def schemes(self) -> list[str]:
        return sorted({scheme for fetcher in self.engine.registry.fetchers.values() for scheme in fetcher.schemes})

    def summary_model(self) -> str | None:
        # The default as calls resolve it, whoever calls: a token that may not call it is refused by name.
        return self.engine.config.summarize.model or self.engine.catalog.default_model()

    async def generate(self, prompt: Any, sink: Sink, *, model: Any = None, system: Any = None,
                       temperature: Any = None, max_tokens: Any = None, output_schema: Any = None,
                       thread: Any = None, files: Any = None) -> Generation:
        # Every value is checked on the way: a tool may pass its arguments on as the client sent them.
        args = GenerateArgs(prompt=prompt, model=model, system=system, temperature=temperature,
                            max_tokens=max_tokens, output_schema=output_schema)
        return await self.asking.generate(sink, args, thread=thread, files=files, roots=self.roots,
                                          handoff_s=self._handoff_s())

    async def wait(self, run: Any, sink: Sink, *, cancel: Any = False) -> Generation:
        return await self.asking.waiting.wait(run, sink, cancel=cancel, handoff_s=self._handoff_s())

    def _handoff_s(self) -> float:
        # Only calls a model made through a client are handed off: a terminal user waits for the answer.
        if not self.model_initiated:
            return 0
        return handoff_time(self.engine.config.limits.handoff_s, self.client)

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
        urls = check_urls(urls)
        await self.asking.admit(model or self.summary_model())
        async with self.asking.recorder.run("summarize_urls", model or self.summary_model(), sink,
                                            prompt="\n".join([*urls, *([query] if query else [])])) as run:
            summaries = await self.summarizer.run(urls, run.sink, query=query, model=model)
            run.end = self.asking.summary_end(summaries)
        summaries.run = run.id
        return summaries
