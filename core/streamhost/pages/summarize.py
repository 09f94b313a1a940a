"""summarize_urls: each page summarized in order and streamed, while later pages are fetched.

Pages are fetched concurrently (``[summarize] concurrency``) from the start; summaries are written one
page at a time, so page ``i + 1`` is usually ready when summary ``i`` ends. A long page is summarized
map-reduce: its parts are summarized with bounded concurrency, then the part summaries are combined
in one streamed call (combined in rounds first while they are still too long for one call).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from ..errors import AuthenticationError, CallFailed, InvalidArgumentError, MissingKeyError, StreamhostError
from ..events import Sink
from ..fetchers import Document
from ..host.engine import Engine, GenerateArgs
from ..services import MAX_URLS, PageSummary, Summaries
from . import prompts as prompts
from .chunking import CHARS_PER_TOKEN, estimate_tokens, split_text
from .composer import Composer
from .service import PageService

MAX_COMBINE_ROUNDS = 3
MIN_PART_CHARS = 2_000
T = TypeVar("T")


def check_urls(urls: Any) -> list[str]:
    """The URL list, or InvalidArgumentError saying what is wrong with it."""
    if not isinstance(urls, list):
        raise InvalidArgumentError(f"urls must be a list of 1 to {MAX_URLS} URLs, got {urls!r:.200}")
    if not 1 <= len(urls) <= MAX_URLS:
        raise InvalidArgumentError(f"urls must be a list of 1 to {MAX_URLS} URLs, got {len(urls)}: "
                                   "split a longer list over several calls")
    bad = [u for u in urls if not isinstance(u, str) or not u.strip()]
    if bad:
        raise InvalidArgumentError(f"urls must be non-empty strings, got {bad[0]!r:.100}")
    return [u.strip() for u in urls]


@dataclass
class _Call:
    """The state of one summarize_urls call."""

    model: str
    query: str | None
    budget_chars: int
    composer: Composer
    usage: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None
    """Why the call stopped before the last page (a model error every page would hit)."""


class Summarizer:
    """Runs summarize_urls calls for an engine; ``pages`` fetches (and caches) the documents."""

    def __init__(self, engine: Engine, pages: PageService, *, model_initiated: bool = True) -> None:
        self.engine = engine
        self.pages = pages
        self.model_initiated = model_initiated

    async def run(self, urls: Sequence[str], sink: Sink, *, query: str | None = None,
                  model: str | None = None) -> Summaries:
        """Summarize ``urls`` in order into ``sink``. Raises StreamhostError before anything is sent."""
        started = time.monotonic()
        settings = self.engine.config.summarize
        if query is not None and not isinstance(query, str):
            raise InvalidArgumentError("query must be a string")
        if model is not None and not isinstance(model, str):
            raise InvalidArgumentError(f"model must be a string like openai/gpt-4.1-mini, got {model!r}")
        resolved = self.engine.catalog.resolve(model or settings.model)
        resolved.provider.require_key()  # fail once here, not once per page
        reserved = prompts.RESERVED_TOKENS + estimate_tokens(query or "")
        call = _Call(
            model=resolved.id, query=query or None,
            budget_chars=max((settings.budget_for(resolved.id) - reserved) * CHARS_PER_TOKEN, MIN_PART_CHARS),
            composer=Composer(sink, streaming=self.engine.config.streaming_for(resolved.id)),
        )
        total = len(urls)
        gate = asyncio.Semaphore(settings.concurrency)
        by_url: dict[str, asyncio.Task[Document]] = {}  # a URL given twice is fetched once
        for i, url in enumerate(urls):
            if url not in by_url:
                by_url[url] = asyncio.create_task(self._fetch(url, i, gate, call.composer))
        results: list[PageSummary] = []
        try:
            for i, url in enumerate(urls):
                call.composer.begin(i, f"[{i + 1}/{total}]")
                results.append(await self._page(url, i, total, by_url[url], call))
                if call.stopped:
                    results.extend(PageSummary(url=u, error=f"not summarized: {call.stopped}") for u in urls[i + 1:])
                    break
        finally:
            await _cancel(list(by_url.values()))
        failed_pages = sum(1 for r in results if r.error)
        await call.composer.finish(total, f"[{total}/{total}] done" + (f", {failed_pages} failed" if failed_pages
                                                                           else ""))
        first = call.composer.first_text_at
        return Summaries(
            text=call.composer.text, results=results, model=call.model, usage=call.usage or None,
            ttft_ms=None if first is None else (first - started) * 1000,
            duration_ms=(time.monotonic() - started) * 1000, error=call.stopped,
        )

    async def _fetch(self, url: str, index: int, gate: asyncio.Semaphore, composer: Composer) -> Document:
        async with gate:
            return await self.pages.fetch(url, composer.statuses_only(step=index),
                                          model_initiated=self.model_initiated)

    async def _page(self, url: str, index: int, total: int, fetch: asyncio.Task[Document], call: _Call) -> PageSummary:
        """Fetch (or wait for) one page and stream its section; a page's own failure is written under it."""
        composer = call.composer
        if not fetch.done():
            await composer.status(f"fetching {url}")
        try:
            document = await fetch
        except StreamhostError as exc:
            await self._section(composer, index, total, url, f"**Error:** {exc.message}")
            return PageSummary(url=url, error=exc.message)
        title = " ".join((document.title or "").split()) or None
        result = PageSummary(url=url, final_url=document.final_url, title=title)
        content = document.content.strip()
        if not content:
            result.error = (f"{document.final_url} has no text to summarize: the page is empty, or its text is "
                            "written by JavaScript, which is not run")
            await self._section(composer, index, total, title or url, f"**Error:** {result.error}")
            return result
        await self._section(composer, index, total, title or document.final_url)
        mark = composer.length
        try:
            result.summary = await self._summarize(document, content, call)
        except CallFailed as failed:
            result.summary = composer.text[mark:]
            result.error = f"the summary failed: {failed.error.message}"
            separator = "\n\n" if result.summary else ""  # after the partial summary, else right under the heading
            await composer.write(f"{separator}**Error:** {result.error}")
            if isinstance(failed.error, (MissingKeyError, AuthenticationError)):
                call.stopped = failed.error.message  # every later page would fail the same way
        return result

    async def _section(self, composer: Composer, index: int, total: int, title: str, body: str = "") -> None:
        separator = "\n\n" if composer.length else ""
        await composer.write(f"{separator}## [{index + 1}/{total}] {title}\n\n{body}")

    async def _summarize(self, document: Document, content: str, call: _Call) -> str:
        if len(content) <= call.budget_chars:
            return await self._stream(prompts.whole_page(document, content, call.query), call)
        parts = split_text(content, call.budget_chars)
        await call.composer.status(f"long page: summarizing {len(parts)} parts")
        summaries = await self._map(
            [prompts.page_part(document, part, k, len(parts), call.query) for k, part in enumerate(parts, 1)],
            call, what="part")
        joined = _joined(summaries)
        for _ in range(MAX_COMBINE_ROUNDS):
            if len(joined) <= call.budget_chars:
                break
            groups = split_text(joined, call.budget_chars)
            if len(groups) >= len(summaries):
                break  # the part summaries are each as long as a call allows: combining cannot shrink them
            await call.composer.status(f"combining {len(summaries)} part summaries in {len(groups)} groups")
            summaries = await self._map([prompts.combine_some(document, group, call.query) for group in groups],
                                        call, what="group")
            joined = _joined(summaries)
        if len(joined) > call.budget_chars:
            await call.composer.status("the part summaries are still too long: the end is left out")
            joined = joined[: call.budget_chars]
        await call.composer.status(f"combining {len(summaries)} summaries")
        return await self._stream(prompts.combine_all(document, joined, len(parts), call.query), call)

    async def _map(self, prompt_texts: list[str], call: _Call, what: str) -> list[str]:
        """Summaries of the prompts, with at most ``map_concurrency`` calls at once; text is not shown."""
        done = 0

        async def one(prompt: str) -> str:
            nonlocal done
            generation = await self.engine.generate(self._args(prompt, call), call.composer.statuses_only())
            _add_usage(call.usage, generation.usage)
            done += 1
            await call.composer.status(f"{what} {done}/{len(prompt_texts)} summarized")
            return generation.text

        limit = self.engine.config.summarize.map_concurrency
        return await _bounded([partial(one, prompt) for prompt in prompt_texts], limit)

    async def _stream(self, prompt: str, call: _Call) -> str:
        sink = call.composer.relayed()
        try:
            generation = await self.engine.generate(self._args(prompt, call), sink)
        except CallFailed as failed:
            await sink.settle(failed.text)
            raise
        await sink.settle(generation.text)
        _add_usage(call.usage, generation.usage)
        return generation.text

    def _args(self, prompt: str, call: _Call) -> GenerateArgs:
        return GenerateArgs(prompt=prompt, model=call.model, system=prompts.SYSTEM)


def _joined(summaries: list[str]) -> str:
    return "\n\n".join(f"### Part {k}\n\n{text.strip()}" for k, text in enumerate(summaries, 1))


def _add_usage(total: dict[str, int], usage: dict[str, Any] | None) -> None:
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        value = (usage or {}).get(key)
        if isinstance(value, int):
            total[key] = total.get(key, 0) + value


async def _bounded(factories: list[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run the coroutines with at most ``limit`` at once; the first failure cancels the rest."""
    gate = asyncio.Semaphore(limit)

    async def run(factory: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await factory()

    tasks = [asyncio.create_task(run(f)) for f in factories]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        await _cancel(tasks)


async def _cancel(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Cancel whatever is still running and wait for it, so nothing outlives the call."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
